import type { ApiKeyVerifier } from "../auth/api-key-verifier.js";
import type { PrismaClient } from "../db/index.js";
import { badInput, notFound } from "../errors.js";
import type { PartnerStatus, SupportTier } from "../generated/prisma/enums.js";
import { invalidateLive, liveKey } from "../realtime/live.js";
import type { AppPubSub } from "../realtime/pubsub.js";

export interface PartnerChanges {
  name?: string;
  /** A member of the partner; null clears the primary contact. */
  primaryContactId?: string | null;
  status?: PartnerStatus;
  supportTier?: SupportTier;
}

export interface Partners {
  create(partner: { name: string; status?: PartnerStatus; supportTier?: SupportTier }): Promise<{ id: string }>;
  update(partnerId: string, changes: PartnerChanges): Promise<void>;
}

export function createPartners(options: {
  prisma: PrismaClient;
  verifier: Pick<ApiKeyVerifier, "invalidatePartner">;
  pubsub: AppPubSub;
}): Partners {
  const { prisma } = options;
  const changed = (partnerId: string) =>
    invalidateLive(options.pubsub, [liveKey("PartnerOrganization", partnerId), "Query.partners"]);
  return {
    async create(partner) {
      const created = await prisma.partnerOrganization.create({ data: partner, select: { id: true } });
      invalidateLive(options.pubsub, ["Query.partners"]);
      return created;
    },

    async update(partnerId, changes) {
      await prisma.$transaction(async (tx) => {
        const partner = await tx.partnerOrganization.findUnique({ where: { id: partnerId }, select: { id: true } });
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
      });
      // Keys of a suspended partner stop verifying (and verify again on reactivation) on every instance.
      if (changes.status !== undefined) await options.verifier.invalidatePartner(partnerId);
      changed(partnerId);
    },
  };
}
