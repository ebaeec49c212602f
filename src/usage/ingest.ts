import { createHmac, randomBytes } from "node:crypto";
import { decodeGlobalID } from "@pothos/plugin-relay";
import { z } from "zod";
import { keyRefusal, type ApiKeyVerifier, type KeyByIdState, type VerificationCode } from "../auth/api-key-verifier.js";
import { isStorableDate } from "../db/dates.js";
import { Prisma, type PrismaClient } from "../db/index.js";
import { HttpMethod } from "../generated/prisma/enums.js";
import { invalidateLive, liveKey } from "../realtime/live.js";
import type { DataChanges } from "../realtime/changes.js";
import type { AppPubSub, UsageLogMessage } from "../realtime/pubsub.js";
import { badInput, conflict } from "../errors.js";
import { v7 as uuidv7 } from "uuid";
import { bucketStart, ERROR_STATUS_FROM, USAGE_GRAINS, type UsageGrain } from "./buckets.js";

/** Events per recordUsage call; larger batches are refused whole (BAD_USER_INPUT). */
export const MAX_BATCH_EVENTS = 5000;
/** How far ahead of the server's clock an event may claim to have happened (gateway clock skew). */
export const MAX_FUTURE_SKEW_MS = 5 * 60_000;
/**
 * How far back an event may claim to have happened. The gateway reports within minutes, and
 * retries for a day at most; older events would land in windows already summed and reviewed.
 */
export const MAX_EVENT_AGE_MS = 30 * 24 * 3_600_000;
/** One event may stand for this many requests at most, so a sum over a day stays a safe integer. */
export const MAX_REQUEST_COUNT = 1_000_000;

/**
 * Why an event was left out of an otherwise accepted batch:
 *   UNKNOWN_KEY        no key has that id or secret (or the secret is malformed)
 *   KEY_REVOKED        the key was revoked
 *   KEY_DISABLED       the key is disabled (until enabled again)
 *   KEY_EXPIRED        the key expired, or the secret is one a rotation replaced and its grace ended
 *   PARTNER_SUSPENDED  the key's partner is suspended
 *   INVALID_EVENT      the event itself is malformed (see its message)
 */
export const USAGE_REJECTION_CODES = [
  "UNKNOWN_KEY",
  "KEY_REVOKED",
  "KEY_EXPIRED",
  "PARTNER_SUSPENDED",
  "INVALID_EVENT",
  "KEY_DISABLED",
] as const;
export type UsageRejectionCode = (typeof USAGE_REJECTION_CODES)[number];

export interface UsageEvent {
  apiKeyId?: string | null;
  apiKeySecret?: string | null;
  endpoint: string;
  method: string;
  statusCode: number;
  requestCount?: number | null;
  occurredAt?: Date | null;
}

export interface UsageRejection {
  index: number;
  code: UsageRejectionCode;
  message: string;
}

export interface IngestResult {
  accepted: number;
  rejected: UsageRejection[];
}

const HTTP_METHODS = Object.values(HttpMethod);

const eventSchema = z.object({
  endpoint: z
    .string()
    .trim()
    .min(1, "endpoint is required")
    .max(2048, "endpoint must be at most 2048 characters")
    .regex(/^\/[^\s\u0000-\u001f\u007f]*$/, "endpoint must be a path starting with '/' and without spaces"),
  method: z
    .string()
    .trim()
    .toUpperCase()
    .pipe(z.enum(HTTP_METHODS, { error: `method must be one of ${HTTP_METHODS.join(", ")}` })),
  statusCode: z.int().min(100, "statusCode must be 100–599").max(599, "statusCode must be 100–599"),
  requestCount: z
    .int()
    .min(1, "requestCount must be at least 1")
    .max(MAX_REQUEST_COUNT, `requestCount must be at most ${MAX_REQUEST_COUNT}`)
    .nullish()
    .transform((value) => value ?? 1),
});

