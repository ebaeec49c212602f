import type { Sessions } from "../auth/sessions.js";
import type { Prisma, PrismaClient } from "../db/index.js";
import { badInput, conflict, notFound } from "../errors.js";
import type { Role } from "../generated/prisma/enums.js";
import { invalidateLive } from "../realtime/live.js";
import type { AppPubSub } from "../realtime/pubsub.js";
import { recordAudit } from "./audit.js";
import { roleAndPartnerProblem } from "./roles.js";

export interface UserRights {
  /**
   * Changes a user's role (an audit event names the change); there is always at least one admin. A partner's primary contact who
   * stops being a partnerAdmin hands the role to `replacementContactId` (CONFLICT without one).
   */
  setRole(userId: string, role: Role, actorUserId: string | null, replacementContactId?: string | null): Promise<void>;
  /**
   * Moves a user into a partner, or out of any (null). A primary contact who leaves their partner
   * hands the role to `replacementContactId` (CONFLICT without one).
   */
  setPartner(userId: string, partnerId: string | null, actorUserId: string | null, replacementContactId?: string | null): Promise<void>;
}

/**
 * A partner always has a primary contact: when the user is one and is about to stop being a
 * partnerAdmin of it, another partnerAdmin of the same partner takes over in the same transaction.
 */
async function handOverContact(
  tx: Prisma.TransactionClient,
  user: { id: string; partnerId: string | null },
  replacementContactId: string | null | undefined,
) {
  if (!user.partnerId) return;
  const partner = await tx.partnerOrganization.findFirst({
    where: { id: user.partnerId, primaryContactId: user.id },
    select: { id: true },
  });
  if (!partner) return;
  if (!replacementContactId) {
    throw conflict("This user is the partner's primary contact: name a replacementContactId", {
      field: "replacementContactId",
    });
  }
  const [replacement] = await tx.$queryRaw<Array<{ role: Role; partnerId: string | null }>>`
    SELECT role::text AS role, "partnerId" FROM "User" WHERE id = ${replacementContactId} FOR UPDATE`;
  if (replacementContactId === user.id || replacement?.role !== "partnerAdmin" || replacement.partnerId !== partner.id) {
    throw badInput("replacementContactId: must be another partnerAdmin of the same partner", {
      issues: [{ path: ["replacementContactId"], message: "Not another partnerAdmin of this partner" }],
    });
  }
  await tx.partnerOrganization.update({ where: { id: partner.id }, data: { primaryContactId: replacementContactId }, select: { id: true } });
}

/**
 * Changes of a user's rights. Each keeps the role and partner invariants (domain/roles.ts) in one
 * transaction, then ends the user's sessions on every instance, which also ends the WebSockets,
 * subscriptions and live queries authorised with the old rights.
 */
export function createUserRights(options: { prisma: PrismaClient; sessions: Pick<Sessions, "endAll">; pubsub: AppPubSub }): UserRights {
  const { prisma, sessions } = options;
  // `@live` audit logs re-run on every instance.
  const changed = () => invalidateLive(options.pubsub, ["Query.auditEvents"]);
  return {
    async setRole(userId, role, actorUserId, replacementContactId) {
      await prisma.$transaction(async (tx) => {
        // Locking every admin row serialises concurrent demotions, so two admins demoting each
        // other at once cannot leave none.
        await tx.$queryRaw`SELECT id FROM "User" WHERE role = 'admin' OR id = ${userId} FOR UPDATE`;
        const user = await tx.user.findUnique({ where: { id: userId }, select: { role: true, partnerId: true } });
        if (!user) throw notFound("No such user");
        const problem = roleAndPartnerProblem(role, user.partnerId, "role");
        if (problem) throw problem;
        if (user.role === "admin" && role !== "admin" && (await tx.user.count({ where: { role: "admin" } })) <= 1) {
          throw conflict("The last admin cannot be demoted", { field: "role" });
        }
        if (user.role === "partnerAdmin" && role !== "partnerAdmin") {
          await handOverContact(tx, { id: userId, partnerId: user.partnerId }, replacementContactId);
        }
        await tx.user.update({ where: { id: userId }, data: { role }, select: { id: true } });
        if (user.role !== role) {
          await recordAudit(tx, {
            action: "userRoleChanged",
            actorUserId,
            userId,
            partnerId: user.partnerId,
            detail: { role: { from: user.role, to: role } },
          });
        }
      });
      await sessions.endAll(userId);
      changed();
    },

    async setPartner(userId, partnerId, actorUserId, replacementContactId) {
      await prisma.$transaction(async (tx) => {
        const [user] = await tx.$queryRaw<Array<{ role: Role; partnerId: string | null }>>`
          SELECT role::text AS role, "partnerId" FROM "User" WHERE id = ${userId} FOR UPDATE`;
        if (!user) throw notFound("No such user");
        if (partnerId && !(await tx.partnerOrganization.findUnique({ where: { id: partnerId }, select: { id: true } }))) {
          throw badInput("partnerId: no such partner", { issues: [{ path: ["partnerId"], message: "No such partner" }] });
        }
        const problem = roleAndPartnerProblem(user.role, partnerId, "partnerId");
        if (problem) throw problem;
        if (user.partnerId && user.partnerId !== partnerId) {
          await handOverContact(tx, { id: userId, partnerId: user.partnerId }, replacementContactId);
        }
        await tx.user.update({ where: { id: userId }, data: { partnerId }, select: { id: true } });
        // One event per partner concerned, each naming only that partner, so a partnerAdmin who
        // reads its partner's events learns nothing of the other one.
        if (user.partnerId !== partnerId) {
          if (user.partnerId) {
            await recordAudit(tx, { action: "userPartnerChanged", actorUserId, userId, partnerId: user.partnerId, detail: { change: "left" } });
          }
          if (partnerId) {
            await recordAudit(tx, { action: "userPartnerChanged", actorUserId, userId, partnerId, detail: { change: "joined" } });
          }
        }
      });
      await sessions.endAll(userId);
      changed();
    },
  };
}
