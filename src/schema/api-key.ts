import { z } from "zod";
import { VERIFICATION_CODES, type Verification } from "../auth/api-key-verifier.js";
import type { Context } from "./context.js";
import type { Prisma } from "../db/index.js";
import { storableDate } from "../db/dates.js";
import { MAX_GRACE_PERIOD_SECONDS } from "../domain/api-keys.js";
import type { User as UserRow } from "../generated/prisma/client.js";
import { builder } from "./builder.js";
import { newestFirstPage } from "./pagination.js";
import { unauthenticated } from "../errors.js";
import { admits, readPolicy } from "./access.js";
import { PartnerOrganization } from "./partner.js";
import { readableUser, User } from "./user.js";

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

/** Who may read a key: staff every one, a partner's members their partner's; nobody else any. */
export const apiKeyPolicy = readPolicy<{ partnerId: string }, Prisma.ApiKeyWhereInput>({
  staff: true,
  partnerMember: "partnerId",
});

/** A parent row whose `select` loaded the named user relation (Pothos does not type it). */
type WithUser<K extends string> = Record<K, UserRow | null>;

const newestFirst = [{ createdAt: "desc" }, { id: "desc" }] satisfies Prisma.ApiKeyOrderByWithRelationInput[];
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
  findUnique: (id, ctx) => ({ id, AND: [apiKeyPolicy.where(ctx)] }),
  // The gateway sees the key it verified (verifyApiKey); it finds no key any other way.
  authScopes: (key) => ({ ...apiKeyPolicy.scopes(key), gateway: true }),
  fields: (t) => ({
    keyName: t.exposeString("keyName", { description: "Unique within the partner (revoked keys included)." }),
    tokenPrefix: t.exposeString("tokenPrefix", {
      description: "The first characters of the current secret, enough to recognise it in a list.",
    }),
    scopes: t.field({ type: [ApiKeyScope], select: { scopes: true }, resolve: (key) => knownScopes(key.scopes) }),
    isActive: t.exposeBoolean("isActive", { description: "False while disabled, and for good once revoked." }),
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
      description: "The key's history, newest first. Staff and the partner's partnerAdmins (as auditEvents); null for others.",
      authScopes: (key) => ({ staff: true, partnerAdmin: key.partnerId }),
      unauthorizedResolver: () => null,
      totalCount: true,
      query: () => ({ orderBy: [{ createdAt: "desc" }, { id: "desc" }] }),
    }),
  }),
});