const idempotencyKeySchema = z.string().trim().min(1).max(200);

type KeyRef = { kind: "id"; id: string } | { kind: "secret"; secret: string };

type ResolvedKey =
  | { ok: true; apiKeyId: string; partnerId: string }
  | { ok: false; code: UsageRejectionCode; message: string };

const VERIFIER_REJECTION: Partial<Record<VerificationCode, UsageRejectionCode>> = {
  REVOKED: "KEY_REVOKED",
  DISABLED: "KEY_DISABLED",
  EXPIRED: "KEY_EXPIRED",
  PARTNER_SUSPENDED: "PARTNER_SUSPENDED",
};

/**
 * The usable key behind each reference, through the verifier's cache: ids (one read for those it
 * does not hold) and secrets (each distinct secret once). Judged at ingest time, as the gateway's
 * own verification is.
 */
async function resolveKeys(deps: IngestDeps, refs: readonly KeyRef[], now: Date): Promise<ResolvedKey[]> {
  const ids = [...new Set(refs.flatMap((ref) => (ref.kind === "id" ? [ref.id] : [])))];
  const secrets = [...new Set(refs.flatMap((ref) => (ref.kind === "secret" ? [ref.secret] : [])))];
  const [keys, verifications] = await Promise.all([
    ids.length === 0 ? new Map<string, KeyByIdState>() : deps.verifier.keyStates(ids),
    Promise.all(secrets.map((secret) => deps.verifier.verify(secret, { now, touch: false }))),
  ]);
  const byId = new Map<string, ResolvedKey>();
  for (const key of keys.values()) {
    const refusal = keyRefusal(key, now);
    byId.set(key.apiKeyId, refusal ? rejection(VERIFIER_REJECTION[refusal]!) : { ok: true, apiKeyId: key.apiKeyId, partnerId: key.partnerId });
  }
  const bySecret = new Map<string, ResolvedKey>();
  secrets.forEach((secret, i) => {
    const verification = verifications[i]!;
    const code = VERIFIER_REJECTION[verification.code];
    bySecret.set(
      secret,
      verification.valid && verification.apiKeyId && verification.partnerId
        ? { ok: true, apiKeyId: verification.apiKeyId, partnerId: verification.partnerId }
        : rejection(code ?? "UNKNOWN_KEY"),
    );
  });
  return refs.map(
    (ref) =>
      (ref.kind === "id" ? byId.get(ref.id) : bySecret.get(ref.secret)) ?? rejection("UNKNOWN_KEY"),
  );
}

const rejection = (code: UsageRejectionCode): ResolvedKey => ({ ok: false, code, message: REJECTION_MESSAGE[code] });

const REJECTION_MESSAGE: Record<UsageRejectionCode, string> = {
  UNKNOWN_KEY: "No API key has that id or secret",
  KEY_REVOKED: "The API key was revoked",
  KEY_DISABLED: "The API key is disabled",
  KEY_EXPIRED: "The API key (or this secret, replaced by a rotation) has expired",
  PARTNER_SUSPENDED: "The API key's partner is suspended",
  INVALID_EVENT: "The event is invalid",
};

/**
 * Stores a batch of the gateway's usage events. Valid events for usable keys are written together
 * (one statement with the batch's idempotency record, the keys' lastUsedAt and the rollups'
 * sums); the others are answered one by one. The partner is always the key's.
 * A retried batch (same submitter, idempotencyKey and events) answers what the first one did; the
 * same key with other events is a CONFLICT.
 */
export interface IngestDeps {
  prisma: PrismaClient;
  verifier: Pick<ApiKeyVerifier, "verify" | "keyStates">;
  pubsub: AppPubSub;
  /** Keys the hash of a batch kept for idempotency (events may carry key secrets). */
  hashKey: Uint8Array;
  now: () => Date;
  /** Told of every batch stored (not of replays answered from an earlier one), for metrics. */
  onStored?: (result: IngestResult) => void;
  /** Told which partners' usage changed, after commit (cached query answers showing it are dropped). */
  changes?: DataChanges;
}

