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
  /** The user acted on. */
  userId?: string | null;
  /** The service credential acted on. */
  serviceCredentialId?: string | null;
  /** The developer doc acted on. */
  developerDocId?: string | null;
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
      userId: entry.userId ?? null,
      serviceCredentialId: entry.serviceCredentialId ?? null,
      developerDocId: entry.developerDocId ?? null,
      detail: entry.detail,
    },
    select: { id: true },
  });
}

type Scalar = string | number | boolean | null;

/**
 * The fields whose value differs, as `{ field: { from, to } }`: an event's small diff. Fields
 * absent from `after` (left unchanged by the caller) are skipped.
 */
export function diff<T extends Record<string, Scalar | readonly string[] | Date | undefined>>(
  before: T,
  after: Partial<T>,
): Record<string, { from: Prisma.InputJsonValue | null; to: Prisma.InputJsonValue | null }> {
  const changes: Record<string, { from: Prisma.InputJsonValue | null; to: Prisma.InputJsonValue | null }> = {};
  const json = (value: unknown): Prisma.InputJsonValue | null =>
    value instanceof Date ? value.toISOString() : Array.isArray(value) ? [...value] : ((value ?? null) as Prisma.InputJsonValue | null);
  for (const field of Object.keys(after)) {
    const to = after[field];
    if (to === undefined) continue;
    const from = before[field];
    if (JSON.stringify(json(from)) !== JSON.stringify(json(to))) changes[field] = { from: json(from), to: json(to) };
  }
  return changes;
}