builder.prismaObjectField(PartnerOrganization, "apiKeys", (t) =>
  t.relatedConnection("apiKeys", {
    cursor: "id",
    description: "The partner's keys, newest first; revoked ones only when asked.",
    args: { includeRevoked: t.arg.boolean({ required: false, defaultValue: false }) },
    totalCount: true,
    // Filtered by the viewer too: the gateway reaches a partner through one verified key and must
    // not list the partner's other keys from there.
    query: (args, ctx) => ({
      where: { AND: [apiKeyPolicy.where(ctx), args.includeRevoked ? {} : { revokedAt: null }] },
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

const UpdateApiKeyInput = builder.inputType("UpdateApiKeyInput", {
  description:
    "Fields left out (or null, for keyName and scopes) are unchanged; expiresAt null means never. A partnerAdmin may only remove scopes; adding one needs an admin (FORBIDDEN otherwise).",
  fields: (t) => ({
    keyName: t.string({ required: false, description: "Unique within the partner." }).validate(keyName.nullish()),
    scopes: t
      .field({ type: [ApiKeyScope], required: false, description: "The key's whole new set; at least one." })
      .validate(z.array(z.string()).min(1, "At least one scope is required").nullish()),
    expiresAt: t
      .field({ type: "DateTime", required: false, description: "Must be in the future; null means never." })
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
      resolve: async (_root, args, ctx, info) => {
        const where: Prisma.ApiKeyWhereInput = {
          AND: [
            apiKeyPolicy.where(ctx),
            args.partnerId ? { partnerId: args.partnerId.id } : {},
            args.includeRevoked ? {} : { revokedAt: null },
          ],
        };
        const page = await newestFirstPage(
          { list: "APIKey", typeName: "APIKey", column: "createdAt", where, args, ctx, info },
          (query) => ctx.prisma.apiKey.findMany(query as Prisma.ApiKeyFindManyArgs),
        );
        return { ...page, totalCount: () => ctx.prisma.apiKey.count({ where }) };
      },
    },
    {
      name: "QueryApiKeysConnection",
      fields: (t) => ({
        totalCount: t.int({
          description: "How many keys match, all pages together (only those the viewer may read).",
          resolve: (connection) => connection.totalCount(),
        }),
      }),
    },
  ),

  apiKey: t.prismaField({
    type: APIKey,
    nullable: true,
    description: "A key by id; null when it does not exist or the viewer may not read it.",
    args: { id: t.arg.globalID({ for: APIKey, required: true }) },
    resolve: (query, _root, args, ctx) =>
      ctx.prisma.apiKey.findFirst({ ...query, where: { AND: [{ id: args.id.id }, apiKeyPolicy.where(ctx)] } }),
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

/** The user acting; every key write's authScopes admit only signed-in users (admin or partnerAdmin). */
function actingUserId(ctx: Context): string {
  if (!ctx.viewer) throw unauthenticated();
  return ctx.viewer.id;
}

/** Lets an admin, or the key's partner's partnerAdmin while that partner is active, change a key. */
async function keyWriters(ctx: Context, apiKeyId: string) {
  const key = await ctx.prisma.apiKey.findUnique({ where: { id: apiKeyId }, select: { partnerId: true } });
  return key ? { admin: true, activePartnerAdmin: key.partnerId } : { admin: true };
}

builder.mutationFields((t) => ({
  createApiKey: t.field({
    type: CreateApiKeyPayload,
    description: "Issues a key. Admins for any partner; a partnerAdmin for their own active partner.",
    args: { input: t.arg({ type: CreateApiKeyInput, required: true }) },
    authScopes: (_root, args) => ({ admin: true, activePartnerAdmin: args.input.partnerId.id }),
    resolve: (_root, { input }, ctx) =>
      ctx.services.apiKeys.issue({
        partnerId: input.partnerId.id,
        keyName: input.keyName,
        scopes: input.scopes,
        expiresAt: input.expiresAt ?? null,
        actorUserId: actingUserId(ctx),
      }),
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
    resolve: (_root, args, ctx) => ctx.services.apiKeys.rotate(args.id.id, args.gracePeriodSeconds, actingUserId(ctx)),
  }),

  revokeApiKey: t.prismaField({
    type: APIKey,
    description: "Revokes a key: refused from the next verification on, on every instance. Revoking twice is harmless.",
    args: { id: t.arg.globalID({ for: APIKey, required: true }) },
    authScopes: (_root, args, ctx) => keyWriters(ctx, args.id.id),
    resolve: async (query, _root, args, ctx) => {
      await ctx.services.apiKeys.revoke(args.id.id, actingUserId(ctx));
      return ctx.prisma.apiKey.findUniqueOrThrow({ ...query, where: { id: args.id.id } });
    },
  }),

  updateApiKey: t.prismaField({
    type: APIKey,
    description:
      "Renames a key, changes its scopes or its expiry, effective from the next verification on every instance. " +
      "Admins may change anything; a partnerAdmin of the key's active partner may only remove scopes. A revoked key cannot change (CONFLICT).",
    args: {
      id: t.arg.globalID({ for: APIKey, required: true }),
      input: t.arg({ type: UpdateApiKeyInput, required: true }),
    },
    authScopes: (_root, args, ctx) => keyWriters(ctx, args.id.id),
    resolve: async (query, _root, { id, input }, ctx) => {
      await ctx.services.apiKeys.update(
        id.id,
        {
          keyName: input.keyName ?? undefined,
          scopes: input.scopes ?? undefined,
          expiresAt: input.expiresAt === undefined ? undefined : input.expiresAt,
        },
        { userId: actingUserId(ctx), mayWidenScopes: admits("admin", ctx) },
      );
      return ctx.prisma.apiKey.findUniqueOrThrow({ ...query, where: { id: id.id } });
    },
  }),

  disableApiKey: t.prismaField({
    type: APIKey,
    description:
      "Disables a key until enabled again: it verifies as DISABLED and its usage is rejected (KEY_DISABLED), from the next " +
      "verification on, on every instance. Disabling twice is harmless; a revoked key is a CONFLICT.",
    args: { id: t.arg.globalID({ for: APIKey, required: true }) },
    authScopes: (_root, args, ctx) => keyWriters(ctx, args.id.id),
    resolve: async (query, _root, args, ctx) => {
      await ctx.services.apiKeys.disable(args.id.id, actingUserId(ctx));
      return ctx.prisma.apiKey.findUniqueOrThrow({ ...query, where: { id: args.id.id } });
    },
  }),

  enableApiKey: t.prismaField({
    type: APIKey,
    description: "Lets a disabled key verify again. Revocation is final: enabling a revoked key is a CONFLICT.",
    args: { id: t.arg.globalID({ for: APIKey, required: true }) },
    authScopes: (_root, args, ctx) => keyWriters(ctx, args.id.id),
    resolve: async (query, _root, args, ctx) => {
      await ctx.services.apiKeys.enable(args.id.id, actingUserId(ctx));
      return ctx.prisma.apiKey.findUniqueOrThrow({ ...query, where: { id: args.id.id } });
    },
  }),
}));
