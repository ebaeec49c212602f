import { queryFromInfo } from "@pothos/plugin-prisma";
import { z } from "zod";
import { generateSecret, hashSecret } from "../auth/api-key-secret.js";
import { VERIFICATION_CODES, type Verification } from "../auth/api-key-verifier.js";
import type { Context, Viewer } from "../context.js";
import type { Prisma } from "../db/index.js";
import { storableDate } from "../db/dates.js";
import { invalidateLive, liveKey } from "../realtime/live-queries.js";
import type { User as UserRow } from "../generated/prisma/client.js";
import { builder } from "./builder.js";
import { newestFirstPage } from "./pagination.js";
import { badInput, conflict, isUniqueViolation, notFound, unauthenticated } from "./errors.js";
import { PartnerOrganization, partnerIdVisibleTo, partnerReadScopes } from "./partner.js";
import { readableUser, User } from "./user.js";
import "./service-credential.js";

/**
 * The declared scopes a key may carry. GraphQL enum names cannot contain ':', so each value's
 * GraphQL name (USAGE_READ) stands for the string stored on the key and answered by verification
 * (`usage:read`).
 */
export const API_KEY_SCOPES = {
  API_READ: { value: "api:read", description: "`api:read`: read-only calls to the company's API." },
  API_WRITE: { value: "api:write", description: "`api:write`: calls that change data through the company's API." },
  USAGE_READ: { value: "usage:read", description: "`usage:read`: read the partner's usage logs and totals." },
  USAGE_WRITE: { value: "usage:write", description: "`usage:write`: report usage." },
  DOCS_READ: { value: "docs:read", description: "`docs:read`: read the partner's developer docs." },
} as const;
export type ApiKeyScopeValue = (typeof API_KEY_SCOPES)[keyof typeof API_KEY_SCOPES]["value"];
const KNOWN_SCOPES = new Set<string>(Object.values(API_KEY_SCOPES).map((scope) => scope.value));
const knownScopes = (scopes: readonly string[]) =>
  scopes.filter((scope): scope is ApiKeyScopeValue => KNOWN_SCOPES.has(scope));

export const ApiKeyScope = builder.enumType("ApiKeyScope", {
  description: "What a key may do. Stored and verified as the string in each value's description (`usage:read`).",
  values: API_KEY_SCOPES,
});

export const AuditAction = builder.enumType("AuditAction", {
  values: [
    "apiKeyCreated",
    "apiKeyRotated",
    "apiKeyRevoked",
    "serviceCredentialCreated",
    "serviceCredentialRevoked",
  ] as const,
});

/** Seven days: long enough to roll a key through any deployment, short enough to bound a leak. */
export const MAX_GRACE_PERIOD_SECONDS = 7 * 24 * 60 * 60;

/** The keys a viewer may read: those of the partners the viewer may read. */
export const apiKeysVisibleTo = (viewer: Viewer | null): Prisma.ApiKeyWhereInput => ({
  partnerId: partnerIdVisibleTo(viewer),
});

/** Audit events a viewer may read: admins all, a partnerAdmin their partner's, others none. */
const auditEventsVisibleTo = (viewer: Viewer | null): Prisma.AuditEventWhereInput => {
  if (viewer?.role === "admin") return {};
  return viewer?.role === "partnerAdmin" && viewer.partnerId ? { partnerId: viewer.partnerId } : { id: { in: [] } };
};

/** A parent row whose `select` loaded the named user relation (Pothos does not type it). */
type WithUser<K extends string> = Record<K, UserRow | null>;

const newestFirst = [{ createdAt: "desc" }, { id: "desc" }] satisfies Prisma.ApiKeyOrderByWithRelationInput[];

