import { Kind, type GraphQLResolveInfo, type SelectionSetNode } from "graphql";
import { z } from "zod";
import type { Context } from "./context.js";
import { EARLIEST_STORABLE_DATE, storableDate } from "../db/dates.js";
import { Prisma } from "../db/index.js";
import { HttpMethod as HttpMethodValues } from "../generated/prisma/enums.js";
import {
  MAX_BATCH_EVENTS,
  MAX_EVENT_AGE_MS,
  MAX_FUTURE_SKEW_MS,
  USAGE_REJECTION_CODES,
} from "../usage/ingest.js";
import {
  DEFAULT_SUMMARY_WINDOW_MS,
  MAX_SUMMARY_BUCKETS,
  type UsageSummaryResult,
} from "../usage/summary.js";
import { APIKey } from "./api-key.js";
import { readPolicy } from "./access.js";
import { builder } from "./builder.js";
import { badInput } from "../errors.js";
import { decodeCursor, encodeCursor, newestFirstPage, once, MAX_PAGE_SIZE, type PageArgs } from "./pagination.js";
import { selectsOnly } from "./planned-query.js";
import { PartnerOrganization } from "./partner.js";

// Who may do what with usage (the product table): the gateway (a service credential, or an admin)
// reports it; staff read every partner's; a partnerAdmin or developer reads their own partner's;
// nobody else reads any. Lists filter by usageLogPolicy in the database `where`.

export const usageLogPolicy = readPolicy<{ partnerId: string }, Prisma.UsageLogWhereInput>({
  staff: true,
  partnerMember: "partnerId",
});

export const HttpMethod = builder.enumType("HttpMethod", { values: Object.values(HttpMethodValues) });

