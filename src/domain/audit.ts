import type { Prisma } from "../db/index.js";
import { AuditAction } from "../generated/prisma/enums.js";

/** Every action the audit log records, as stored. */
export const AUDIT_ACTIONS = Object.values(AuditAction);
export type { AuditAction };

/** What one audit event says: who acted (a user, or null for the command line), on what, and how. */
export interface AuditEntry {
  action: AuditAction;
  actorUserId: string | null;
  /** The service credential that acted, or that was acted on. */
  actorCredentialId?: string | null;
  partnerId?: string | null;
  apiKeyId?: string | null;
  /** What changed, small and never a secret or its hash. */
  detail?: Prisma.InputJsonValue;
}

/**
 * Writes an audit event in the caller's transaction (or client), so the event exists exactly
 * when the change it records does.
 */
export function recordAudit(db: Pick<Prisma.TransactionClient, "auditEvent">, entry: AuditEntry) {
  return db.auditEvent.create({
    data: {
      action: entry.action,
      actorUserId: entry.actorUserId,
      actorCredentialId: entry.actorCredentialId ?? null,
      partnerId: entry.partnerId ?? null,
      apiKeyId: entry.apiKeyId ?? null,
      detail: entry.detail,
    },
    select: { id: true },
  });
}