export async function ingestUsage(
  deps: IngestDeps,
  submittedBy: string,
  events: readonly UsageEvent[],
  idempotencyKey?: string | null,
): Promise<IngestResult> {
  if (events.length > MAX_BATCH_EVENTS) {
    throw badInput(`A batch holds at most ${MAX_BATCH_EVENTS} events; split it`, { maxEvents: MAX_BATCH_EVENTS });
  }
  const batchKey = idempotencyKey == null ? null : idempotencyKeySchema.safeParse(idempotencyKey);
  if (batchKey && !batchKey.success) throw badInput("idempotencyKey must be 1 to 200 characters");
  const key = batchKey?.data ?? null;
  const requestHash = key ? batchHash(deps.hashKey, events) : null;
  const { prisma } = deps;

  const now = deps.now();
  const rejected: UsageRejection[] = [];
  const reject = (index: number, code: UsageRejectionCode, message: string) => rejected.push({ index, code, message });

  // A batch names few keys many times: each id is decoded once.
  const keyIds = new Map<string, string | null>();
  const valid: Array<{ index: number; ref: KeyRef; event: z.infer<typeof eventSchema>; occurredAt: Date }> = [];
  events.forEach((event, index) => {
    const parsed = eventSchema.safeParse(event);
    if (!parsed.success) return reject(index, "INVALID_EVENT", parsed.error.issues[0]?.message ?? "invalid event");
    const occurredAt = event.occurredAt ?? now;
    if (!isStorableDate(occurredAt)) return reject(index, "INVALID_EVENT", "occurredAt is outside the years 0001 to 9999");
    if (occurredAt.getTime() > now.getTime() + MAX_FUTURE_SKEW_MS) {
      return reject(index, "INVALID_EVENT", "occurredAt is too far in the future");
    }
    if (occurredAt.getTime() < now.getTime() - MAX_EVENT_AGE_MS) {
      return reject(index, "INVALID_EVENT", `occurredAt is more than ${MAX_EVENT_AGE_MS / 86_400_000} days in the past`);
    }
    const hasId = !!event.apiKeyId;
    const hasSecret = !!event.apiKeySecret;
    if (hasId === hasSecret) return reject(index, "INVALID_EVENT", "Give exactly one of apiKeyId and apiKeySecret");
    let ref: KeyRef;
    if (hasId) {
      let id = keyIds.get(event.apiKeyId!);
      if (id === undefined) keyIds.set(event.apiKeyId!, (id = decodeKeyId(event.apiKeyId!)));
      if (!id) return reject(index, "INVALID_EVENT", "apiKeyId is not an APIKey id");
      ref = { kind: "id", id };
    } else {
      ref = { kind: "secret", secret: event.apiKeySecret! };
    }
    valid.push({ index, ref, event: parsed.data, occurredAt });
  });

  const resolved = await resolveKeys(deps, valid.map((v) => v.ref), now);
  // One draw of randomness for the batch's ids rather than one per row.
  const entropy = randomBytes(16 * valid.length);
  const rows: UsageLogMessage[] = [];
  const lastUsed = new Map<string, Date>();
  const nowIso = now.toISOString();
  for (const [position, { index, event, occurredAt }] of valid.entries()) {
    const key = resolved[position]!;
    if (!key.ok) {
      reject(index, key.code, key.message);
      continue;
    }
    rows.push({
      // Raw inserts bypass Prisma's uuid(7) default, so the ids are made here the same way; the
      // sequence keeps them rising in the batch's order, which is the order usageLogCreated's
      // cursors (createdAt, then id) follow.
      id: uuidv7({ msecs: now.getTime(), seq: rows.length, random: entropy.subarray(16 * position, 16 * position + 16) }),
      partnerId: key.partnerId,
      apiKeyId: key.apiKeyId,
      endpoint: event.endpoint,
      method: event.method,
      statusCode: event.statusCode,
      requestCount: event.requestCount,
      occurredAt: occurredAt.toISOString(),
      createdAt: nowIso,
      updatedAt: nowIso,
    });
    const seen = lastUsed.get(key.apiKeyId);
    if (!seen || seen < occurredAt) lastUsed.set(key.apiKeyId, occurredAt);
  }
  rejected.sort((a, b) => a.index - b.index);
  const result: IngestResult = { accepted: rows.length, rejected };

  const batch: BatchRecord | null = key
    ? { id: uuidv7({ msecs: now.getTime() }), submittedBy, idempotencyKey: key, requestHash, result, at: nowIso }
    : null;
  if (batch || rows.length > 0) {
    const stored = await storeBatch(prisma, batch, rows, lastUsed);
    // Another request stored this key first (perhaps at this moment): its answer, or CONFLICT.
    if (batch && !stored) {
      const earlier = await storedAnswer(prisma, submittedBy, batch.idempotencyKey, requestHash);
      if (earlier) return earlier;
      throw new Error("usage batch neither stored nor found");
    }
  }

  deps.onStored?.(result);
  if (rows.length > 0) {
    publish(deps.pubsub, rows);
    await deps.changes?.changed(rows.map((row) => row.partnerId));
  }
  return result;
}

