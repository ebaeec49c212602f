import { z } from "zod";
import type { Prisma } from "../generated/prisma/client.js";
import { admits, reach, type AccessSubject } from "./access.js";
import { builder } from "./builder.js";
import type { Context } from "./context.js";
import { PartnerOrganization, partnerPolicy } from "./partner.js";
import { containsText } from "./text-search.js";

// Who may read a doc: a published doc with no partner is public (even signed out); a published
// doc of a partner is readable by staff and that partner's members; a draft only by staff.
// Who may write: staff create docs (owned by their author); admin edits, publishes and deletes
// any doc, support only the docs they own.

type DocRow = { isPublished: boolean; partnerId: string | null };

/**
 * Who may read a doc, in the three forms the schema needs. A doc's visibility depends on its own
 * state (draft, public or one partner's), which a policy of grants cannot say, so it is written
 * out here; test/access-policies.test.ts runs the three over the same viewers and docs and fails
 * when they disagree.
 */
export const docPolicy = {
  /** The scope map for scope-auth; true when the doc is public. */
  scopes: (doc: DocRow) => {
    if (!doc.isPublished) return { staff: true as const };
    return doc.partnerId ? { staff: true as const, partnerMember: doc.partnerId } : true;
  },
  allows: (subject: AccessSubject, doc: DocRow) => {
    if (admits("staff", subject)) return true;
    return doc.isPublished && (doc.partnerId === null || admits("partnerMember", subject, doc.partnerId));
  },
  /** The docs the subject may read. Drafts are left out unless asked for (only staff see them). */
  where: (subject: AccessSubject, options: { includeDrafts: boolean } = { includeDrafts: true }): Prisma.DeveloperDocWhereInput => {
    if (admits("staff", subject)) return options.includeDrafts ? {} : { isPublished: true };
    const partners = reach("partnerMember", subject);
    const own = Array.isArray(partners) && partners.length > 0 ? [{ partnerId: { in: [...partners] } }] : [];
    return { isPublished: true, OR: [{ partnerId: null }, ...own] };
  },
};

/** Scopes that may edit, publish or delete the doc with this id: admin, or the support member who owns it. */
export async function docWriteScopes(docId: string, ctx: Context) {
  if (!admits("staff", ctx)) return { admin: true };
  const doc = await ctx.prisma.developerDoc.findUnique({ where: { id: docId }, select: { ownerId: true } });
  return doc && doc.ownerId === ctx.viewer?.id ? { staff: true } : { admin: true };
}

export const DeveloperDoc = builder.prismaNode("DeveloperDoc", {
  id: { field: "id" },
  select: { id: true, isPublished: true, partnerId: true },
  description:
    "A page of developer documentation for one apiVersion. Published docs without a partner are public; a partner's docs are for that partner and staff; drafts are for staff. To anyone else a doc does not exist.",
  nullable: true,
  findUnique: (id, ctx) => ({ id, AND: [docPolicy.where(ctx)] }),
  authScopes: (doc) => docPolicy.scopes(doc),
  fields: (t) => ({
    title: t.exposeString("title"),
    slug: t.exposeString("slug", { description: "Lower-case kebab-case; unique within its apiVersion." }),
    content: t.exposeString("content", { description: "Markdown, exactly as written." }),
    apiVersion: t.exposeString("apiVersion", { description: "`v<major>` (e.g. v1) or a date, YYYY-MM-DD." }),
    isPublished: t.exposeBoolean("isPublished"),
    publishedAt: t.expose("publishedAt", { type: "DateTime", nullable: true }),
    owner: t.relation("owner", {
      nullable: true,
      description: "The author (a staff member). Shown to staff only; null for everyone else.",
      authScopes: { staff: true },
      unauthorizedResolver: () => null,
    }),
    partner: t.relation("partner", {
      nullable: true,
      description: "The only partner the doc is for; null for a public doc, or when the viewer may not read the partner.",
      authScopes: (doc) => (doc.partnerId ? partnerPolicy.scopes({ id: doc.partnerId }) : true),
      unauthorizedResolver: () => null,
    }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
    updatedAt: t.expose("updatedAt", { type: "DateTime" }),
  }),
});

const TITLE_MAX = 200;
const SLUG_MAX = 100;
// Markdown pages stay well under the 1 MiB request limit.
const CONTENT_MAX = 200_000;
const NOTE_MAX = 2_000;

const title = z.string().trim().min(1, "Title is required").max(TITLE_MAX, `Title must be at most ${TITLE_MAX} characters`);
const slug = z
  .string()
  .max(SLUG_MAX, `Slug must be at most ${SLUG_MAX} characters`)
  .regex(/^[a-z0-9]+(?:-[a-z0-9]+)*$/, "Slug must be lower-case kebab-case, e.g. getting-started");
const content = z.string().max(CONTENT_MAX, `Content must be at most ${CONTENT_MAX} characters`);
export const apiVersion = z
  .string()
  .max(10, "apiVersion must be v<major> or YYYY-MM-DD")
  .refine(isApiVersion, "apiVersion must be v<major> (e.g. v1) or a date YYYY-MM-DD (e.g. 2026-11-01)");
const search = z.string().trim().max(200, "Search must be at most 200 characters");

/** `v1`…`v9999`, or a real calendar date written YYYY-MM-DD. */
function isApiVersion(value: string): boolean {
  if (/^v[1-9][0-9]{0,3}$/.test(value)) return true;
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) return false;
  const date = new Date(`${value}T00:00:00Z`);
  return !Number.isNaN(date.getTime()) && date.toISOString().startsWith(value);
}

