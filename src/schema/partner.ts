import { z } from "zod";
import type { Context, Viewer } from "../context.js";
import type { Prisma } from "../generated/prisma/client.js";
import { invalidateLive, liveKey } from "../realtime/live-queries.js";
import { builder, isStaff, memberPartnerId } from "./builder.js";
import { badInput, notFound } from "./errors.js";
import { containsText } from "./text-search.js";

export const PartnerStatus = builder.enumType("PartnerStatus", {
  values: {
    active: { description: "Members may use and manage the partner's keys." },
    suspended: { description: "Data is kept; members' writes are refused and keys do not verify." },
  } as const,
});

export const SupportTier = builder.enumType("SupportTier", {
  values: ["standard", "premium", "enterprise"] as const,
});

// The partner rule, in one place. Records that belong to a partner (keys, usage, docs) reuse it:
// staff read every partner, a partnerAdmin or developer reads only their own, nobody else any.

/** Scopes that may read a partner's records: staff, or a member of that partner. */
export const partnerReadScopes = (partnerId: string) => ({ staff: true, partnerMember: partnerId });

/**
 * A `partnerId` filter matching the partners the viewer may read: undefined (no filter) for staff,
 * the viewer's own partner for its members, and a filter matching nothing for everyone else.
 */
export function partnerIdVisibleTo(viewer: Viewer | null): string | { in: string[] } | undefined {
  if (isStaff(viewer)) return undefined;
  return memberPartnerId(viewer) ?? { in: [] };
}

/** The partners the viewer may read, as a `where`. */
export const partnerVisibleTo = (viewer: Viewer | null): Prisma.PartnerOrganizationWhereInput => ({
  id: partnerIdVisibleTo(viewer),
});