function decodeKeyId(globalId: string): string | null {
  try {
    const { typename, id } = decodeGlobalID(globalId);
    return typename === "APIKey" && id.length > 0 && id.length <= 64 ? id : null;
  } catch {
    return null;
  }
}

/**
 * The answer a batch stored under this key was given, or null when the key is new. A stored
 * batch with other events is a CONFLICT: one key names one request, as payment APIs have it.
 * Batches stored before the hash was kept (null) answer their first result to any retry.
 */
async function storedAnswer(
  prisma: PrismaClient,
  submittedBy: string,
  idempotencyKey: string,
  requestHash: string | null,
): Promise<IngestResult | null> {
  const batch = await prisma.usageBatch.findUnique({
    where: { submittedBy_idempotencyKey: { submittedBy, idempotencyKey } },
    select: { accepted: true, rejected: true, requestHash: true },
  });
  if (!batch) return null;
  if (batch.requestHash !== null && batch.requestHash !== requestHash) {
    throw conflict("This idempotencyKey was used for a different batch; a new batch needs a new key", {
      field: "idempotencyKey",
    });
  }
  return { accepted: batch.accepted, rejected: batch.rejected as unknown as UsageRejection[] };
}

/**
 * A keyed SHA-256 of the events exactly as received (every field, in order, absent as null), so
 * a retry matches its first attempt and any other batch does not. Keyed, because events may
 * carry key secrets and nothing derived from a secret is stored unkeyed.
 */
function batchHash(hashKey: Uint8Array, events: readonly UsageEvent[]): string {
  const canonical = events.map((event) => [
    event.apiKeyId ?? null,
    event.apiKeySecret ?? null,
    event.endpoint,
    event.method,
    event.statusCode,
    event.requestCount ?? null,
    event.occurredAt ? event.occurredAt.getTime() : null,
  ]);
  return createHmac("sha256", hashKey).update(JSON.stringify(canonical)).digest("base64url");
}

type Client = PrismaClient;

interface BatchRecord {
  id: string;
  submittedBy: string;
  idempotencyKey: string;
  requestHash: string | null;
  result: IngestResult;
  at: string;
}

