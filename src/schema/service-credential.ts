import { z } from "zod";
import { generateSecret, hashSecret, type SecretEnvironment } from "../auth/api-key-secret.js";
import type { PrismaClient } from "../db/index.js";
import { builder } from "./builder.js";
import { conflict, isUniqueViolation, notFound } from "./errors.js";

/**
 * Machine credentials for the company's API gateway: sent as `Authorization: Bearer pps_…`, they
 * may verify API keys and report usage (the `gateway` scope). Only admins see or manage them;
 * the first one is usually made with `npm run service-credential -- create <name>`.
 */
export const ServiceCredential = builder.prismaNode("ServiceCredential", {
  id: { field: "id" },
  select: { id: true },
  description: "A machine credential for the company's API gateway. Admins only; the secret is shown once.",
  // A node(id) lookup by anyone but an admin answers null.
  nullable: true,
  findUnique: (id, ctx) => (ctx.viewer?.role === "admin" ? { id } : { id, AND: [{ id: { in: [] } }] }),
  authScopes: { admin: true },
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

export const serviceCredentialName = z
  .string()
  .trim()
  .min(3, "Name must be at least 3 characters")
  .max(64, "Name must be at most 64 characters")
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]*$/, "Name may use letters, digits, '.', '_', ':' and '-'");

export class ServiceCredentialNameTaken extends Error {}

/**
 * Creates a credential and its audit event; answers the secret, which exists nowhere else.
 * Shared by the GraphQL mutation and the command line.
 */
export async function issueServiceCredential(
  prisma: PrismaClient,
  options: { hashKey: Uint8Array; environment: SecretEnvironment; name: string; actorUserId: string | null },
): Promise<{ id: string; secret: string }> {
  const { secret, tokenPrefix } = generateSecret("pps", options.environment);
  try {
    const credential = await prisma.serviceCredential.create({
      data: {
        name: options.name,
        tokenPrefix,
        secretHash: hashSecret(options.hashKey, secret),
        auditEvents: {
          create: {
            action: "serviceCredentialCreated",
            actorUserId: options.actorUserId,
            detail: { name: options.name, via: options.actorUserId ? "api" : "cli" },
          },
        },
      },
      select: { id: true },
    });
    return { id: credential.id, secret };
  } catch (error) {
    if (isUniqueViolation(error)) throw new ServiceCredentialNameTaken(`A service credential named ${options.name} exists`);
    throw error;
  }
}

/** Revokes a credential (idempotent); its token is refused from the next request on. */
export async function revokeServiceCredentialById(
  prisma: PrismaClient,
  options: { id: string; now: Date; actorUserId: string | null },
): Promise<boolean> {
  return prisma.$transaction(async (tx) => {
    const { count } = await tx.serviceCredential.updateMany({
      where: { id: options.id, revokedAt: null },
      data: { revokedAt: options.now },
    });
    if (count === 0) return false;
    await tx.auditEvent.create({
      data: {
        action: "serviceCredentialRevoked",
        actorUserId: options.actorUserId,
        actorCredentialId: options.id,
        detail: { via: options.actorUserId ? "api" : "cli" },
      },
    });
    return true;
  });
}

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
    resolve: async (_root, args, ctx) => {
      try {
        return await issueServiceCredential(ctx.prisma, {
          hashKey: ctx.services.secrets.apiKeyHashSecret,
          environment: ctx.services.config.apiKeys.environment,
          name: args.name,
          actorUserId: ctx.viewer.id,
        });
      } catch (error) {
        if (error instanceof ServiceCredentialNameTaken) throw conflict(error.message, { field: "name" });
        throw error;
      }
    },
  }),

  revokeServiceCredential: t.withAuth({ admin: true }).prismaField({
    type: ServiceCredential,
    description: "Revokes a credential: its token is refused from the next request on. Admins only.",
    args: { id: t.arg.globalID({ for: ServiceCredential, required: true }) },
    resolve: async (query, _root, args, ctx) => {
      const exists = await ctx.prisma.serviceCredential.count({ where: { id: args.id.id } });
      if (!exists) throw notFound("No such service credential");
      await revokeServiceCredentialById(ctx.prisma, { id: args.id.id, now: ctx.services.now(), actorUserId: ctx.viewer.id });
      ctx.services.serviceCredentials.revoked(args.id.id);
      return ctx.prisma.serviceCredential.findUniqueOrThrow({ ...query, where: { id: args.id.id } });
    },
  }),
}));