export const UsageLog = builder.prismaNode("UsageLog", {
  id: { field: "id" },
  select: { id: true, partnerId: true },
  description: "Requests one API key made to one endpoint with one outcome, as the gateway reported them.",
  nullable: true,
  findUnique: (id, ctx) => ({ id, AND: [usageLogPolicy.where(ctx)] }),
  authScopes: (log) => usageLogPolicy.scopes(log),
  fields: (t) => ({
    partner: t.relation("partner"),
    apiKey: t.relation("apiKey", { type: APIKey }),
    endpoint: t.exposeString("endpoint"),
    method: t.expose("method", { type: HttpMethod }),
    statusCode: t.exposeInt("statusCode"),
    requestCount: t.exposeInt("requestCount"),
    occurredAt: t.expose("occurredAt", { type: "DateTime" }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
    updatedAt: t.expose("updatedAt", { type: "DateTime" }),
    streamCursor: t.string({
      select: { createdAt: true },
      description:
        "This log's position in arrival order (when it was recorded, then id). `usageLogCreated(after:)` with the " +
        "last one a subscriber received replays what it missed, then continues live.",
      resolve: (log) => encodeCursor(STREAM_LIST, log.createdAt, log.id),
    }),
  }),
});

/** Names usageLogCreated's cursors, so a usageLogs cursor (another order) is refused rather than misread. */
const STREAM_LIST = "UsageLogStream";

// ---------------------------------------------------------------------------------------------
// Ingest

const UsageEventInput = builder.inputType("UsageEventInput", {
  description:
    "One event the gateway saw. Name the key by exactly one of apiKeyId and apiKeySecret; the partner is always " +
    "the key's. An invalid event is rejected on its own (INVALID_EVENT), not the batch.",
  fields: (t) => ({
    apiKeyId: t.id({ required: false, description: "The APIKey's id." }),
    apiKeySecret: t.string({ required: false, description: "The secret the gateway was shown; never stored." }),
    endpoint: t.string({ description: "The request path, starting with '/' (at most 2048 characters)." }),
    method: t.string({
      description: `One of ${Object.values(HttpMethodValues).join(", ")} (any case).`,
    }),
    statusCode: t.int({ description: "100 to 599." }),
    requestCount: t.int({ required: false, description: "How many requests the event stands for; default 1." }),
    occurredAt: t.field({
      type: "DateTime",
      required: false,
      description:
        `Default now; at most ${MAX_FUTURE_SKEW_MS / 60_000} minutes ahead of the server's clock and ` +
        `${MAX_EVENT_AGE_MS / 86_400_000} days behind it (INVALID_EVENT otherwise).`,
    }),
  }),
});

const UsageRejectionCode = builder.enumType("UsageRejectionCode", {
  values: {
    UNKNOWN_KEY: { description: "No key has that id or secret." },
    KEY_REVOKED: { description: "The key was revoked." },
    KEY_EXPIRED: { description: "The key expired, or the secret was replaced by a rotation and its grace ended." },
    PARTNER_SUSPENDED: { description: "The key's partner is suspended." },
    INVALID_EVENT: { description: "The event itself is malformed; the message says how." },
    KEY_DISABLED: { description: "The key is disabled; it is accepted again once enabled." },
  } satisfies Record<(typeof USAGE_REJECTION_CODES)[number], { description: string }>,
});

const UsageRejection = builder
  .objectRef<{ index: number; code: (typeof USAGE_REJECTION_CODES)[number]; message: string }>("UsageRejection")
  .implement({
    description: "An event left out of the batch: its position in `events`, and why.",
    fields: (t) => ({
      index: t.exposeInt("index"),
      code: t.expose("code", { type: UsageRejectionCode }),
      message: t.exposeString("message"),
    }),
  });

const RecordUsagePayload = builder
  .objectRef<{ accepted: number; rejected: Array<{ index: number; code: (typeof USAGE_REJECTION_CODES)[number]; message: string }> }>(
    "RecordUsagePayload",
  )
  .implement({
    fields: (t) => ({
      accepted: t.exposeInt("accepted", { description: "Events stored." }),
      rejected: t.field({ type: [UsageRejection], resolve: (payload) => payload.rejected }),
    }),
  });

builder.mutationFields((t) => ({
  recordUsage: t.field({
    type: RecordUsagePayload,
    description:
      `The gateway reports usage: up to ${MAX_BATCH_EVENTS} events, stored in one transaction. Valid events are kept ` +
      "even when others are rejected. With an idempotencyKey, a retried batch is counted once and answered as the " +
      "first time; the same key with other events is a CONFLICT. Admins or a service credential.",
    authScopes: { gateway: true },
    args: {
      events: t.arg({ type: [UsageEventInput] }),
      idempotencyKey: t.arg.string({
        required: false,
        description:
          "Names the batch, per caller: the same key with the same events answers the first result and stores " +
          "nothing; with other events it answers CONFLICT.",
      }),
    },
    resolve: (_root, { events, idempotencyKey }, ctx) =>
      ctx.services.usage.record(
        ctx.service ? `service:${ctx.service.id}` : `user:${ctx.viewer!.id}`,
        events,
        idempotencyKey,
      ),
  }),
}));

// ---------------------------------------------------------------------------------------------
// Review

const statusClass = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^[1-5]xx$/, "statusClass must be one of 1xx, 2xx, 3xx, 4xx, 5xx");

const UsageLogFilter = builder.inputType("UsageLogFilter", {
  description: "All given conditions must hold. `from` is inclusive, `to` exclusive.",
  fields: (t) => ({
    partnerId: t.globalID({ required: false, for: PartnerOrganization }),
    apiKeyId: t.globalID({ required: false, for: APIKey }),
    endpoint: t.string({ required: false }).validate(z.string().max(2048).nullish()),
    method: t.field({ type: HttpMethod, required: false }),
    statusCode: t.int({ required: false }),
    statusClass: t
      .string({ required: false, description: "2xx, 3xx, 4xx or 5xx (also 1xx)." })
      .validate(statusClass.nullish()),
    from: t.field({ type: "DateTime", required: false }).validate(storableDate.nullish()),
    to: t.field({ type: "DateTime", required: false }).validate(storableDate.nullish()),
  }),
});

type UsageLogFilterValue = NonNullable<typeof UsageLogFilter.$inferInput>;

