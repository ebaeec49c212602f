import type { ApiKeyVerifier } from "../auth/api-key-verifier.js";
import type { Sessions } from "../auth/sessions.js";
import type { PrismaClient } from "../db/index.js";
import { badInput, conflict, isUniqueViolation, notFound } from "../errors.js";
import type { PartnerStatus, SupportTier } from "../generated/prisma/enums.js";
import { invalidateLive, liveKey } from "../realtime/live.js";
import type { AppPubSub } from "../realtime/pubsub.js";
import { diff, recordAudit } from "./audit.js";
import { storeInvitation, type IssuedLink, type LinkDeps } from "./invitations.js";

export interface PartnerChanges {
  name?: string;
  /** A member of the partner; null is refused (a partner keeps a primary contact). */
  primaryContactId?: string | null;
  status?: PartnerStatus;
  supportTier?: SupportTier;
}

/** A new partner's primary contact: an existing developer with no partner, or someone to invite. */
export type PrimaryContact = { userId: string } | { email: string; username: string };

export interface NewPartner {
  name: string;
  status?: PartnerStatus;
  supportTier?: SupportTier;
  primaryContact: PrimaryContact;
  actorUserId: string;
}

export interface Partners {
  /**
   * Creates a partner with its primary contact as its partnerAdmin, in one transaction: an
   * existing developer with no partner is moved in; for an email, a user without a password is
   * made and invited (the answer carries the invitation's token, shown once).
   */
  create(partner: NewPartner): Promise<{ id: string; invitation: IssuedLink | null }>;
  /** Each change that alters something writes one audit event with the fields' old and new values. */
  update(partnerId: string, changes: PartnerChanges, actorUserId: string | null): Promise<void>;
}

const contactProblem = (message: string) =>
  badInput(`primaryContact: ${message}`, { issues: [{ path: ["input", "primaryContact"], message }] });

export function createPartners(options: LinkDeps & {
  prisma: PrismaClient;
  verifier: Pick<ApiKeyVerifier, "invalidatePartner">;
  pubsub: AppPubSub;
  sessions: Pick<Sessions, "endAll">;
}): Partners {
  const { prisma } = options;
  const changed = (partnerId: string) =>
    invalidateLive(options.pubsub, [liveKey("PartnerOrganization", partnerId), "Query.partners", "Query.auditEvents"]);
  return {
    async create(partner) {
      const { primaryContact: contact, actorUserId, ...fields } = partner;
      let created: { id: string; invitation: IssuedLink | null; movedUserId: string | null };
      try {
        created = await prisma.$transaction(async (tx) => {
          const { id } = await tx.partnerOrganization.create({ data: fields, select: { id: true } });
          let contactId: string;
          let invitation: IssuedLink | null = null;
          if ("userId" in contact) {
            // Locked so a concurrent move or role change of the same user waits for this one.
            const [user] = await tx.$queryRaw<Array<{ role: string; partnerId: string | null }>>`
              SELECT role::text AS role, "partnerId" FROM "User" WHERE id = ${contact.userId} FOR UPDATE`;
            if (!user) throw contactProblem("No such user");
            if (user.role !== "developer" || user.partnerId) throw contactProblem("Must be a developer without a partner");
            await tx.user.update({ where: { id: contact.userId }, data: { role: "partnerAdmin", partnerId: id }, select: { id: true } });
            contactId = contact.userId;
          } else {
            const taken = await tx.user.findFirst({
              where: { OR: [{ usernameLower: contact.username.toLowerCase() }, { email: contact.email }] },
              select: { email: true },
            });
            if (taken) {
              const field = taken.email === contact.email ? "email" : "username";
              throw conflict(`That ${field} is already registered`, { field });
            }
            const user = await tx.user.create({
              data: { username: contact.username, email: contact.email, password: null, role: "partnerAdmin", partnerId: id },
              select: { id: true },
            });
            contactId = user.id;
            invitation = await storeInvitation(tx, options, {
              email: contact.email,
              role: "partnerAdmin",
              partnerId: id,
              userId: user.id,
              actorUserId,
            });
          }
          await tx.partnerOrganization.update({ where: { id }, data: { primaryContactId: contactId }, select: { id: true } });
          await recordAudit(tx, {
            action: "partnerCreated",
            actorUserId,
            partnerId: id,
            detail: {
              name: fields.name,
              status: fields.status ?? "active",
              supportTier: fields.supportTier ?? "standard",
              primaryContactId: contactId,
            },
          });
          return { id, invitation, movedUserId: "userId" in contact ? contactId : null };
        });
      } catch (error) {
        // A concurrent sign-up took the name between the check and the insert.
        if (isUniqueViolation(error)) throw conflict("That username or email is already registered", { field: "primaryContact" });
        throw error;
      }
      // The moved developer's sessions carried no partner: they end, so none keeps the old rights.
      if (created.movedUserId) await options.sessions.endAll(created.movedUserId);
      invalidateLive(options.pubsub, ["Query.partners", "Query.auditEvents"]);
      return { id: created.id, invitation: created.invitation };
    },

    async update(partnerId, changes, actorUserId) {
      await prisma.$transaction(async (tx) => {
        const [partner] = await tx.$queryRaw<
          Array<{ name: string; primaryContactId: string | null; status: PartnerStatus; supportTier: SupportTier }>
        >`SELECT name, "primaryContactId", status::text AS status, "supportTier"::text AS "supportTier"
            FROM "PartnerOrganization" WHERE id = ${partnerId} FOR UPDATE`;
        if (!partner) throw notFound("No such partner");
        if (changes.primaryContactId === null) {
          throw badInput("primaryContactId: a partner keeps a primary contact; name another member instead", {
            issues: [{ path: ["input", "primaryContactId"], message: "Cannot be cleared" }],
          });
        }
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
