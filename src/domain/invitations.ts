import { generateSecret, hashSecret, parseSecret, type SecretEnvironment } from "../auth/api-key-secret.js";
import { hashPassword } from "../auth/password.js";
import type { Sessions } from "../auth/sessions.js";
import type { Prisma, PrismaClient } from "../db/index.js";
import { badInput, conflict, isUniqueViolation, notFound } from "../errors.js";
import type { Role } from "../generated/prisma/enums.js";
import { invalidateLive, liveKey } from "../realtime/live.js";
import type { AppPubSub } from "../realtime/pubsub.js";
import { recordAudit } from "./audit.js";
import { roleAndPartnerProblem } from "./roles.js";

// One-time links for people the portal cannot email: an invitation (`ppi_…`) to join, a password
// reset (`ppr_…`) to choose a new password. The token is shown once to whoever made it, who hands
// the link over; only its keyed hash is stored, like an API key's. Each is used at most once and
// not after it expires: using one is a single UPDATE … WHERE usedAt IS NULL AND expiresAt > now,
// so of two simultaneous uses exactly one succeeds.

/** An invitation is good for a week, long enough to reach someone through another channel. */
export const INVITATION_TTL_MS = 7 * 24 * 60 * 60 * 1000;
/** A password reset is good for a day: it grants an account outright, so it lives shorter. */
export const PASSWORD_RESET_TTL_MS = 24 * 60 * 60 * 1000;

export interface IssuedLink {
  id: string;
  /** The one-time token, shown this once: only its keyed hash is stored. */
  token: string;
  expiresAt: Date;
}

export interface NewInvitation {
  email: string;
  role: Role;
  partnerId: string | null;
  actorUserId: string;
}

export interface Invitations {
  /** Invites someone by email to join with a role (and partner); CONFLICT when the email is registered. */
  invite(invitation: NewInvitation): Promise<IssuedLink>;
  /** Redeems an invitation: creates (or completes) the account with this username and password. */
  accept(input: { token: string; username: string; password: string }): Promise<{ userId: string }>;
  /** A one-time link with which the user chooses a new password. */
  createPasswordReset(input: { userId: string; actorUserId: string }): Promise<IssuedLink>;
  /** Sets the new password and ends every session of the user, on every instance. */
  resetPassword(input: { token: string; password: string }): Promise<{ userId: string }>;
}

export interface LinkDeps {
  hashKey: Uint8Array;
  environment: SecretEnvironment;
  now: () => Date;
}

/** Stores an invitation in the caller's transaction, with its audit event; answers the token. */
export async function storeInvitation(
  tx: Prisma.TransactionClient,
  deps: LinkDeps,
  invitation: { email: string; role: Role; partnerId: string | null; userId?: string | null; actorUserId: string },
): Promise<IssuedLink> {
  const { secret } = generateSecret("ppi", deps.environment);
  const expiresAt = new Date(deps.now().getTime() + INVITATION_TTL_MS);
  const row = await tx.invitation.create({
    data: {
      tokenHash: hashSecret(deps.hashKey, secret),
      email: invitation.email,
      role: invitation.role,
      partnerId: invitation.partnerId,
      userId: invitation.userId ?? null,
      createdById: invitation.actorUserId,
      expiresAt,
    },
    select: { id: true },
  });
  await recordAudit(tx, {
    action: "invitationCreated",
    actorUserId: invitation.actorUserId,
    partnerId: invitation.partnerId,
    detail: { invitationId: row.id, role: invitation.role },
  });
  return { id: row.id, token: secret, expiresAt };
}

/** One answer for a token that is malformed, unknown, used or expired: none says which. */
const invalidLink = () =>
  badInput("token: this link is not valid (unknown, already used or expired)", {
    issues: [{ path: ["token"], message: "Unknown, already used or expired" }],
  });

const takenError = (field: "username" | "email") => conflict(`That ${field} is already registered`, { field });

/** The field a unique violation names, from the driver adapter's error. */
function violatedField(error: unknown): "username" | "email" {
  const meta = (error as { meta?: { driverAdapterError?: { cause?: { constraint?: { index?: unknown } } } } }).meta;
  const index = meta?.driverAdapterError?.cause?.constraint?.index;
  return typeof index === "string" && index.includes("email") ? "email" : "username";
}

