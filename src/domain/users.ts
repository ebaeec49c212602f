import type { Sessions } from "../auth/sessions.js";
import type { PrismaClient } from "../db/index.js";
import { badInput, conflict, notFound } from "../errors.js";
import type { Role } from "../generated/prisma/enums.js";
import { invalidateLive } from "../realtime/live.js";
import type { AppPubSub } from "../realtime/pubsub.js";
import { recordAudit } from "./audit.js";
import { roleAndPartnerProblem } from "./roles.js";

export interface UserRights {
  /** Changes a user's role; there is always at least one admin. */
  setRole(userId: string, role: Role, actorUserId: string | null): Promise<void>;
  /** Moves a user into a partner, or out of any (null); leaving a partner stops being its primary contact. */
  setPartner(userId: string, partnerId: string | null, actorUserId: string | null): Promise<void>;
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
    async setRole(userId, role, actorUserId) {
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

    async setPartner(userId, partnerId, actorUserId) {
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
          await tx.partnerOrganization.updateMany({
            where: { id: user.partnerId, primaryContactId: userId },
            data: { primaryContactId: null },
          });
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