/**
 * The whole batch in one statement, so one round trip and atomic without an explicit
 * transaction: the idempotency record, the rows, the keys' lastUsedAt and the rollups' sums, each
 * one set-based write whose rows travel as one parameter (a JSON array, or arrays for the keys),
 * so the statement's text is fixed and Prisma binds a handful of values (binding columns of a
 * thousand values each cost about 7 ms per 1,000-event batch). Every write but the record's depends on the record being new: a retry that lost the race (ON CONFLICT
 * waits for the winner's commit) writes nothing. Answers whether this batch was stored.
 */
async function storeBatch(
  prisma: Client,
  batch: BatchRecord | null,
  rows: UsageLogMessage[],
  lastUsed: Map<string, Date>,
): Promise<boolean> {
  const record = batch
    ? Prisma.sql`
        INSERT INTO "UsageBatch" ("id", "submittedBy", "idempotencyKey", "requestHash", "accepted", "rejected", "createdAt", "updatedAt")
        VALUES (${batch.id}, ${batch.submittedBy}, ${batch.idempotencyKey}, ${batch.requestHash}, ${batch.result.accepted},
                ${JSON.stringify(batch.result.rejected)}::jsonb, ${batch.at}::timestamp(3), ${batch.at}::timestamp(3))
        ON CONFLICT ("submittedBy", "idempotencyKey") DO NOTHING
        RETURNING 1`
    : Prisma.sql`SELECT 1`;
  const writes = rows.length > 0 ? [insertRows(rows), touchKeys(lastUsed), ...upsertRollups(rows)] : [];
  const [answer] = await prisma.$queryRaw<Array<{ stored: number }>>`
    WITH batch AS (${record})${
      writes.length > 0
        ? Prisma.join(writes.map((write, i) => Prisma.sql`, w${Prisma.raw(String(i))} AS (${write})`), "")
        : Prisma.empty
    }
    SELECT COUNT(*)::int AS stored FROM batch`;
  return (answer?.stored ?? 0) > 0;
}

const isNew = Prisma.sql`EXISTS (SELECT FROM batch)`;

/** The rows as one JSON array (json_to_recordset reads the columns it names and no others). */
function insertRows(rows: UsageLogMessage[]) {
  return Prisma.sql`
    INSERT INTO "UsageLog"
      ("id", "partnerId", "apiKeyId", "endpoint", "method", "statusCode", "requestCount", "occurredAt", "createdAt", "updatedAt")
    SELECT id, "partnerId", "apiKeyId", endpoint, method::"HttpMethod", "statusCode", "requestCount",
           "occurredAt"::timestamp(3), ${rows[0]!.createdAt}::timestamp(3), ${rows[0]!.updatedAt}::timestamp(3)
    FROM json_to_recordset(${JSON.stringify(rows)}::json)
      AS u(id text, "partnerId" text, "apiKeyId" text, endpoint text, method text, "statusCode" int, "requestCount" int, "occurredAt" text)
    WHERE ${isNew}`;
}

/** lastUsedAt never moves backwards. */
function touchKeys(lastUsed: Map<string, Date>) {
  const ids = [...lastUsed.keys()];
  const times = [...lastUsed.values()].map((at) => at.toISOString());
  return Prisma.sql`
    UPDATE "ApiKey" AS k
    SET "lastUsedAt" = GREATEST(COALESCE(k."lastUsedAt", u.at), u.at)
    FROM unnest(${ids}::text[], ${times}::text[]) AS t(id, at_text)
    CROSS JOIN LATERAL (SELECT t.at_text::timestamp(3) AS at) AS u
    WHERE k.id = t.id AND ${isNew}`;
}

/**
 * The batch's sums added to the rollups. Sums are made here, so each rollup row is touched once
 * per batch; rows go in key order, so concurrent batches lock them in the same order.
 */