export function createInvitations(options: {
  prisma: PrismaClient;
  sessions: Pick<Sessions, "endAll">;
  pubsub: AppPubSub;
  hashKey: Uint8Array;
  environment: SecretEnvironment;
  now: () => Date;
}): Invitations {
  const { prisma, now } = options;
  const tokenHash = (token: string, kind: "ppi" | "ppr") => {
    // A malformed token (or one of another kind) never reaches the database.
    if (parseSecret(token)?.kind !== kind) throw invalidLink();
    return hashSecret(options.hashKey, token);
  };

  return {
    async invite(invitation) {
      const problem = roleAndPartnerProblem(invitation.role, invitation.partnerId, "partnerId");
      if (problem) throw problem;
      return prisma.$transaction(async (tx) => {
        if (invitation.partnerId) {
          const partner = await tx.partnerOrganization.findUnique({ where: { id: invitation.partnerId }, select: { id: true } });
          if (!partner) throw badInput("partnerId: no such partner", { issues: [{ path: ["partnerId"], message: "No such partner" }] });
        }
        if (await tx.user.findUnique({ where: { email: invitation.email }, select: { id: true } })) throw takenError("email");
        return storeInvitation(tx, options, invitation);
      });
    },

    async accept(input) {
      const hash = tokenHash(input.token, "ppi");
      let joined: { userId: string; partnerId: string | null };
      try {
        joined = await prisma.$transaction(async (tx) => {
          const at = now();
          const [invitation] = await tx.invitation.updateManyAndReturn({
            where: { tokenHash: hash, usedAt: null, expiresAt: { gt: at } },
            data: { usedAt: at },
            select: { id: true, email: true, role: true, partnerId: true, userId: true },
          });
          if (!invitation) throw invalidLink();
          // Hashed only once the token is known good, so bad tokens cost no argon2 work. A failure
          // below (a taken username) rolls the use back: the link still works with another name.
          const password = await hashPassword(input.password);
          const user = invitation.userId
            ? await tx.user.update({
                where: { id: invitation.userId },
                data: { username: input.username, password },
                select: { id: true, partnerId: true },
              })
            : await tx.user.create({
                data: {
                  username: input.username,
                  email: invitation.email,
                  password,
                  role: invitation.role,
                  partnerId: invitation.partnerId,
                },
                select: { id: true, partnerId: true },
              });
          await recordAudit(tx, {
            action: "invitationAccepted",
            actorUserId: user.id,
            partnerId: user.partnerId,
            detail: { invitationId: invitation.id, userId: user.id },
          });
          return { userId: user.id, partnerId: user.partnerId };
        });
      } catch (error) {
        if (isUniqueViolation(error)) throw takenError(violatedField(error));
        throw error;
      }
      // A partner's `@live` member lists show the new member.
      if (joined.partnerId) invalidateLive(options.pubsub, [liveKey("PartnerOrganization", joined.partnerId)]);
      return { userId: joined.userId };
    },

    async createPasswordReset(input) {
      return prisma.$transaction(async (tx) => {
        const user = await tx.user.findUnique({ where: { id: input.userId }, select: { id: true, partnerId: true } });
        if (!user) throw notFound("No such user");
        const { secret } = generateSecret("ppr", options.environment);
        const expiresAt = new Date(now().getTime() + PASSWORD_RESET_TTL_MS);
        const row = await tx.passwordReset.create({
          data: { tokenHash: hashSecret(options.hashKey, secret), userId: user.id, createdById: input.actorUserId, expiresAt },
          select: { id: true },
        });
        await recordAudit(tx, {
          action: "passwordResetCreated",
          actorUserId: input.actorUserId,
          partnerId: user.partnerId,
          detail: { passwordResetId: row.id, userId: user.id },
        });
        return { id: row.id, token: secret, expiresAt };
      });
    },

    async resetPassword(input) {
      const hash = tokenHash(input.token, "ppr");
      const userId = await prisma.$transaction(async (tx) => {
        const at = now();
        const [reset] = await tx.passwordReset.updateManyAndReturn({
          where: { tokenHash: hash, usedAt: null, expiresAt: { gt: at } },
          data: { usedAt: at },
          select: { id: true, userId: true },
        });
        if (!reset) throw invalidLink();
        const password = await hashPassword(input.password);
        const user = await tx.user.update({ where: { id: reset.userId }, data: { password }, select: { id: true, partnerId: true } });
        // The other links out for this user stop working: the password they would replace is new.
        await tx.passwordReset.updateMany({ where: { userId: user.id, usedAt: null }, data: { usedAt: at } });
        await recordAudit(tx, {
          action: "passwordResetUsed",
          actorUserId: user.id,
          partnerId: user.partnerId,
          detail: { passwordResetId: reset.id, userId: user.id },
        });
        return user.id;
      });
      // Whoever held the old password is signed out everywhere.
      await options.sessions.endAll(userId);
      return { userId };
    },
  };
}
