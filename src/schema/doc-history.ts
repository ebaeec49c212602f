import type { Prisma, User as UserRow } from "../generated/prisma/client.js";
import { builder } from "./builder.js";
import type { Context } from "./context.js";
import { admits, type AccessSubject } from "./access.js";
import { apiVersion, DeveloperDoc, docPolicy, docWriteScopes } from "./developer-doc.js";
import { PartnerOrganization, partnerPolicy } from "./partner.js";
import { readableUser, User } from "./user.js";

// A doc's history: the revisions its editors see (every earlier title and content) and the
// changelog its readers see (each publication, with a note).

/** A parent row whose `select` loaded the named user relation (Pothos does not type it). */
type WithUser<K extends string> = Record<K, UserRow | null>;

export const DeveloperDocRevision = builder.prismaObject("DeveloperDocRevision", {
  select: { id: true },
  description:
    "A doc's title and content as they were before one change, with who changed them and when. Readable by those who may edit the doc.",
  // Reached only through DeveloperDoc.revisions, which checks the doc's editors; staff at the least.
  authScopes: { staff: true },
  fields: (t) => ({
    id: t.exposeID("id"),
    previousTitle: t.exposeString("previousTitle"),
    previousContent: t.exposeString("previousContent", { description: "Markdown, as it was." }),
    editor: t.field({
      type: User,
      nullable: true,
      description: "Who made the change; null when unknown or no longer readable.",
      select: (_args, _ctx, nestedSelection) => ({ editor: nestedSelection(true) }),
      resolve: (revision, _args, ctx) => readableUser(ctx, (revision as WithUser<"editor">).editor),
    }),
    changedAt: t.expose("createdAt", { type: "DateTime", description: "When the change was made." }),
  }),
});

builder.prismaObjectField(DeveloperDoc, "revisions", (t) =>
  t.relatedConnection("revisions", {
    cursor: "id",
    nullable: true,
    totalCount: true,
    description: "Earlier titles and contents, newest first. Admins and the support member who owns the doc; null for others.",
    authScopes: (doc, _args, ctx) => docWriteScopes(doc.id, ctx),
    unauthorizedResolver: () => null,
    query: () => ({ orderBy: [{ createdAt: "desc" }, { id: "desc" }] }),
  }),
);

type EntryRow = { partnerId: string | null; doc: { isPublished: boolean; partnerId: string | null } };

/**
 * Who may read a changelog entry: whoever could read the doc as published (public, or that
 * partner's members, and staff), while they may read the doc now too, so unpublishing a doc or
 * moving it to another partner takes its entries out of partners' view. Written out in its three
 * spellings like docPolicy; test/access-policies.test.ts runs them over the same viewers and rows.
 */
export const changelogPolicy = {
  scopes: (entry: EntryRow) => {
    if (!entry.doc.isPublished) return { staff: true as const };
    const partners = [...new Set([entry.partnerId, entry.doc.partnerId].filter((id): id is string => !!id))];
    if (partners.length === 0) return true as const;
    // A member belongs to one partner: entry and doc of two different partners are for staff only.
    return partners.length === 1 ? { staff: true as const, partnerMember: partners[0]! } : { staff: true as const };
  },
  allows: (subject: AccessSubject, entry: EntryRow) =>
    docPolicy.allows(subject, entry.doc) &&
    (entry.partnerId === null || admits("staff", subject) || admits("partnerMember", subject, entry.partnerId)),
  where: (subject: AccessSubject): Prisma.DocChangelogEntryWhereInput => {
    const partners = partnerPolicy.valuesOf(subject, "id");
    const entry: Prisma.DocChangelogEntryWhereInput =
      partners === "all" ? {} : { OR: [{ partnerId: null }, ...(partners.length ? [{ partnerId: { in: partners } }] : [])] };
    return { AND: [entry, { doc: docPolicy.where(subject, { includeDrafts: true }) }] };
  },
};

export const DocChangelogEntry = builder.prismaObject("DocChangelogEntry", {
  select: { id: true, partnerId: true, doc: { select: { isPublished: true, partnerId: true } } },
  description: "One publication of a doc, with what changed: the partner-facing change history.",
  authScopes: (entry) => changelogPolicy.scopes(entry),
  fields: (t) => ({
    id: t.exposeID("id"),
    title: t.exposeString("title", { description: "The doc's title when published." }),
    note: t.exposeString("note", { nullable: true, description: "What changed, as the publisher wrote it." }),
    apiVersion: t.exposeString("apiVersion"),
    publishedAt: t.expose("publishedAt", { type: "DateTime" }),
    doc: t.relation("doc", { description: "The doc as it is now." }),
    partner: t.relation("partner", {
      nullable: true,
      description: "The only partner the doc was for; null for a public doc.",
      authScopes: (entry) => (entry.partnerId ? partnerPolicy.scopes({ id: entry.partnerId }) : true),
      unauthorizedResolver: () => null,
    }),
  }),
});

builder.queryFields((t) => ({
  changelog: t.prismaConnection(
    {
      type: DocChangelogEntry,
      cursor: "id",
      description:
        "Published changes to docs the viewer may read, newest first: public docs for everyone, a partner's docs for its members and staff.",
      args: {
        apiVersion: t.arg.string({ required: false, validate: apiVersion }),
        partnerId: t.arg.globalID({
          for: PartnerOrganization,
          required: false,
          description: "Only that partner's changes (empty unless the viewer may read them).",
        }),
      },
      totalCount: (_connection, args, ctx) => ctx.prisma.docChangelogEntry.count({ where: changelogFilter(ctx, args) }),
      resolve: (query, _root, args, ctx) =>
        ctx.prisma.docChangelogEntry.findMany({
          ...query,
          where: changelogFilter(ctx, args),
          orderBy: [{ publishedAt: "desc" }, { id: "desc" }],
        }),
    },
    { description: "A page of changelog entries." },
  ),
}));

function changelogFilter(ctx: Context, args: { apiVersion?: string | null; partnerId?: { id: string } | null }) {
  return {
    AND: [
      changelogPolicy.where(ctx),
      args.apiVersion ? { apiVersion: args.apiVersion } : {},
      args.partnerId ? { partnerId: args.partnerId.id } : {},
    ],
  } satisfies Prisma.DocChangelogEntryWhereInput;
}
