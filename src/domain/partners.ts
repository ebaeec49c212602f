import type { ApiKeyVerifier } from "../auth/api-key-verifier.js";
import type { PrismaClient } from "../db/index.js";
import { badInput, notFound } from "../errors.js";
import type { PartnerStatus, SupportTier } from "../generated/prisma/enums.js";
import { invalidateLive, liveKey } from "../realtime/live.js";
import type { AppPubSub } from "../realtime/pubsub.js";
import { diff, recordAudit } from "./audit.js";

export interface PartnerChanges {
  name?: string;
  /** A member of the partner; null clears the primary contact. */
  primaryContactId?: string | null;
  status?: PartnerStatus;
  supportTier?: SupportTier;
}

export interface Partners {
  create(partner: { name: string; status?: PartnerStatus; supportTier?: SupportTier }, actorUserId: string | null): Promise<{ id: string }>;
  /** Each change that alters something writes one audit event with the fields' old and new values. */
  update(partnerId: string, changes: PartnerChanges, actorUserId: string | null): Promise<void>;
}

export function createPartners(options: {
  prisma: PrismaClient;
  verifier: Pick<ApiKeyVerifier, "invalidatePartner">;
  pubsub: AppPubSub;
}): Partners {
  const { prisma } = options;
  const changed = (partnerId: string) =>
    invalidateLive(options.pubsub, [liveKey("PartnerOrganization", partnerId), "Query.partners", "Query.auditEvents"]);
  return {
    async create(partner, actorUserId) {
      const created = await prisma.$transaction(async (tx) => {
        const row = await tx.partnerOrganization.create({ data: partner, select: { id: true, name: true, status: true, supportTier: true } });
        await recordAudit(tx, {
          action: "partnerCreated",
          actorUserId,
          partnerId: row.id,
          detail: { name: row.name, status: row.status, supportTier: row.supportTier },
        });
        return { id: row.id };
      });
      invalidateLive(options.pubsub, ["Query.partners", "Query.auditEvents"]);
      return created;
    },

    async update(partnerId, changes, actorUserId) {
      await prisma.$transaction(async (tx) => {
        const [partner] = await tx.$queryRaw<
          Array<{ name: string; primaryContactId: string | null; status: PartnerStatus; supportTier: SupportTier }>
        >`SELECT name, "primaryContactId", status::text AS status, "supportTier"::text AS "supportTier"
            FROM "PartnerOrganization" WHERE id = ${partnerId} FOR UPDATE`;
        if (!partner) throw notFound("No such partner");
        if (changes.primaryContactId) {
          // Lock the contact's row so a concurrent setUserPartner cannot move them out meanwhile.
          const contact = await tx.$queryRaw<Array<{ partnerId: string | null }>>`
            SELECT "partnerId" FROM "User" WHERE id = ${changes.primaryContactId} FOR UPDATE`;
          if (contact[0]?.partnerId !== partnerId) {
            throw badInput("primaryContactId: the primary contact must be a member of this partner", {
              issues: [{ path: ["input", "primaryContactId"], message: "Not a member of this partner" }],
            });
          }
        }
        await tx.partnerOrganization.update({ where: { id: partnerId }, data: changes, select: { id: true } });
        const detail = diff(partner, changes);
        if (Object.keys(detail).length > 0) {
          await recordAudit(tx, { action: "partnerUpdated", actorUserId, partnerId, detail });
        }
      });
      // Keys of a suspended partner stop verifying (and verify again on reactivation) on every instance.
      if (changes.status !== undefined) await options.verifier.invalidatePartner(partnerId);
      changed(partnerId);
    },
  };
}
