import { storableDate } from "../db/dates.js";
import { AUDIT_ACTIONS } from "../domain/audit.js";
import type { Prisma, User as UserRow } from "../generated/prisma/client.js";
import { readPolicy } from "./access.js";
import { builder } from "./builder.js";
import type { Context } from "./context.js";
import { PartnerOrganization, partnerPolicy } from "./partner.js";
import { readableUser, User } from "./user.js";

export const AuditAction = builder.enumType("AuditAction", {
  description: "What an audit event records.",
  values: AUDIT_ACTIONS,
});

/**
 * Who may read an audit event: staff every one (support read-only, as everywhere), a partner's
 * partnerAdmins the events naming that partner. Events about docs name no partner (a draft's
 * title is for staff), and a user's move between partners writes one event per partner.
 */
export const auditEventPolicy = readPolicy<{ partnerId: string | null }, Prisma.AuditEventWhereInput>({
  staff: true,
  partnerAdmin: "partnerId",
});

/** A parent row whose `select` loaded the named user relation (Pothos does not type it). */
type WithUser<K extends string> = Record<K, UserRow | null>;

export const AuditEvent = builder.prismaNode("AuditEvent", {
  id: { field: "id" },
  // Select mode: only the columns the selected fields (and this type's authScopes) need.
  select: { id: true, partnerId: true },
  description:
    "Who did what, when, to which record, with a small diff (never a secret). Readable by staff, and by a partner's partnerAdmins for the events naming that partner.",
  // A node(id) lookup of an event the viewer may not read answers null.
  nullable: true,
  findUnique: (id, ctx) => ({ id, AND: [auditEventPolicy.where(ctx)] }),
  authScopes: (event) => auditEventPolicy.scopes(event),
  fields: (t) => ({
    action: t.expose("action", { type: AuditAction }),
    actor: t.field({
      type: User,
      nullable: true,
      description: "The user who acted; null for the command line, or when the viewer may not read that user.",
      select: (_args, _ctx, nestedSelection) => ({ actorUser: nestedSelection(true) }),
      resolve: (event, _args, ctx) => readableUser(ctx, (event as WithUser<"actorUser">).actorUser),
    }),
    serviceCredential: t.relation("actorCredential", {
      nullable: true,
      description: "The service credential that acted, or that was acted on. Admins only.",
      authScopes: { admin: true },
      unauthorizedResolver: () => null,
    }),
    partner: t.relation("partner", {
      nullable: true,
      description: "The partner the event concerns; null when none, or when the viewer may not read it.",
      authScopes: (event) => (event.partnerId ? partnerPolicy.scopes({ id: event.partnerId }) : true),
      unauthorizedResolver: () => null,
    }),
    apiKey: t.relation("apiKey", { nullable: true }),
    user: t.field({
      type: User,
      nullable: true,
      description: "The user acted on (a role or partner change); null when none, or when the viewer may not read that user.",
      select: (_args, _ctx, nestedSelection) => ({ user: nestedSelection(true) }),
      resolve: (event, _args, ctx) => readableUser(ctx, (event as WithUser<"user">).user),
    }),
    developerDoc: t.relation("developerDoc", {
      nullable: true,
      description: "The doc acted on; null once deleted (the detail then names it). Staff only.",
      authScopes: { staff: true },
      unauthorizedResolver: () => null,
    }),
    detail: t.expose("detail", {
      type: "JSON",
      nullable: true,
      description: "What changed: fields as `{ from, to }`, or the new record's main fields. Never a secret or its hash.",
    }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
  }),
});

const AuditEventFilter = builder.inputType("AuditEventFilter", {
  fields: (t) => ({
    actorId: t.globalID({ required: false, for: User, description: "Events by this user." }),
    partnerId: t.globalID({ required: false, for: PartnerOrganization, description: "Events naming this partner." }),
    action: t.field({ type: AuditAction, required: false }),
    from: t.field({ type: "DateTime", required: false, description: "At or after this time." }).validate(storableDate.nullish()),
    to: t.field({ type: "DateTime", required: false, description: "Before this time." }).validate(storableDate.nullish()),
  }),
});

interface AuditFilter {
  actorId?: { id: string } | null;
  partnerId?: { id: string } | null;
  action?: Prisma.AuditEventWhereInput["action"] | null;
  from?: Date | null;
  to?: Date | null;
}

function auditEventsWhere(ctx: Context, filter: AuditFilter | null | undefined): Prisma.AuditEventWhereInput {
  return {
    AND: [
      auditEventPolicy.where(ctx),
      filter?.actorId ? { actorUserId: filter.actorId.id } : {},
      filter?.partnerId ? { partnerId: filter.partnerId.id } : {},
      filter?.action ? { action: filter.action } : {},
      filter?.from || filter?.to
        ? { createdAt: { ...(filter.from ? { gte: filter.from } : {}), ...(filter.to ? { lt: filter.to } : {}) } }
        : {},
    ],
  };
}

builder.queryFields((t) => ({
  auditEvents: t.prismaConnection(
    {
      type: AuditEvent,
      cursor: "id",
      description:
        "The audit log, newest first. Staff read every event; a partnerAdmin the events naming its own partner; anyone else is FORBIDDEN.",
      authScopes: (_root, _args, ctx) => ({ staff: true, partnerAdmin: ctx.viewer?.partnerId ?? "" }),
      args: { filter: t.arg({ type: AuditEventFilter, required: false }) },
      totalCount: (_connection, args, ctx) => ctx.prisma.auditEvent.count({ where: auditEventsWhere(ctx, args.filter) }),
      resolve: (query, _root, args, ctx) =>
        ctx.prisma.auditEvent.findMany({
          ...query,
          where: auditEventsWhere(ctx, args.filter),
          orderBy: [{ createdAt: "desc" }, { id: "desc" }],
        }),
    },
    { description: "A page of audit events." },
  ),
}));