function upsertRollups(rows: UsageLogMessage[]) {
  type Sum = {
    grain: UsageGrain; start: number; partnerId: string; statusCode: number; endpoint: string; method: string; requests: number; errors: number;
  };
  const add = (sums: Map<string, Sum>, key: string, sum: Sum, start: number) => {
    const seen = sums.get(key);
    if (seen) {
      seen.requests += sum.requests;
      seen.errors += sum.errors;
    } else {
      sums.set(key, { ...sum, start });
    }
  };
  // Endpoints hold no control characters, so a newline separates the parts of a key.
  const finest = new Map<string, Sum>();
  for (const row of rows) {
    const start = bucketStart(Date.parse(row.occurredAt), "MINUTE");
    const errors = row.statusCode >= ERROR_STATUS_FROM ? row.requestCount : 0;
    const key = `${row.partnerId}\n${start}\n${row.statusCode}\n${row.method}\n${row.endpoint}`;
    const { partnerId, statusCode, endpoint, method, requestCount: requests } = row;
    add(finest, key, { grain: "MINUTE", start, partnerId, statusCode, endpoint, method, requests, errors }, start);
  }
  const status = new Map<string, Sum>();
  const endpoints = new Map<string, Sum>();
  for (const grain of USAGE_GRAINS) {
    for (const sum of finest.values()) {
      const start = bucketStart(sum.start, grain);
      add(status, `${sum.partnerId}\n${grain}\n${start}\n${sum.statusCode}`, { ...sum, grain }, start);
      add(endpoints, `${sum.partnerId}\n${grain}\n${start}\n${sum.method}\n${sum.endpoint}`, { ...sum, grain }, start);
    }
  }
  // Each set travels as one JSON parameter: one value to bind, however many rows.
  const json = (sums: Map<string, Sum>) =>
    JSON.stringify([...sums.values()].map(({ partnerId, grain, start, statusCode, endpoint, method, requests, errors }) => ({
      partnerId, grain, start: new Date(start).toISOString(), statusCode, endpoint, method, requests, errors,
    })));
  return [
    Prisma.sql`
      INSERT INTO "UsageStatusRollup" ("partnerId", grain, "bucketStart", "statusCode", "requestCount")
      SELECT "partnerId", grain::"UsageGrain", start::timestamp(3), "statusCode", requests
      FROM json_to_recordset(${json(status)}::json) AS u("partnerId" text, grain text, start text, "statusCode" int, requests bigint)
      WHERE ${isNew}
      ORDER BY 1, 2, 3, 4
      ON CONFLICT ("partnerId", grain, "bucketStart", "statusCode")
      DO UPDATE SET "requestCount" = "UsageStatusRollup"."requestCount" + EXCLUDED."requestCount"`,
    Prisma.sql`
      INSERT INTO "UsageEndpointRollup" ("partnerId", grain, "bucketStart", endpoint, method, "requestCount", "errorRequests")
      SELECT "partnerId", grain::"UsageGrain", start::timestamp(3), endpoint, method::"HttpMethod", requests, errors
      FROM json_to_recordset(${json(endpoints)}::json)
        AS u("partnerId" text, grain text, start text, endpoint text, method text, requests bigint, errors bigint)
      WHERE ${isNew}
      ORDER BY 1, 2, 3, 4, 5
      ON CONFLICT ("partnerId", grain, "bucketStart", endpoint, method)
      DO UPDATE SET "requestCount" = "UsageEndpointRollup"."requestCount" + EXCLUDED."requestCount",
                    "errorRequests" = "UsageEndpointRollup"."errorRequests" + EXCLUDED."errorRequests"`,
  ];
}

/** After commit: one message for the batch to subscribers, and live queries over usage re-run. */
function publish(pubsub: AppPubSub, rows: UsageLogMessage[]) {
  pubsub.publish("usage:created", { logs: rows });
  invalidateLive(pubsub, [
    "Query.usageLogs",
    "Query.usageSummary",
    ...[...new Set(rows.map((row) => row.partnerId))].map((id) => liveKey("PartnerOrganization", id)),
    ...[...new Set(rows.map((row) => row.apiKeyId))].map((id) => liveKey("APIKey", id)),
  ]);
}
