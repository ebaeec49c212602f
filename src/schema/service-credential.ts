import type { Prisma } from "../db/index.js";
import { serviceCredentialName } from "../domain/service-credentials.js";
import { readPolicy } from "./access.js";
import { builder } from "./builder.js";

/**
 * Machine credentials for the company's API gateway: sent as `Authorization: Bearer pps_…`, they
 * may verify API keys and report usage (the `gateway` scope). Only admins see or manage them;
 * the first one is usually made with `npm run service-credential -- create <name>`.
 */
/** Who may read a service credential: admins. */
export const serviceCredentialPolicy = readPolicy<{ id: string }, Prisma.ServiceCredentialWhereInput>({ admin: true });

export const ServiceCredential = builder.prismaNode("ServiceCredential", {
  id: { field: "id" },
  select: { id: true },
  description: "A machine credential for the company's API gateway. Admins only; the secret is shown once.",
  // A node(id) lookup by anyone but an admin answers null.
  nullable: true,
  findUnique: (id, ctx) => ({ id, AND: [serviceCredentialPolicy.where(ctx)] }),
  authScopes: (credential) => serviceCredentialPolicy.scopes(credential),
  fields: (t) => ({
    name: t.exposeString("name"),
    tokenPrefix: t.exposeString("tokenPrefix", { description: "The first characters of the secret." }),
    isActive: t.boolean({ select: { revokedAt: true }, resolve: (credential) => credential.revokedAt === null }),
    revokedAt: t.expose("revokedAt", { type: "DateTime", nullable: true }),
    lastUsedAt: t.expose("lastUsedAt", { type: "DateTime", nullable: true }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
    updatedAt: t.expose("updatedAt", { type: "DateTime" }),
  }),
});

const CreateServiceCredentialPayload = builder
  .objectRef<{ id: string; secret: string }>("CreateServiceCredentialPayload")
  .implement({
    fields: (t) => ({
      serviceCredential: t.prismaField({
        type: ServiceCredential,
        resolve: (query, payload, _args, ctx) =>
          ctx.prisma.serviceCredential.findUniqueOrThrow({ ...query, where: { id: payload.id } }),
      }),
      secret: t.exposeString("secret", {
        description: "Send as `Authorization: Bearer <secret>`. Shown this once; only a keyed hash is kept.",
      }),
    }),
  });

builder.queryFields((t) => ({
  serviceCredentials: t.prismaConnection({
    type: ServiceCredential,
    cursor: "id",
    authScopes: { admin: true },
    description: "The gateway's credentials, newest first. Admins only.",
    args: { includeRevoked: t.arg.boolean({ required: false, defaultValue: false }) },
    totalCount: (_connection, args, ctx) =>
      ctx.prisma.serviceCredential.count({ where: args.includeRevoked ? {} : { revokedAt: null } }),
    resolve: (query, _root, args, ctx) =>
      ctx.prisma.serviceCredential.findMany({
        ...query,
        where: args.includeRevoked ? {} : { revokedAt: null },
        orderBy: [{ createdAt: "desc" }, { id: "desc" }],
      }),
  }),
}));

builder.mutationFields((t) => ({
  createServiceCredential: t.withAuth({ admin: true }).field({
    type: CreateServiceCredentialPayload,
    description: "Creates a credential for the API gateway. Admins only. The secret is shown once.",
    args: { name: t.arg.string({ required: true, validate: serviceCredentialName }) },
    resolve: (_root, args, ctx) => ctx.services.serviceCredentials.issue({ name: args.name, actorUserId: ctx.viewer.id }),
  }),

  revokeServiceCredential: t.withAuth({ admin: true }).prismaField({
    type: ServiceCredential,
    description: "Revokes a credential: its token is refused from the next request on. Admins only.",
    args: { id: t.arg.globalID({ for: ServiceCredential, required: true }) },
    resolve: async (query, _root, args, ctx) => {
      await ctx.services.serviceCredentials.revoke({ id: args.id.id, actorUserId: ctx.viewer.id });
      return ctx.prisma.serviceCredential.findUniqueOrThrow({ ...query, where: { id: args.id.id } });
    },
  }),
}));