function usageLogWhere(ctx: Context, filter: UsageLogFilterValue | null | undefined): Prisma.UsageLogWhereInput {
  const conditions: Prisma.UsageLogWhereInput[] = [usageLogPolicy.where(ctx)];
  if (filter?.partnerId) conditions.push({ partnerId: filter.partnerId.id });
  if (filter?.apiKeyId) conditions.push({ apiKeyId: filter.apiKeyId.id });
  if (filter?.endpoint) conditions.push({ endpoint: filter.endpoint });
  if (filter?.method) conditions.push({ method: filter.method });
  if (filter?.statusCode != null) conditions.push({ statusCode: filter.statusCode });
  if (filter?.statusClass) {
    const base = Number(filter.statusClass[0]) * 100;
    conditions.push({ statusCode: { gte: base, lt: base + 100 } });
  }
  if (filter?.from) conditions.push({ occurredAt: { gte: filter.from } });
  if (filter?.to) conditions.push({ occurredAt: { lt: filter.to } });
  return { AND: conditions };
}

/**
 * Usage tables grow without bound, and an exact count reads every matching row: a count stops at
 * this many (the statement reads at most one more row), and says so with `totalCountCapped`.
 */
export const USAGE_COUNT_CAP = 10_000;

interface UsageLogCount {
  count: () => Promise<{ total: number; capped: boolean }>;
}

/** A page of usage logs, newest first, with the relations the query selected loaded alongside. */
const usageLogPage = async (ctx: Context, info: GraphQLResolveInfo, where: Prisma.UsageLogWhereInput, args: PageArgs) => {
  const page = await newestFirstPage(
    { list: "UsageLog", typeName: "UsageLog", column: "occurredAt", where, args, ctx, info },
    (query) => ctx.prisma.usageLog.findMany(query as Prisma.UsageLogFindManyArgs),
  );
  const count = once(async () => {
    const counted = await ctx.prisma.usageLog.count({ where, take: USAGE_COUNT_CAP + 1 });
    return { total: Math.min(counted, USAGE_COUNT_CAP), capped: counted > USAGE_COUNT_CAP };
  });
  return { ...page, count } satisfies UsageLogCount;
};

const UsageLogConnection = builder.connectionObject({
  type: UsageLog,
  name: "UsageLogConnection",
  description: `Usage logs newest first (occurredAt, then id). Pages of at most ${MAX_PAGE_SIZE}; cursors stay valid as rows arrive.`,
  fields: (t) => ({
    totalCount: t.int({
      description: `How many logs match, all pages together (only those the viewer may read), counted up to ${USAGE_COUNT_CAP}: a larger number answers ${USAGE_COUNT_CAP} with totalCountCapped true.`,
      resolve: async (connection) => (await (connection as unknown as UsageLogCount).count()).total,
    }),
    totalCountCapped: t.boolean({
      description: `True when more than ${USAGE_COUNT_CAP} logs match and totalCount answers ${USAGE_COUNT_CAP}.`,
      resolve: async (connection) => (await (connection as unknown as UsageLogCount).count()).capped,
    }),
  }),
});

builder.queryFields((t) => ({
  usageLogs: t.connection(
    {
      type: UsageLog,
      description:
        "Usage logs the viewer may read, newest first: every partner's for staff, their own partner's for its members.",
      authScopes: { signedIn: true },
      args: { filter: t.arg({ type: UsageLogFilter, required: false }) },
      resolve: (_root, args, ctx, info) => usageLogPage(ctx, info, usageLogWhere(ctx, args.filter), args),
    },
    UsageLogConnection,
  ),
}));

builder.prismaObjectField(APIKey, "usageLogs", (t) =>
  t.connection(
    {
      type: UsageLog,
      description: "This key's usage logs, newest first.",
      args: { filter: t.arg({ type: UsageLogFilter, required: false }) },
      resolve: (key, args, ctx, info) =>
        usageLogPage(ctx, info, { AND: [{ apiKeyId: key.id }, usageLogWhere(ctx, args.filter)] }, args),
    },
    UsageLogConnection,
  ),
);

