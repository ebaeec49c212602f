import { z } from "zod";
import { badInput } from "../errors.js";
import type { Prisma } from "../generated/prisma/client.js";
import { readPolicy } from "./access.js";
import { builder } from "./builder.js";
import type { Context } from "./context.js";
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

/**
 * Who may read a partner: staff every one, a partnerAdmin or developer their own, nobody else
 * any. Records that belong to a partner (keys, usage, docs) have policies of the same shape on
 * their own `partnerId`.
 */
export const partnerPolicy = readPolicy<{ id: string }, Prisma.PartnerOrganizationWhereInput>({
  staff: true,
  partnerMember: "id",
});

export const PartnerOrganization = builder.prismaNode("PartnerOrganization", {
  id: { field: "id" },
  select: { id: true },
  description:
    "A partner organisation that uses the company's API. Readable by staff and its own members; to anyone else it does not exist.",
  // A node(id) lookup of a partner the viewer may not read answers null.
  nullable: true,
  findUnique: (id, ctx) => ({ id, AND: [partnerPolicy.where(ctx)] }),
  // The gateway meets a partner only through a key it verified (lists and lookups filter by the
  // policy, which does not admit it), and needs its status and name there.
  authScopes: (partner) => ({ ...partnerPolicy.scopes(partner), gateway: true }),
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

export const partnerName = z
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
      partnerPolicy.where(ctx),
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
      ctx.prisma.partnerOrganization.findFirst({ ...query, where: { AND: [{ id: id.id }, partnerPolicy.where(ctx)] } }),
  }),
}));

const UpdatePartnerInput = builder.inputType("UpdatePartnerInput", {
  description:
    "Fields left out (or null, for name, status and supportTier) are unchanged. name and primaryContactId: admin, or the partner's primary contact while a partnerAdmin of an active partner. status and supportTier: admin only.",
  fields: (t) => ({
    name: t.string({ required: false }).validate(partnerName.nullish()),
    primaryContactId: t.globalID({
      required: false,
      description: "A User who is a member of this partner. A partner keeps a primary contact: null is BAD_USER_INPUT.",
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
      if (input.primaryContactId && input.primaryContactId.typename !== "User") {
        throw badInput("primaryContactId: not a User id", {
          issues: [{ path: ["input", "primaryContactId"], message: "Not a User id" }],
        });
      }
      await ctx.services.partners.update(id.id, {
        name: input.name ?? undefined,
        status: input.status ?? undefined,
        supportTier: input.supportTier ?? undefined,
        primaryContactId: input.primaryContactId === undefined ? undefined : (input.primaryContactId?.id ?? null),
      }, ctx.viewer?.id ?? null);
      return ctx.prisma.partnerOrganization.findUniqueOrThrow({ ...query, where: { id: id.id } });
    },
  }),
}));
