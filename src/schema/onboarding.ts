import type { IssuedLink } from "../domain/invitations.js";
import type { PrimaryContact } from "../domain/partners.js";
import { badInput, unauthenticated } from "../errors.js";
import type { Role as RoleValue } from "../generated/prisma/enums.js";
import { builder } from "./builder.js";
import type { Context } from "./context.js";
import { PartnerOrganization, PartnerStatus, partnerName, SupportTier } from "./partner.js";
import { AuthPayload, email, newPassword, Role, User, username } from "./user.js";

// Bringing people in without email infrastructure: a new partner with its primary contact in one
// call, invitations, and password resets. Each link's token is answered once, to the admin (or
// partnerAdmin) who made it, to hand over through whatever channel they trust; only its keyed
// hash is stored. With INVITATION_URL_TEMPLATE / PASSWORD_RESET_URL_TEMPLATE the answer also
// carries the ready link.

const linkUrl = (template: string | undefined, token: string) =>
  template ? template.replaceAll("{token}", encodeURIComponent(token)) : null;

interface InvitationShape extends IssuedLink {
  email: string;
  role: RoleValue;
  url: string | null;
}

export const InvitationLink = builder.objectRef<InvitationShape>("InvitationLink").implement({
  description: "A one-time invitation. Hand the url (or the token) to the person invited; it is shown this once.",
  fields: (t) => ({
    token: t.exposeString("token", {
      description: "The invitation token (`ppi_…`), for acceptInvitation. Shown this once; only a keyed hash is kept.",
    }),
    url: t.exposeString("url", {
      nullable: true,
      description: "The link to hand over (INVITATION_URL_TEMPLATE with the token); null when no template is configured.",
    }),
    expiresAt: t.expose("expiresAt", { type: "DateTime" }),
    email: t.exposeString("email"),
    role: t.expose("role", { type: Role }),
  }),
});

interface PasswordResetShape extends IssuedLink {
  userId: string;
  url: string | null;
}

const PasswordResetLink = builder.objectRef<PasswordResetShape>("PasswordResetLink").implement({
  description: "A one-time password reset. Hand the url (or the token) to its user; it is shown this once.",
  fields: (t) => ({
    token: t.exposeString("token", {
      description: "The reset token (`ppr_…`), for resetPassword. Shown this once; only a keyed hash is kept.",
    }),
    url: t.exposeString("url", {
      nullable: true,
      description: "The link to hand over (PASSWORD_RESET_URL_TEMPLATE with the token); null when no template is configured.",
    }),
    expiresAt: t.expose("expiresAt", { type: "DateTime" }),
    user: t.prismaField({
      type: User,
      resolve: (query, link, _args, ctx) => ctx.prisma.user.findUniqueOrThrow({ ...query, where: { id: link.userId } }),
    }),
  }),
});

const PrimaryContactInput = builder.inputType("PrimaryContactInput", {
  description:
    "Exactly one of: `userId`, an existing developer with no partner, who is moved in; or `email` with `username`, " +
    "for whom a user without a password is made and invited.",
  fields: (t) => ({
    userId: t.globalID({ for: User, required: false }),
    email: t.string({ required: false, description: "Trimmed and lower-cased before use." }).validate(email.nullish()),
    username: t.string({ required: false }).validate(username.nullish()),
  }),
});

const CreatePartnerInput = builder.inputType("CreatePartnerInput", {
  fields: (t) => ({
    name: t.string().validate(partnerName),
    supportTier: t.field({ type: SupportTier, required: false, description: "Defaults to standard." }),
    status: t.field({ type: PartnerStatus, required: false, description: "Defaults to active." }),
    primaryContact: t.field({
      type: PrimaryContactInput,
      description: "Becomes the partner's partnerAdmin and primary contact, in the same transaction.",
    }),
  }),
});

interface CreatePartnerShape {
  partnerId: string;
  invitation: InvitationShape | null;
}

const CreatePartnerPayload = builder.objectRef<CreatePartnerShape>("CreatePartnerPayload").implement({
  fields: (t) => ({
    partner: t.prismaField({
      type: PartnerOrganization,
      resolve: (query, payload, _args, ctx) =>
        ctx.prisma.partnerOrganization.findUniqueOrThrow({ ...query, where: { id: payload.partnerId } }),
    }),
    invitation: t.field({
      type: InvitationLink,
      nullable: true,
      description: "The primary contact's invitation when one was made for an email; null for an existing user.",
      resolve: (payload) => payload.invitation,
    }),
  }),
});

/** The user acting; every write here admits only signed-in users. */
function actingUserId(ctx: Context): string {
  if (!ctx.viewer) throw unauthenticated();
  return ctx.viewer.id;
}