builder.prismaObjectField(PartnerOrganization, "usageLogs", (t) =>
  t.connection(
    {
      type: UsageLog,
      description: "This partner's usage logs, newest first.",
      args: { filter: t.arg({ type: UsageLogFilter, required: false }) },
      resolve: (partner, args, ctx, info) =>
        usageLogPage(ctx, info, { AND: [{ partnerId: partner.id }, usageLogWhere(ctx, args.filter)] }, args),
    },
    UsageLogConnection,
  ),
);

// ---------------------------------------------------------------------------------------------
// Totals

const UsageBucket = builder.enumType("UsageBucket", {
  description: "The width of a series bucket; buckets start on UTC minute, hour and day boundaries.",
  values: ["MINUTE", "HOUR", "DAY"] as const,
});

const UsageStatusCount = builder
  .objectRef<UsageSummaryResult["byStatusCode"][number]>("UsageStatusCount")
  .implement({
    fields: (t) => ({ statusCode: t.exposeInt("statusCode"), requestCount: t.expose("requestCount", { type: "SafeInt" }) }),
  });

const UsageEndpointCount = builder
  .objectRef<UsageSummaryResult["byEndpoint"][number]>("UsageEndpointCount")
  .implement({
    fields: (t) => ({
      endpoint: t.exposeString("endpoint"),
      method: t.expose("method", { type: HttpMethod }),
      requestCount: t.expose("requestCount", { type: "SafeInt" }),
      errorRequests: t.expose("errorRequests", { type: "SafeInt" }),
    }),
  });

const UsageSeriesPoint = builder.objectRef<UsageSummaryResult["series"][number]>("UsageSeriesPoint").implement({
  fields: (t) => ({
    bucketStart: t.expose("bucketStart", { type: "DateTime" }),
    requestCount: t.expose("requestCount", { type: "SafeInt" }),
    errorRequests: t.expose("errorRequests", { type: "SafeInt" }),
  }),
});

const UsageSummary = builder.objectRef<UsageSummaryResult>("UsageSummary").implement({
  description:
    "Sums of requestCount over [from, to) for the usage the viewer may read. Errors are requests with status 400 or above.",
  fields: (t) => ({
    from: t.expose("from", { type: "DateTime" }),
    to: t.expose("to", { type: "DateTime" }),
    bucket: t.expose("bucket", { type: UsageBucket }),
    totalRequests: t.expose("totalRequests", { type: "SafeInt" }),
    errorRequests: t.expose("errorRequests", { type: "SafeInt" }),
    byStatusCode: t.field({ type: [UsageStatusCount], resolve: (summary) => summary.byStatusCode }),
    byEndpoint: t.field({
      type: [UsageEndpointCount],
      description: "Most requested first.",
      resolve: (summary) => summary.byEndpoint,
    }),
    series: t.field({
      type: [UsageSeriesPoint],
      description: "Every bucket of the window in order, empty ones as zeros.",
      resolve: (summary) => summary.series,
    }),
  }),
});

builder.queryFields((t) => ({
  usageSummary: t.field({
    type: UsageSummary,
    description:
      `Usage totals for the viewer's readable usage, optionally for one partner or key. The window defaults to the ` +
      `24 hours before \`to\` (default now); at most ${MAX_SUMMARY_BUCKETS} buckets.`,
    authScopes: { signedIn: true },
    args: {
      partnerId: t.arg.globalID({ required: false, for: PartnerOrganization }),
      apiKeyId: t.arg.globalID({ required: false, for: APIKey }),
      from: t.arg({ type: "DateTime", required: false, validate: storableDate.nullish() }),
      to: t.arg({ type: "DateTime", required: false, validate: storableDate.nullish() }),
      bucket: t.arg({ type: UsageBucket, required: false, defaultValue: "HOUR" }),
    },
    resolve: (_root, args, ctx) => {
      if (!args.from && args.to && args.to.getTime() - DEFAULT_SUMMARY_WINDOW_MS < EARLIEST_STORABLE_DATE.getTime()) {
        throw badInput("from: the default window (24 hours before to) starts before 0001-01-01; give from", {
          issues: [{ path: ["from"], message: "required when to is within 24 hours of 0001-01-01" }],
        });
      }
      return ctx.services.usage.summarize(
        {
          readable: usageLogPolicy.valuesOf(ctx, "partnerId"),
          partnerId: args.partnerId?.id,
          apiKeyId: args.apiKeyId?.id,
        },
        args,
      );
    },
  }),
}));