const DOC_ORDER: Prisma.DeveloperDocOrderByWithRelationInput[] = [{ apiVersion: "asc" }, { slug: "asc" }, { id: "asc" }];

interface DocFilters {
  apiVersion?: string | null;
  includeDrafts?: boolean | null;
  search?: string | null;
}

function docsWhere(ctx: Context, args: DocFilters, partnerId?: string): Prisma.DeveloperDocWhereInput {
  return {
    AND: [
      docPolicy.where(ctx, { includeDrafts: !!args.includeDrafts }),
      args.apiVersion ? { apiVersion: args.apiVersion } : {},
      partnerId ? { partnerId } : {},
      args.search
        ? {
            OR: [
              { title: containsText(args.search) },
              { content: containsText(args.search) },
            ],
          }
        : {},
    ],
  };
}

builder.queryFields((t) => ({
  developerDocs: t.prismaConnection(
    {
      type: "DeveloperDoc",
      cursor: "id",
      description:
        "Docs the viewer may read, ordered by apiVersion then slug. Drafts are included only for staff who ask with includeDrafts.",
      args: {
        apiVersion: t.arg.string({ required: false, validate: apiVersion }),
        partnerId: t.arg.globalID({
          for: PartnerOrganization,
          required: false,
          description: "Only that partner's docs (empty unless the viewer may read them).",
        }),
        includeDrafts: t.arg.boolean({ required: false, description: "Staff only; ignored for everyone else." }),
        search: t.arg.string({
          required: false,
          description: "Matches part of the title or content literally (no wildcards), ignoring case.",
          validate: search,
        }),
      },
      totalCount: (_connection, args, ctx) =>
        ctx.prisma.developerDoc.count({ where: docsWhere(ctx, args, args.partnerId?.id) }),
      resolve: (query, _root, args, ctx) =>
        ctx.prisma.developerDoc.findMany({ ...query, where: docsWhere(ctx, args, args.partnerId?.id), orderBy: DOC_ORDER }),
    },
    { description: "A page of developer docs." },
  ),

  developerDoc: t.prismaField({
    type: "DeveloperDoc",
    nullable: true,
    description: "The doc with this slug in this apiVersion; null when there is none the viewer may read.",
    args: { apiVersion: t.arg.string({ validate: apiVersion }), slug: t.arg.string({ validate: slug }) },
    resolve: (query, _root, args, ctx) =>
      ctx.prisma.developerDoc.findFirst({
        ...query,
        where: {
          AND: [{ apiVersion: args.apiVersion, slug: args.slug }, docPolicy.where(ctx)],
        },
      }),
  }),

  apiVersions: t.stringList({
    description: "The apiVersions that have published docs the viewer may read, in ascending order.",
    resolve: async (_root, _args, ctx) => {
      const rows = await ctx.prisma.developerDoc.findMany({
        where: docPolicy.where(ctx, { includeDrafts: false }),
        distinct: ["apiVersion"],
        select: { apiVersion: true },
        orderBy: { apiVersion: "asc" },
      });
      return rows.map((row) => row.apiVersion);
    },
  }),
}));

builder.prismaObjectField(PartnerOrganization, "developerDocs", (t) =>
  t.relatedConnection("developerDocs", {
    cursor: "id",
    description: "Docs for this partner only, by the same rules and order as Query.developerDocs.",
    totalCount: true,
    args: {
      apiVersion: t.arg.string({ required: false, validate: apiVersion }),
      includeDrafts: t.arg.boolean({ required: false, description: "Staff only; ignored for everyone else." }),
      search: t.arg.string({
        required: false,
        description: "Matches part of the title or content literally (no wildcards), ignoring case.",
        validate: search,
      }),
    },
    query: (args, ctx) => ({ where: docsWhere(ctx, args), orderBy: DOC_ORDER }),
  }),
);