export const PartnerOrganization = builder.prismaNode("PartnerOrganization", {
  id: { field: "id" },
  select: { id: true },
  description:
    "A partner organisation that uses the company's API. Readable by staff and its own members; to anyone else it does not exist.",
  // A node(id) lookup of a partner the viewer may not read answers null.
  nullable: true,
  findUnique: (id, ctx) => ({ id, AND: [partnerVisibleTo(ctx.viewer)] }),
  // The gateway meets a partner only through a key it verified (lists and lookups filter by the
  // viewer, which it is not), and needs its status and name there.
  authScopes: (partner) => ({ ...partnerReadScopes(partner.id), gateway: true }),
  fields: (t) => ({
    name: t.exposeString("name"),
    status: t.expose("status", { type: PartnerStatus }),
    supportTier: t.expose("supportTier", { type: SupportTier }),
    primaryContact: t.relation("primaryContact", {
      nullable: true,
      description: "A member of this partner who may edit its name and primary contact (when a partnerAdmin).",
    }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
    updatedAt: t.expose("updatedAt", { type: "DateTime" }),
  }),
});

const partnerName = z
  .string()
  .trim()
  .min(1, "Name is required")
  .max(120, "Name must be at most 120 characters");

const partnerSearch = z.string().trim().max(120, "Search must be at most 120 characters");

function partnersWhere(
  ctx: Context,
  args: { status?: "active" | "suspended" | null; search?: string | null },
): Prisma.PartnerOrganizationWhereInput {
  return {
    AND: [
      partnerVisibleTo(ctx.viewer),
      args.status ? { status: args.status } : {},
      args.search ? { name: containsText(args.search) } : {},
    ],
  };
}

builder.queryFields((t) => ({
  partners: t.prismaConnection(
    {
      type: "PartnerOrganization",
      cursor: "id",
      description:
        "Partner organisations the viewer may read, ordered by name: every one for staff, their own for a partner's members, none for anyone else.",
      args: {
        status: t.arg({ type: PartnerStatus, required: false }),
        search: t.arg.string({
          required: false,
          description: "Matches part of the name literally (no wildcards), ignoring case.",
          validate: partnerSearch,
        }),
      },
      totalCount: (_connection, args, ctx) => ctx.prisma.partnerOrganization.count({ where: partnersWhere(ctx, args) }),
      resolve: (query, _root, args, ctx) =>
        ctx.prisma.partnerOrganization.findMany({
          ...query,
          where: partnersWhere(ctx, args),
          orderBy: [{ name: "asc" }, { id: "asc" }],
        }),
    },
    { description: "A page of partner organisations." },
  ),

  partner: t.prismaField({
    type: "PartnerOrganization",
    nullable: true,
    description: "A partner organisation by id; null when it does not exist or the viewer may not read it.",
    args: { id: t.arg.globalID({ for: PartnerOrganization }) },
    resolve: (query, _root, { id }, ctx) =>
      ctx.prisma.partnerOrganization.findFirst({ ...query, where: { AND: [{ id: id.id }, partnerVisibleTo(ctx.viewer)] } }),
  }),
}));

const CreatePartnerInput = builder.inputType("CreatePartnerInput", {
  fields: (t) => ({
    name: t.string().validate(partnerName),
    supportTier: t.field({ type: SupportTier, required: false, description: "Defaults to standard." }),
    status: t.field({ type: PartnerStatus, required: false, description: "Defaults to active." }),
  }),
});

const UpdatePartnerInput = builder.inputType("UpdatePartnerInput", {
  description:
    "Fields left out (or null, for name, status and supportTier) are unchanged. name and primaryContactId: admin, or the partner's primary contact while a partnerAdmin of an active partner. status and supportTier: admin only.",
  fields: (t) => ({
    name: t.string({ required: false }).validate(partnerName.nullish()),
    primaryContactId: t.globalID({
      required: false,
      description: "A User who is a member of this partner; null clears the primary contact.",
    }),
    status: t.field({ type: PartnerStatus, required: false }),
    supportTier: t.field({ type: SupportTier, required: false }),
  }),
});

/** Who may write each UpdatePartnerInput field. Admin may write all of them. */
async function updatePartnerScopes(
  partnerId: string,
  input: { status?: unknown; supportTier?: unknown },
  ctx: Context,
) {
  if (input.status != null || input.supportTier != null) return { admin: true };
  const partner = await ctx.prisma.partnerOrganization.findUnique({
    where: { id: partnerId },
    select: { primaryContactId: true },
  });
  const isPrimaryContact = !!ctx.viewer && partner?.primaryContactId === ctx.viewer.id;
  return isPrimaryContact ? { admin: true, activePartnerAdmin: partnerId } : { admin: true };
}

builder.mutationFields((t) => ({
  createPartner: t.prismaField({
    type: "PartnerOrganization",
    description: "Admin only.",
    authScopes: { admin: true },
    args: { input: t.arg({ type: CreatePartnerInput }) },
    resolve: (query, _root, { input }, ctx) =>
      ctx.prisma.partnerOrganization.create({
        ...query,
        data: { name: input.name, supportTier: input.supportTier ?? undefined, status: input.status ?? undefined },
      }),
  }),

  updatePartner: t.prismaField({
    type: "PartnerOrganization",
    description:
      "Changes a partner. Each input field is checked on its own (see UpdatePartnerInput); one the caller may not set refuses the whole change with FORBIDDEN.",
    args: {
      id: t.arg.globalID({ for: PartnerOrganization }),
      input: t.arg({ type: UpdatePartnerInput }),
    },
    authScopes: (_root, { id, input }, ctx) => updatePartnerScopes(id.id, input, ctx),
    resolve: async (query, _root, { id, input }, ctx) => {
      const contactId = input.primaryContactId === undefined ? undefined : (input.primaryContactId?.id ?? null);
      const updated = await ctx.prisma.$transaction(async (tx) => {
        const partner = await tx.partnerOrganization.findUnique({ where: { id: id.id }, select: { id: true } });
        if (!partner) throw notFound("No such partner");
        if (contactId && input.primaryContactId?.typename !== "User") {
          throw badInput("primaryContactId: not a User id", {
            issues: [{ path: ["input", "primaryContactId"], message: "Not a User id" }],
          });
        }
        if (contactId) {
          // Lock the contact's row so a concurrent setUserPartner cannot move them out meanwhile.
          const contact = await tx.$queryRaw<Array<{ partnerId: string | null }>>`
            SELECT "partnerId" FROM "User" WHERE id = ${contactId} FOR UPDATE`;
          if (contact[0]?.partnerId !== id.id) {
            throw badInput("primaryContactId: the primary contact must be a member of this partner", {
              issues: [{ path: ["input", "primaryContactId"], message: "Not a member of this partner" }],
            });
          }
        }
        return tx.partnerOrganization.update({
          ...query,
          where: { id: id.id },
          data: {
            name: input.name ?? undefined,
            status: input.status ?? undefined,
            supportTier: input.supportTier ?? undefined,
            primaryContactId: contactId,
          },
        });
      });
      // Keys of a suspended partner stop verifying (and verify again on reactivation) on every instance.
      if (input.status != null) await ctx.services.apiKeyVerifier.invalidatePartner(id.id);
      invalidateLive(ctx.services, [liveKey("PartnerOrganization", id.id), "Query.partners"]);
      return updated;
    },
  }),
}));