export const AuditEvent = builder.prismaNode("AuditEvent", {
  id: { field: "id" },
  // Select mode: only the columns the selected fields (and this type's authScopes) need.
  select: { id: true, partnerId: true },
  description: "Who did what, when, to which key or credential. Readable by admins and the key's partnerAdmins.",
  // A node(id) lookup of an event the viewer may not read answers null.
  nullable: true,
  findUnique: (id, ctx) => ({ id, AND: [auditEventsVisibleTo(ctx.viewer)] }),
  authScopes: (event) => (event.partnerId ? { admin: true, partnerAdmin: event.partnerId } : { admin: true }),
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

export const APIKey = builder.prismaNode("ApiKey", {
  name: "APIKey",
  id: { field: "id" },
  // Select mode: a key's hashes are never read on the way to a response.
  select: { id: true, partnerId: true },
  description:
    "A partner's API key. Its secret is shown once, when created or rotated; only a keyed hash is kept. " +
    "Readable by staff and the partner's members.",
  // A node(id) lookup of a key the viewer may not read answers null.
  nullable: true,
  findUnique: (id, ctx) => ({ id, AND: [apiKeysVisibleTo(ctx.viewer)] }),
  // The gateway sees the key it verified (verifyApiKey); it finds no key any other way.
  authScopes: (key) => ({ ...partnerReadScopes(key.partnerId), gateway: true }),
  fields: (t) => ({
    keyName: t.exposeString("keyName", { description: "Unique within the partner (revoked keys included)." }),
    tokenPrefix: t.exposeString("tokenPrefix", {
      description: "The first characters of the current secret, enough to recognise it in a list.",
    }),
    scopes: t.field({ type: [ApiKeyScope], select: { scopes: true }, resolve: (key) => knownScopes(key.scopes) }),
    isActive: t.exposeBoolean("isActive", { description: "False once revoked." }),
    lastUsedAt: t.expose("lastUsedAt", {
      type: "DateTime",
      nullable: true,
      description: "Last successful verification, to within about a minute.",
    }),
    expiresAt: t.expose("expiresAt", { type: "DateTime", nullable: true }),
    revokedAt: t.expose("revokedAt", { type: "DateTime", nullable: true }),
    rotatedAt: t.expose("rotatedAt", { type: "DateTime", nullable: true }),
    previousSecretExpiresAt: t.expose("previousSecretExpiresAt", {
      type: "DateTime",
      nullable: true,
      description: "Until when the secret replaced by the last rotation keeps working.",
    }),
    partner: t.relation("partner"),
    createdBy: t.field({
      type: User,
      nullable: true,
      description: "Who created the key; null when the viewer may not read that user (e.g. staff, for a partner's member).",
      select: (_args, _ctx, nestedSelection) => ({ createdBy: nestedSelection(true) }),
      resolve: (key, _args, ctx) => readableUser(ctx, (key as WithUser<"createdBy">).createdBy),
    }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
    updatedAt: t.expose("updatedAt", { type: "DateTime" }),
    events: t.relatedConnection("events", {
      cursor: "id",
      nullable: true,
      description: "The key's history, newest first. Admins and the partner's partnerAdmins; null for others.",
      authScopes: (key) => ({ admin: true, partnerAdmin: key.partnerId }),
      unauthorizedResolver: () => null,
      query: () => ({ orderBy: [{ createdAt: "desc" }, { id: "desc" }] }),
    }),
  }),
});

builder.prismaObjectField(PartnerOrganization, "apiKeys", (t) =>
  t.relatedConnection("apiKeys", {
    cursor: "id",
    description: "The partner's keys, newest first; revoked ones only when asked.",
    args: { includeRevoked: t.arg.boolean({ required: false, defaultValue: false }) },
    // Filtered by the viewer too: the gateway reaches a partner through one verified key and must
    // not list the partner's other keys from there.
    query: (args, ctx) => ({
      where: { AND: [apiKeysVisibleTo(ctx.viewer), args.includeRevoked ? {} : { revokedAt: null }] },
      orderBy: newestFirst,
    }),
  }),
);

interface IssuedSecret {
  apiKeyId: string;
  secret: string;
}

const issuedSecretFields = (description: string) =>
  builder.objectRef<IssuedSecret>(description).implement({
    fields: (t) => ({
      apiKey: t.prismaField({
        type: APIKey,
        resolve: (query, payload, _args, ctx) =>
          ctx.prisma.apiKey.findUniqueOrThrow({ ...query, where: { id: payload.apiKeyId } }),
      }),
      secret: t.exposeString("secret", {
        description: "The secret. Shown this once: it is not stored and no later read returns it.",
      }),
    }),
  });

const CreateApiKeyPayload = issuedSecretFields("CreateApiKeyPayload");
const RotateApiKeyPayload = issuedSecretFields("RotateApiKeyPayload");

const keyName = z
  .string()
  .trim()
  .min(1, "Key name is required")
  .max(100, "Key name must be at most 100 characters")
  .regex(/^[^\p{Cc}]*$/u, "Key name may not contain control characters");

const CreateApiKeyInput = builder.inputType("CreateApiKeyInput", {
  fields: (t) => ({
    partnerId: t.globalID({ for: PartnerOrganization }),
    keyName: t.string({ description: "Unique within the partner." }).validate(keyName),
    scopes: t
      .field({ type: [ApiKeyScope], description: "At least one; duplicates are dropped." })
      .validate(z.array(z.string()).min(1, "At least one scope is required")),
    expiresAt: t
      .field({ type: "DateTime", required: false, description: "Must be in the future; none means never." })
      .validate(storableDate.nullish()),
  }),
});

const ApiKeyVerificationCode = builder.enumType("ApiKeyVerificationCode", {
  description: "Why a secret verified or not. Every code but VALID is a refusal.",
  values: VERIFICATION_CODES,
});

const ApiKeyVerification = builder.objectRef<Verification>("ApiKeyVerification").implement({
  description:
    "The answer to verifyApiKey. `valid`, `code`, `scopes`, `expiresAt`, `apiKeyId` and `partnerId` come from " +
    "the verification cache; `apiKey` and `partner` are read from the database when selected.",
  fields: (t) => ({
    valid: t.exposeBoolean("valid"),
    code: t.expose("code", { type: ApiKeyVerificationCode }),
    scopes: t.field({ type: [ApiKeyScope], resolve: (result) => knownScopes(result.scopes) }),
    expiresAt: t.expose("expiresAt", {
      type: "DateTime",
      nullable: true,
      description: "When the presented secret stops working (a key's expiry, or a rotated-out secret's grace end).",
    }),
    apiKeyId: t.globalID({
      nullable: true,
      resolve: (result) => (result.apiKeyId ? { type: "APIKey", id: result.apiKeyId } : null),
    }),
    partnerId: t.globalID({
      nullable: true,
      resolve: (result) => (result.partnerId ? { type: "PartnerOrganization", id: result.partnerId } : null),
    }),
    apiKey: t.prismaField({
      type: APIKey,
      nullable: true,
      resolve: (query, result, _args, ctx) =>
        // findFirst, not findUnique: Prisma 6.19's batching of concurrent findUniques on two models
        // (this field and `partner`) mixes their rows up ("Missing data field").
        result.apiKeyId ? ctx.prisma.apiKey.findFirst({ ...query, where: { id: result.apiKeyId } }) : null,
    }),
    partner: t.prismaField({
      type: PartnerOrganization,
      nullable: true,
      resolve: (query, result, _args, ctx) =>
        result.partnerId
          ? ctx.prisma.partnerOrganization.findFirst({ ...query, where: { id: result.partnerId } })
          : null,
    }),
  }),
});

builder.queryFields((t) => ({
  apiKeys: t.connection(
    {
      type: APIKey,
      description: "Keys the viewer may read, newest first: staff all, a partner's members their partner's.",
      args: {
        partnerId: t.arg.globalID({ for: PartnerOrganization, required: false }),
        includeRevoked: t.arg.boolean({ required: false, defaultValue: false }),
      },
      // Keyset paging, so every page (not only the first) loads its keys' partner and creator in
      // the same statement as the keys.
      resolve: (_root, args, ctx, info) => {
        const where: Prisma.ApiKeyWhereInput = {
          AND: [
            apiKeysVisibleTo(ctx.viewer),
            args.partnerId ? { partnerId: args.partnerId.id } : {},
            args.includeRevoked ? {} : { revokedAt: null },
          ],
        };
        const query = queryFromInfo({ context: ctx, info, typeName: "APIKey", path: ["edges", "node"] }) as {
          select?: Prisma.ApiKeySelect;
        };
        return newestFirstPage({ list: "APIKey", column: "createdAt", args }, (window) =>
          ctx.prisma.apiKey.findMany({
            select: { ...query.select, id: true, createdAt: true },
            where: window.where ? { AND: [where, window.where] } : where,
            orderBy: window.orderBy,
            take: window.take,
          }),
        );
      },
    },
    { name: "QueryApiKeysConnection" },
  ),

  apiKey: t.prismaField({
    type: APIKey,
    nullable: true,
    description: "A key by id; null when it does not exist or the viewer may not read it.",
    args: { id: t.arg.globalID({ for: APIKey, required: true }) },
    resolve: (query, _root, args, ctx) =>
      ctx.prisma.apiKey.findFirst({ ...query, where: { AND: [{ id: args.id.id }, apiKeysVisibleTo(ctx.viewer)] } }),
  }),

  verifyApiKey: t.field({
    type: ApiKeyVerification,
    description:
      "For the API gateway (a service credential, or an admin): whether a presented key secret may be used. " +
      "Answers from a cache on the hot path; malformed secrets never reach the database.",
    authScopes: { gateway: true },
    args: {
      secret: t.arg.string({ required: true }),
      requiredScopes: t.arg({
        type: [ApiKeyScope],
        required: false,
        description: "Scopes the request needs; a key lacking one answers INSUFFICIENT_SCOPE.",
      }),
    },
    resolve: (_root, args, ctx) =>
      ctx.services.apiKeyVerifier.verify(args.secret, {
        now: ctx.services.now(),
        requiredScopes: args.requiredScopes ?? undefined,
      }),
  }),
}));

/** Re-runs `@live` queries showing the key or a list of keys, on every instance. */
function keyChanged(ctx: Context, apiKeyId: string, partnerId: string) {
  invalidateLive(ctx.services, [liveKey("APIKey", apiKeyId), liveKey("PartnerOrganization", partnerId), "Query.apiKeys"]);
}

/** The signed-in user acting; the field's authScopes already required one. */
function actingUserId(ctx: Context): string {
  if (!ctx.viewer) throw unauthenticated();
  return ctx.viewer.id;
}

/** Lets an admin, or the key's partner's partnerAdmin while that partner is active, change a key. */
async function keyWriters(ctx: Context, apiKeyId: string) {
  const key = await ctx.prisma.apiKey.findUnique({ where: { id: apiKeyId }, select: { partnerId: true } });
  return key ? { admin: true, activePartnerAdmin: key.partnerId } : { admin: true };
}

const isRecordNotFound = (error: unknown) =>
  typeof error === "object" && error !== null && (error as { code?: unknown }).code === "P2025";

builder.mutationFields((t) => ({
  createApiKey: t.field({
    type: CreateApiKeyPayload,
    description: "Issues a key. Admins for any partner; a partnerAdmin for their own active partner.",
    args: { input: t.arg({ type: CreateApiKeyInput, required: true }) },
    authScopes: (_root, args) => ({ admin: true, activePartnerAdmin: args.input.partnerId.id }),
    resolve: async (_root, { input }, ctx) => {
      const now = ctx.services.now();
      if (input.expiresAt && input.expiresAt.getTime() <= now.getTime()) {
        throw badInput("input.expiresAt: Expiry must be in the future", {
          issues: [{ path: ["input", "expiresAt"], message: "Expiry must be in the future" }],
        });
      }
      const partnerId = input.partnerId.id;
      const partner = await ctx.prisma.partnerOrganization.findUnique({ where: { id: partnerId }, select: { id: true } });
      if (!partner) throw notFound("No such partner");
      const userId = actingUserId(ctx);
      const scopes = [...new Set(input.scopes)];
      const { secret, tokenPrefix } = generateSecret("ppk", ctx.services.config.apiKeys.environment);
      try {
        const key = await ctx.prisma.apiKey.create({
          data: {
            keyName: input.keyName,
            tokenPrefix,
            scopes,
            expiresAt: input.expiresAt ?? null,
            partnerId,
            createdById: userId,
            secretHash: hashSecret(ctx.services.secrets.apiKeyHashSecret, secret),
            events: {
              create: {
                action: "apiKeyCreated",
                actorUserId: userId,
                partnerId,
                detail: { keyName: input.keyName, scopes, expiresAt: input.expiresAt?.toISOString() ?? null },
              },
            },
          },
          select: { id: true },
        });
        keyChanged(ctx, key.id, partnerId);
        return { apiKeyId: key.id, secret };
      } catch (error) {
        if (isUniqueViolation(error)) throw conflict("This partner already has a key with that name", { field: "keyName" });
        throw error;
      }
    },
  }),

  rotateApiKey: t.field({
    type: RotateApiKeyPayload,
    description:
      "Gives the key a new secret, keeping its name, scopes and partner. The old secret keeps working for " +
      `gracePeriodSeconds (0 = stops at once, at most ${MAX_GRACE_PERIOD_SECONDS}); a secret replaced earlier ` +
      "stops at once. Revoked or expired keys cannot be rotated (CONFLICT).",
    args: {
      id: t.arg.globalID({ for: APIKey, required: true }),
      gracePeriodSeconds: t.arg.int({
        required: true,
        validate: z
          .number()
          .int()
          .min(0, "Grace period cannot be negative")
          .max(MAX_GRACE_PERIOD_SECONDS, `Grace period is at most ${MAX_GRACE_PERIOD_SECONDS} seconds (7 days)`),
      }),
    },
    authScopes: (_root, args, ctx) => keyWriters(ctx, args.id.id),
    resolve: async (_root, args, ctx) => {
      const id = args.id.id;
      const now = ctx.services.now();
      const current = await ctx.prisma.apiKey.findUnique({
        where: { id },
        select: { secretHash: true, revokedAt: true, expiresAt: true, partnerId: true },
      });
      if (!current) throw notFound("No such API key");
      if (current.revokedAt) throw conflict("A revoked key cannot be rotated", { reason: "REVOKED" });
      if (current.expiresAt && current.expiresAt.getTime() <= now.getTime()) {
        throw conflict("An expired key cannot be rotated", { reason: "EXPIRED" });
      }
      const userId = actingUserId(ctx);
      const previousSecretExpiresAt = new Date(now.getTime() + args.gracePeriodSeconds * 1000);
      const { secret, tokenPrefix } = generateSecret("ppk", ctx.services.config.apiKeys.environment);
      try {
        // Conditional on the hash read above: a concurrent rotate or revoke makes this one fail
        // instead of silently dropping the other's secret.
        await ctx.prisma.apiKey.update({
          where: { id, secretHash: current.secretHash, revokedAt: null },
          data: {
            secretHash: hashSecret(ctx.services.secrets.apiKeyHashSecret, secret),
            tokenPrefix,
            previousSecretHash: current.secretHash,
            previousSecretExpiresAt,
            rotatedAt: now,
            events: {
              create: {
                action: "apiKeyRotated",
                actorUserId: userId,
                partnerId: current.partnerId,
                detail: {
                  gracePeriodSeconds: args.gracePeriodSeconds,
                  previousSecretExpiresAt: previousSecretExpiresAt.toISOString(),
                },
              },
            },
          },
          select: { id: true },
        });
      } catch (error) {
        if (isRecordNotFound(error)) throw conflict("The key changed while rotating it; try again");
        throw error;
      }
      await ctx.services.apiKeyVerifier.invalidateKey(id);
      keyChanged(ctx, id, current.partnerId);
      return { apiKeyId: id, secret };
    },
  }),

  revokeApiKey: t.prismaField({
    type: APIKey,
    description: "Revokes a key: refused from the next verification on, on every instance. Revoking twice is harmless.",
    args: { id: t.arg.globalID({ for: APIKey, required: true }) },
    authScopes: (_root, args, ctx) => keyWriters(ctx, args.id.id),
    resolve: async (query, _root, args, ctx) => {
      const id = args.id.id;
      const userId = actingUserId(ctx);
      const key = await ctx.prisma.apiKey.findUnique({ where: { id }, select: { partnerId: true } });
      if (!key) throw notFound("No such API key");
      try {
        await ctx.prisma.apiKey.update({
          where: { id, revokedAt: null },
          data: {
            revokedAt: ctx.services.now(),
            isActive: false,
            events: { create: { action: "apiKeyRevoked", actorUserId: userId, partnerId: key.partnerId } },
          },
          select: { id: true },
        });
      } catch (error) {
        // Already revoked: nothing changes and no second event is written.
        if (!isRecordNotFound(error)) throw error;
      }
      await ctx.services.apiKeyVerifier.invalidateKey(id);
      keyChanged(ctx, id, key.partnerId);
      return ctx.prisma.apiKey.findUniqueOrThrow({ ...query, where: { id } });
    },
  }),
}));