const CreateDeveloperDocInput = builder.inputType("CreateDeveloperDocInput", {
  fields: (t) => ({
    title: t.string().validate(title),
    slug: t.string({ description: "Lower-case kebab-case, unique within the apiVersion." }).validate(slug),
    content: t.string({ description: "Markdown, stored exactly as written." }).validate(content),
    apiVersion: t.string({ description: "`v<major>` (e.g. v1) or a date YYYY-MM-DD." }).validate(apiVersion),
    partnerId: t.globalID({
      required: false,
      for: PartnerOrganization,
      description: "Makes the doc visible to that partner (and staff) only.",
    }),
  }),
});

const UpdateDeveloperDocInput = builder.inputType("UpdateDeveloperDocInput", {
  description: "Fields left out (or null, except partnerId) are unchanged; partnerId null makes the doc public.",
  fields: (t) => ({
    title: t.string({ required: false }).validate(title.nullish()),
    slug: t.string({ required: false }).validate(slug.nullish()),
    content: t.string({ required: false }).validate(content.nullish()),
    apiVersion: t.string({ required: false }).validate(apiVersion.nullish()),
    partnerId: t.globalID({ required: false, for: PartnerOrganization }),
  }),
});

builder.mutationFields((t) => ({
  createDeveloperDoc: t.withAuth({ staff: true }).prismaField({
    type: "DeveloperDoc",
    description: "Staff only. Creates an unpublished doc owned by the caller.",
    args: { input: t.arg({ type: CreateDeveloperDocInput }) },
    resolve: async (query, _root, { input }, ctx) => {
      const { id } = await ctx.services.developerDocs.create({
        title: input.title,
        slug: input.slug,
        content: input.content,
        apiVersion: input.apiVersion,
        partnerId: input.partnerId?.id ?? null,
        ownerId: ctx.viewer.id,
      });
      return ctx.prisma.developerDoc.findUniqueOrThrow({ ...query, where: { id } });
    },
  }),

  updateDeveloperDoc: t.prismaField({
    type: "DeveloperDoc",
    description: "Admin, or the support member who owns the doc.",
    args: {
      id: t.arg.globalID({ for: DeveloperDoc }),
      input: t.arg({ type: UpdateDeveloperDocInput }),
    },
    authScopes: (_root, { id }, ctx) => docWriteScopes(id.id, ctx),
    resolve: async (query, _root, { id, input }, ctx) => {
      await ctx.services.developerDocs.update(id.id, {
        title: input.title ?? undefined,
        slug: input.slug ?? undefined,
        content: input.content ?? undefined,
        apiVersion: input.apiVersion ?? undefined,
        partnerId: input.partnerId === undefined ? undefined : (input.partnerId?.id ?? null),
      }, ctx.viewer?.id ?? null);
      return ctx.prisma.developerDoc.findUniqueOrThrow({ ...query, where: { id: id.id } });
    },
  }),

  publishDeveloperDoc: t.prismaField({
    type: "DeveloperDoc",
    description:
      "Admin, or the support member who owns the doc. Publishes a draft, or announces the changes made to a published doc, " +
      "as a changelog entry with the optional note. Publishing a published doc whose title and content did not change since changes nothing.",
    args: {
      id: t.arg.globalID({ for: DeveloperDoc }),
      note: t.arg.string({
        required: false,
        description: "What changed, for the changelog (plain text).",
        validate: z.string().trim().max(NOTE_MAX, `Note must be at most ${NOTE_MAX} characters`),
      }),
    },
    authScopes: (_root, { id }, ctx) => docWriteScopes(id.id, ctx),
    resolve: async (query, _root, { id, note }, ctx) => {
      await ctx.services.developerDocs.publish(id.id, { actorUserId: ctx.viewer?.id ?? null, note: note?.trim() || null });
      return ctx.prisma.developerDoc.findUniqueOrThrow({ ...query, where: { id: id.id } });
    },
  }),

  unpublishDeveloperDoc: t.prismaField({
    type: "DeveloperDoc",
    description: "Admin, or the support member who owns the doc. The doc becomes a draft again.",
    args: { id: t.arg.globalID({ for: DeveloperDoc }) },
    authScopes: (_root, { id }, ctx) => docWriteScopes(id.id, ctx),
    resolve: async (query, _root, { id }, ctx) => {
      await ctx.services.developerDocs.unpublish(id.id, ctx.viewer?.id ?? null);
      return ctx.prisma.developerDoc.findUniqueOrThrow({ ...query, where: { id: id.id } });
    },
  }),

  deleteDeveloperDoc: t.globalID({
    description: "Admin, or the support member who owns the doc. Answers the deleted doc's id.",
    args: { id: t.arg.globalID({ for: DeveloperDoc }) },
    authScopes: (_root, { id }, ctx) => docWriteScopes(id.id, ctx),
    resolve: async (_root, { id }, ctx) => {
      await ctx.services.developerDocs.delete(id.id, ctx.viewer?.id ?? null);
      return { type: DeveloperDoc, id: id.id };
    },
  }),
}));