function primaryContact(input: { userId?: { id: string; typename: string } | null; email?: string | null; username?: string | null }): PrimaryContact {
  const problem = (message: string) =>
    badInput(`primaryContact: ${message}`, { issues: [{ path: ["input", "primaryContact"], message }] });
  if (input.userId && (input.email || input.username)) throw problem("Give either userId, or email and username");
  if (input.userId) return { userId: input.userId.id };
  if (!input.email || !input.username) throw problem("Give either userId, or email and username");
  return { email: input.email, username: input.username };
}

builder.mutationFields((t) => ({
  createPartner: t.field({
    type: CreatePartnerPayload,
    description:
      "Admin only. Creates a partner with its primary contact as its partnerAdmin, in one transaction. For an email, " +
      "the answer carries the contact's invitation (shown once). A taken username or email is a CONFLICT.",
    authScopes: { admin: true },
    args: { input: t.arg({ type: CreatePartnerInput }) },
    resolve: async (_root, { input }, ctx) => {
      const contact = primaryContact(input.primaryContact);
      const { id, invitation } = await ctx.services.partners.create({
        name: input.name,
        supportTier: input.supportTier ?? undefined,
        status: input.status ?? undefined,
        primaryContact: contact,
        actorUserId: actingUserId(ctx),
      });
      return {
        partnerId: id,
        invitation:
          invitation && "email" in contact
            ? { ...invitation, email: contact.email, role: "partnerAdmin" as const, url: linkUrl(ctx.services.links.invitation, invitation.token) }
            : null,
      };
    },
  }),

  inviteUser: t.field({
    type: InvitationLink,
    description:
      "Invites someone to join with a role: admins any role (staff without a partner, partner roles with one), a " +
      "partnerAdmin developers of their own active partner. Answers a one-time link (shown once) that " +
      "acceptInvitation redeems. A registered email is a CONFLICT.",
    args: {
      email: t.arg.string({ validate: email }),
      role: t.arg({ type: Role }),
      partnerId: t.arg.globalID({ for: PartnerOrganization, required: false }),
    },
    authScopes: (_root, args) =>
      args.role === "developer" && args.partnerId
        ? { admin: true, activePartnerAdmin: args.partnerId.id }
        : { admin: true },
    resolve: async (_root, args, ctx) => {
      const link = await ctx.services.invitations.invite({
        email: args.email,
        role: args.role,
        partnerId: args.partnerId?.id ?? null,
        actorUserId: actingUserId(ctx),
      });
      return { ...link, email: args.email, role: args.role, url: linkUrl(ctx.services.links.invitation, link.token) };
    },
  }),

  acceptInvitation: t.field({
    type: AuthPayload,
    description:
      "Redeems an invitation: makes the account with this username and password (or completes the one made for a " +
      "partner's primary contact) and signs it in. A link works once and until it expires; an unknown, used or " +
      "expired one is BAD_USER_INPUT. A taken username is a CONFLICT, and the link keeps working.",
    args: {
      token: t.arg.string({ description: "The `ppi_…` token of the invitation." }),
      username: t.arg.string({ validate: username }),
      password: t.arg.string({ validate: newPassword }),
    },
    resolve: async (_root, args, ctx) => {
      const { userId } = await ctx.services.invitations.accept(args);
      ctx.authenticatedNow.add(userId);
      const userAgent = ctx.request?.headers.get("user-agent") ?? null;
      return { ...(await ctx.services.sessions.start(userId, userAgent)), user: { id: userId } };
    },
  }),

  createPasswordReset: t.withAuth({ admin: true }).field({
    type: PasswordResetLink,
    description:
      "Admin only. A one-time link (shown once) with which the user chooses a new password (resetPassword). " +
      "The current password keeps working until the link is used.",
    args: { userId: t.arg.globalID({ for: User }) },
    resolve: async (_root, args, ctx) => {
      const link = await ctx.services.invitations.createPasswordReset({ userId: args.userId.id, actorUserId: ctx.viewer.id });
      return { ...link, userId: args.userId.id, url: linkUrl(ctx.services.links.passwordReset, link.token) };
    },
  }),

  resetPassword: t.boolean({
    description:
      "Sets a new password with a password-reset link, and ends every session of that user on every instance. A " +
      "link works once and until it expires; an unknown, used or expired one is BAD_USER_INPUT.",
    args: {
      token: t.arg.string({ description: "The `ppr_…` token of the reset." }),
      password: t.arg.string({ validate: newPassword }),
    },
    resolve: async (_root, args, ctx) => {
      await ctx.services.invitations.resetPassword(args);
      return true;
    },
  }),
}));
