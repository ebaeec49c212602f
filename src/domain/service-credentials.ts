import { z } from "zod";
import { generateSecret, hashSecret, type SecretEnvironment } from "../auth/api-key-secret.js";
import type { PrismaClient } from "../db/index.js";
import { conflict, isUniqueViolation, notFound } from "../errors.js";
import { invalidateLive } from "../realtime/live.js";
import type { AppPubSub } from "../realtime/pubsub.js";
import { recordAudit } from "./audit.js";

// Machine credentials for the company's API gateway: sent as `Authorization: Bearer pps_…`, they
// may verify API keys and report usage. Made and revoked by admins (GraphQL) or on the command
// line, both through these functions.

export const serviceCredentialName = z
  .string()
  .trim()
  .min(3, "Name must be at least 3 characters")
  .max(64, "Name must be at most 64 characters")
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]*$/, "Name may use letters, digits, '.', '_', ':' and '-'");

export interface ServiceCredentials {
  /** Creates a credential and its audit event; answers the secret, which exists nowhere else. */
  issue(credential: { name: string; actorUserId: string | null }): Promise<{ id: string; secret: string }>;
  /**
   * Revokes a credential (a second time changes nothing): its token is refused from the next
   * request on, and every instance that hears of it (all of them, over Redis) drops its cached
   * trust and ends the credential's streams. Answers whether this call revoked it.
   */
  revoke(credential: { id: string; actorUserId: string | null }): Promise<boolean>;
}

export function createServiceCredentials(deps: {
  prisma: PrismaClient;
  pubsub: AppPubSub;
  hashKey: Uint8Array;
  environment: SecretEnvironment;
  now: () => Date;
}): ServiceCredentials {
  const { prisma } = deps;
  return {
    async issue(credential) {
      const { secret, tokenPrefix } = generateSecret("pps", deps.environment);
      try {
        const issued = await prisma.$transaction(async (tx) => {
          const row = await tx.serviceCredential.create({
            data: { name: credential.name, tokenPrefix, secretHash: hashSecret(deps.hashKey, secret) },
            select: { id: true },
          });
          await recordAudit(tx, {
            action: "serviceCredentialCreated",
            actorUserId: credential.actorUserId,
            actorCredentialId: row.id,
            serviceCredentialId: row.id,
            detail: { name: credential.name, via: credential.actorUserId ? "api" : "cli" },
          });
          return { id: row.id, secret };
        });
        invalidateLive(deps.pubsub, ["Query.auditEvents"]);
        return issued;
      } catch (error) {
        if (isUniqueViolation(error)) throw conflict(`A service credential named ${credential.name} exists`, { field: "name" });
        throw error;
      }
    },

    async revoke(credential) {
      const revoked = await prisma.$transaction(async (tx) => {
        const { count } = await tx.serviceCredential.updateMany({
          where: { id: credential.id, revokedAt: null },
          data: { revokedAt: deps.now() },
        });
        if (count === 0) {
          if ((await tx.serviceCredential.count({ where: { id: credential.id } })) === 0) {
            throw notFound("No such service credential");
          }
          return false;
        }
        await recordAudit(tx, {
          action: "serviceCredentialRevoked",
          actorUserId: credential.actorUserId,
          actorCredentialId: credential.id,
          serviceCredentialId: credential.id,
          detail: { via: credential.actorUserId ? "api" : "cli" },
        });
        return true;
      });
      deps.pubsub.publish("serviceCredential:revoked", { credentialId: credential.id });
      if (revoked) invalidateLive(deps.pubsub, ["Query.auditEvents"]);
      return revoked;
    },
  };
}