// ---------------------------------------------------------------------------------------------
// Live

/** The columns a published event carries (every scalar of the row). */
const EVENT_COLUMNS = new Set(Object.values(Prisma.UsageLogScalarFieldEnum));
/** UsageLog fields computed from the event's columns alone. */
const EVENT_FIELDS = new Set(["__typename", "id", "endpoint", "method", "statusCode", "requestCount", "occurredAt", "createdAt", "updatedAt", "streamCursor"]);

function selectsEventFieldsOnly(selectionSet: SelectionSetNode | undefined, info: GraphQLResolveInfo): boolean {
  if (!selectionSet) return true;
  return selectionSet.selections.every((selection) => {
    if (selection.kind === Kind.FIELD) return EVENT_FIELDS.has(selection.name.value) && !selection.selectionSet;
    if (selection.kind === Kind.INLINE_FRAGMENT) return selectsEventFieldsOnly(selection.selectionSet, info);
    const fragment = info.fragments[selection.name.value];
    return !!fragment && selectsEventFieldsOnly(fragment.selectionSet, info);
  });
}

builder.subscriptionFields((t) => ({
  usageLogCreated: t.prismaField({
    type: UsageLog,
    description:
      "Each usage log as it is recorded, on any instance. Staff may watch every partner; a partner's members only " +
      "their own (checked when subscribing and for every event). Optionally one partner or one key. A subscriber " +
      "that falls too far behind gets a final EVENTS_DROPPED error (extensions.dropped) and its stream ends, as does " +
      "every stream when the bus between instances is interrupted or restored (extensions.reason PUBSUB_INTERRUPTED); " +
      "subscribing again with `after` set to the last streamCursor received misses nothing.",
    args: {
      partnerId: t.arg.globalID({ required: false, for: PartnerOrganization }),
      apiKeyId: t.arg.globalID({ required: false, for: APIKey }),
      after: t.arg.string({
        required: false,
        description:
          "A `streamCursor` received before: first the readable logs recorded after it, from the database, then live, " +
          "with none missed or repeated between the two.",
      }),
    },
    authScopes: async (_root, args, ctx) => {
      const readable = usageLogPolicy.valuesOf(ctx, "partnerId");
      if (readable === "all") return true;
      if (readable.length === 0 || (args.partnerId && !readable.includes(args.partnerId.id))) return false;
      if (!args.apiKeyId) return true;
      return (await ctx.prisma.apiKey.count({ where: { id: args.apiKeyId.id, partnerId: { in: readable } } })) === 1;
    },
    subscribe: (_root, args, ctx, info) =>
      ctx.services.usage.stream({
        readable: usageLogPolicy.valuesOf(ctx, "partnerId"),
        partnerId: args.partnerId?.id,
        apiKeyId: args.apiKeyId?.id,
        after: args.after ? decodeCursor(STREAM_LIST, args.after) : null,
        // Every subscriber with the same reach gets the same result when it selects only the event's
        // own fields (authorized by usageLogPolicy alone); relations may depend on who reads them.
        shareable: info.fieldNodes.every((node) => selectsEventFieldsOnly(node.selectionSet, info)),
      }),
    // The event carries every column; the database is read only for relations the operation selected.
    resolve: (query, log, _args, ctx) =>
      selectsOnly(query, EVENT_COLUMNS) ? log : ctx.prisma.usageLog.findUniqueOrThrow({ ...query, where: { id: log.id } }),
  }),
}));
