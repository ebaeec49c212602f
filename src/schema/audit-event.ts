import { AUDIT_ACTIONS } from "../domain/audit.js";
import type { Prisma, User as UserRow } from "../generated/prisma/client.js";
import { readPolicy } from "./access.js";
import { builder } from "./builder.js";
import { readableUser, User } from "./user.js";

export const AuditAction = builder.enumType("AuditAction", {
  description: "What an audit event records.",
  values: AUDIT_ACTIONS,
});

/** Who may read an audit event: admins every one, a partner's partnerAdmins that partner's. */
export const auditEventPolicy = readPolicy<{ partnerId: string | null }, Prisma.AuditEventWhereInput>({
  admin: true,
  partnerAdmin: "partnerId",
});

/** A parent row whose `select` loaded the named user relation (Pothos does not type it). */
type WithUser<K extends string> = Record<K, UserRow | null>;

export const AuditEvent = builder.prismaNode("AuditEvent", {
  id: { field: "id" },
  // Select mode: only the columns the selected fields (and this type's authScopes) need.
  select: { id: true, partnerId: true },
  description: "Who did what, when, to which key or credential. Readable by admins and the key's partnerAdmins.",
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
    apiKey: t.relation("apiKey", { nullable: true }),
    detail: t.expose("detail", {
      type: "JSON",
      nullable: true,
      description: "What changed (name, scopes, expiry, grace period). Never a secret or its hash.",
    }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
  }),
});

