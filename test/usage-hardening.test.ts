// Usage and gateway paths under hostile input: dates at and past every edge, idempotency keys
// reused with other batches (also simultaneously), and streams of a service credential that is
// revoked while they are open.
import { randomBytes } from "node:crypto";
import { getNamedType, isInputObjectType, type GraphQLInputType, type GraphQLSchema } from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SESSION_ENDED_CLOSE_CODE } from "../src/http/websocket.js";
import { buildSchema } from "../src/schema/index.js";
import { MAX_EVENT_AGE_MS, MAX_FUTURE_SKEW_MS } from "../src/usage/ingest.js";
import { createTestDatabase, TEST_DATABASE_URL, TEST_REDIS_URL } from "./support/database.js";
import { errorCodes, sharedSecrets, startTestServer, type TestServer } from "./support/server.js";
import { sseStream, wsStream, type ResultStream } from "./support/streams.js";
import { createGatewayCredential, createKey, createPartner, event, RECORD_USAGE, type TestKey } from "./support/usage.js";
import { createUser, type SignedInUser } from "./support/users.js";

const NOW = new Date("2026-11-28T12:00:00.000Z");
let server: TestServer;
let gateway: string;
let admin: SignedInUser;
let partner: Awaited<ReturnType<typeof createPartner>>;
let key: TestKey;

beforeAll(async () => {
  server = await startTestServer({ now: () => NOW });
  gateway = await createGatewayCredential(server);
  admin = await createUser(server, "hardening-admin", "admin");
  partner = await createPartner(server, "Hardening");
  key = await createKey(server, partner.id, partner.ownerId);
});
afterAll(async () => {
  await server?.close();
});

const prisma = () => server.app.services.prisma;
const at = (offsetMs: number) => new Date(NOW.getTime() + offsetMs).toISOString();
const unique = (label: string) => `${label}-${randomBytes(4).toString("hex")}`;

/** Every date the DateTime scalar accepts at and around the edges, with what storing it means. */
const EDGE_DATES = [
  "0000-01-01T00:00:00Z", // year 0: the scalar takes it, PostgreSQL has no such year
  "0000-01-01T00:00:00+14:00", // year -1 once in UTC
  "0001-01-01T00:00:00Z",
  "1969-12-31T23:59:59.999Z", // before the epoch: negative milliseconds
  "1970-01-01T00:00:00Z",
  "9999-12-31T23:59:59.999Z",
  "9999-12-31T23:59:59-14:00", // year 10000 once in UTC
  "2100-01-01T00:00:00Z", // far future, but storable
];
const outsideStorable = (value: string) => value.startsWith("0000") || value.endsWith("-14:00");

describe("dates in a usage batch", () => {
  it("stores or rejects each event on its own, whatever date the scalar accepted", async () => {
    const marker = unique("/edge");
    const stored = await prisma().usageLog.count();
    const inWindow = [at(-MAX_EVENT_AGE_MS), at(-1), at(MAX_FUTURE_SKEW_MS)];
    const outOfWindow = [...EDGE_DATES, at(-MAX_EVENT_AGE_MS - 1), at(MAX_FUTURE_SKEW_MS + 1)];
    const events = [
      event(key, { endpoint: `${marker}/first` }),
      ...outOfWindow.map((occurredAt) => event(key, { endpoint: `${marker}/out`, occurredAt })),
      ...inWindow.map((occurredAt) => event(key, { endpoint: `${marker}/in`, occurredAt })),
    ];
    const response = await server.gql(RECORD_USAGE, { events }, gateway);
    expect(response.errors, JSON.stringify(response.errors)).toBeUndefined();
    const { accepted, rejected } = response.data!.recordUsage;
    expect(accepted).toBe(1 + inWindow.length);
    expect(rejected.map((r: { index: number }) => r.index)).toEqual(outOfWindow.map((_, i) => 1 + i));
    for (const rejection of rejected) {
      expect(rejection.code).toBe("INVALID_EVENT");
      expect(rejection.message).toMatch(/occurredAt/);
    }
    // Nothing stored before is lost, and exactly the accepted events were added.
    expect(await prisma().usageLog.count()).toBe(stored + accepted);
    const rows = await prisma().usageLog.findMany({ where: { endpoint: { startsWith: marker } }, orderBy: { occurredAt: "asc" } });
    expect(rows.map((row) => row.occurredAt.toISOString())).toEqual([...inWindow.slice(0, 2), NOW.toISOString(), inWindow[2]]);
  });

  it("answers the same whether the event names its key by id or by secret", async () => {
    const response = await server.gql(
      RECORD_USAGE,
      {
        events: [
          { ...event(key), apiKeyId: null, apiKeySecret: key.secret, occurredAt: "0000-01-01T00:00:00Z" },
          { ...event(key), apiKeyId: null, apiKeySecret: key.secret },
        ],
      },
      gateway,
    );
    expect(response.data!.recordUsage).toMatchObject({ accepted: 1, rejected: [{ index: 0, code: "INVALID_EVENT" }] });
  });
});

/** Where a DateTime is an argument: one request per place, the date in `$d`. */
const DATE_ARGUMENTS: Record<string, { query: string; variables?: () => Record<string, unknown> }> = {
  "Query.usageSummary(from)": { query: `query ($d: DateTime) { usageSummary(from: $d, to: "9999-12-31T23:59:59.999Z", bucket: DAY) { totalRequests } }` },
  "Query.usageSummary(to)": { query: `query ($d: DateTime) { usageSummary(to: $d) { totalRequests } }` },
  "UsageLogFilter.from": { query: `query ($d: DateTime) { usageLogs(filter: { from: $d }) { edges { node { id } } } }` },
  "UsageLogFilter.to": { query: `query ($d: DateTime) { usageLogs(filter: { to: $d }) { edges { node { id } } } }` },
  "APIKey.usageLogs(filter)": {
    query: `query ($k: ID!, $d: DateTime) { apiKey(id: $k) { usageLogs(filter: { from: $d, to: $d }) { edges { node { id } } } } }`,
    variables: () => ({ k: key.globalId }),
  },
  "PartnerOrganization.usageLogs(filter)": {
    query: `query ($p: ID!, $d: DateTime) { partner(id: $p) { usageLogs(filter: { from: $d }) { edges { node { id } } } } }`,
    variables: () => ({ p: partner.globalId }),
  },
  "CreateApiKeyInput.expiresAt": {
    query: `mutation ($p: ID!, $n: String!, $d: DateTime) { createApiKey(input: { partnerId: $p, keyName: $n, scopes: [USAGE_READ], expiresAt: $d }) { apiKey { id } } }`,
    variables: () => ({ p: partner.globalId, n: unique("edge-key") }),
  },
  "UpdateApiKeyInput.expiresAt": {
    query: `mutation ($k: ID!, $d: DateTime) { updateApiKey(id: $k, input: { expiresAt: $d }) { id } }`,
    variables: () => ({ k: key.globalId }),
  },
  "AuditEventFilter.from": { query: `query ($d: DateTime) { auditEvents(filter: { from: $d }) { totalCount } }` },
  "AuditEventFilter.to": { query: `query ($d: DateTime) { auditEvents(filter: { to: $d }) { totalCount } }` },
};

/** Every place in the schema where a client can send a DateTime: argument and input-field coordinates. */
function dateInputs(schema: GraphQLSchema): string[] {
  const found = new Set<string>();
  const isDate = (type: GraphQLInputType) => getNamedType(type).name === "DateTime";
  for (const type of Object.values(schema.getTypeMap())) {
    if (type.name.startsWith("__")) continue;
    if (isInputObjectType(type)) {
      for (const field of Object.values(type.getFields())) if (isDate(field.type)) found.add(`${type.name}.${field.name}`);
    } else if ("getFields" in type) {
      for (const field of Object.values(type.getFields())) {
        for (const arg of "args" in field ? field.args : []) if (isDate(arg.type)) found.add(`${type.name}.${field.name}(${arg.name})`);
      }
    }
  }
  return [...found].sort();
}

describe("date arguments", () => {
  it("covers every place the schema takes a DateTime (a new one needs a row here)", () => {
    const covered = new Set(
      Object.keys(DATE_ARGUMENTS).flatMap((name) => {
        const filter = /^(\w+)\.usageLogs\(filter\)$/.exec(name);
        return filter ? [] : [name];
      }),
    );
    // The filter's fields are reached through three connections; each is a row of its own above.
    covered.add("UsageEventInput.occurredAt");
    expect(dateInputs(buildSchema())).toEqual([...covered].sort());
  });

  for (const [place, { query, variables }] of Object.entries(DATE_ARGUMENTS)) {
    it(`${place}: answers every edge date with data or BAD_USER_INPUT, never a masked error`, async () => {
      for (const d of EDGE_DATES) {
        const response = await server.gql(query, { ...variables?.(), d }, admin.token);
        const codes = errorCodes(response);
        if (outsideStorable(d)) expect(codes, `${d}: ${JSON.stringify(response)}`).toEqual(["BAD_USER_INPUT"]);
        else expect(codes.every((code) => code === "BAD_USER_INPUT"), `${d}: ${JSON.stringify(response)}`).toBe(true);
        expect(JSON.stringify(response)).not.toContain("Unexpected error");
      }
    });
  }

  it("sums a window in year 1, and asks for `from` when the default one would start before it", async () => {
    const early = await server.gql(
      `{ usageSummary(from: "0001-01-01T00:00:00Z", to: "0001-01-03T00:00:00Z", bucket: DAY) { totalRequests series { bucketStart } } }`,
      {},
      admin.token,
    );
    expect(early.data?.usageSummary, JSON.stringify(early)).toEqual({
      totalRequests: 0,
      series: [{ bucketStart: "0001-01-01T00:00:00.000Z" }, { bucketStart: "0001-01-02T00:00:00.000Z" }],
    });
    const response = await server.gql(`{ usageSummary(to: "0001-01-01T12:00:00Z") { totalRequests } }`, {}, admin.token);
    expect(errorCodes(response)).toEqual(["BAD_USER_INPUT"]);
  });

  it("pages with cursors through rows dated before 1970", async () => {
    const marker = unique("/old");
    await prisma().usageLog.createMany({
      data: [1, 2, 3].map((i) => ({
        partnerId: partner.id,
        apiKeyId: key.id,
        endpoint: marker,
        method: "GET" as const,
        statusCode: 200,
        occurredAt: new Date(Date.UTC(1969, 0, i)),
      })),
    });
    const LOGS = `query ($f: UsageLogFilter, $after: String) { usageLogs(filter: $f, first: 2, after: $after) { edges { node { occurredAt } } pageInfo { endCursor hasNextPage } } }`;
    const filter = { endpoint: marker, to: "1970-01-01T00:00:00Z" };
    const first = await server.gql(LOGS, { f: filter }, admin.token);
    expect(first.data!.usageLogs.pageInfo.hasNextPage).toBe(true);
    const second = await server.gql(LOGS, { f: filter, after: first.data!.usageLogs.pageInfo.endCursor }, admin.token);
    expect(second.errors).toBeUndefined();
    expect(second.data!.usageLogs.edges).toEqual([{ node: { occurredAt: "1969-01-01T00:00:00.000Z" } }]);
  });
});

describe("idempotency keys", () => {
  it("answers the first result to the same batch and CONFLICT to another one under the same key", async () => {
    const idempotencyKey = unique("batch");
    const events = [event(key, { endpoint: "/idem/a" }), event(key, { endpoint: "/idem/b", requestCount: 3 })];
    const first = await server.gql(RECORD_USAGE, { events, idempotencyKey }, gateway);
    expect(first.data!.recordUsage.accepted).toBe(2);
    const stored = await prisma().usageLog.count();

    expect((await server.gql(RECORD_USAGE, { events, idempotencyKey }, gateway)).data).toEqual(first.data);
    const others = [
      [events[0]], // fewer events
      [events[1], events[0]], // same events, another order
      [events[0], { ...events[1], requestCount: 4 }], // one field differs
      [events[0], { ...events[1], occurredAt: NOW.toISOString() }], // a default made explicit
    ];
    for (const other of others) {
      const response = await server.gql(RECORD_USAGE, { events: other, idempotencyKey }, gateway);
      expect(response.data ?? null).toBeNull();
      expect(errorCodes(response)).toEqual(["CONFLICT"]);
      expect(response.errors![0]!.extensions).toMatchObject({ field: "idempotencyKey" });
    }
    expect(await prisma().usageLog.count()).toBe(stored);
  });

  it("lets exactly one of simultaneous different batches under one key win", async () => {
    const idempotencyKey = unique("race");
    const stored = await prisma().usageLog.count();
    const batches = [1, 2, 3, 4].map((n) => Array.from({ length: n }, (_, i) => event(key, { endpoint: `/race/${n}/${i}` })));
    const answers = await Promise.all(batches.map((events) => server.gql(RECORD_USAGE, { events, idempotencyKey }, gateway)));
    const winners = answers.filter((answer) => answer.data?.recordUsage);
    expect(winners).toHaveLength(1);
    for (const loser of answers.filter((answer) => !answer.data?.recordUsage)) expect(errorCodes(loser)).toEqual(["CONFLICT"]);
    const won = winners[0]!.data!.recordUsage.accepted as number;
    expect(await prisma().usageLog.count()).toBe(stored + won);
    // The winner's own retry still answers its result.
    const retry = await server.gql(RECORD_USAGE, { events: batches[won - 1], idempotencyKey }, gateway);
    expect(retry.data).toEqual(winners[0]!.data);
  });

  it("keeps answering the first result for a batch stored before its hash was kept", async () => {
    const credential = await prisma().serviceCredential.findFirstOrThrow({ where: { name: "gateway" } });
    const idempotencyKey = unique("legacy");
    await prisma().usageBatch.create({
      data: { submittedBy: `service:${credential.id}`, idempotencyKey, accepted: 7, rejected: [] },
    });
    const stored = await prisma().usageLog.count();
    const response = await server.gql(RECORD_USAGE, { events: [event(key)], idempotencyKey }, gateway);
    expect(response.data!.recordUsage).toEqual({ accepted: 7, rejected: [] });
    expect(await prisma().usageLog.count()).toBe(stored);
  });
});

// A live query a gateway may keep open: it re-runs whenever usage for the key is recorded.
const LIVE_VERIFY = /* GraphQL */ `
  query ($s: String!) @live { verifyApiKey(secret: $s) { valid apiKey { id } } }
`;
const CREATE_CREDENTIAL = `mutation ($n: String!) { createServiceCredential(name: $n) { secret serviceCredential { id } } }`;
const REVOKE_CREDENTIAL = `mutation ($id: ID!) { revokeServiceCredential(id: $id) { isActive } }`;

async function issueCredential(on: TestServer, token: string) {
  const created = await on.gql(CREATE_CREDENTIAL, { n: unique("gw") }, token);
  const { secret, serviceCredential } = created.data!.createServiceCredential;
  return { secret: secret as string, id: serviceCredential.id as string };
}

/** Records usage for the key (as the long-lived gateway) until the live stream answers again. */
async function nextLiveResult(on: TestServer, stream: ResultStream, bearer: string, testKey: TestKey) {
  const next = stream.next();
  await on.gql(RECORD_USAGE, { events: [event(testKey)] }, bearer);
  return next;
}

describe("a revoked service credential's open streams", () => {
  it("end over SSE, and a later change reaches them no more", async () => {
    const credential = await issueCredential(server, admin.token);
    const stream = sseStream(server.url, LIVE_VERIFY, { s: key.secret }, credential.secret);
    expect((await stream.next())?.data).toMatchObject({ verifyApiKey: { valid: true, apiKey: { id: key.globalId } } });
    expect((await nextLiveResult(server, stream, gateway, key))?.data).toMatchObject({ verifyApiKey: { valid: true } });

    const revoked = await server.gql(REVOKE_CREDENTIAL, { id: credential.id }, admin.token);
    expect(revoked.data).toEqual({ revokeServiceCredential: { isActive: false } });
    expect(await nextLiveResult(server, stream, gateway, key)).toBeNull();
    await stream.ended;
  });

  it("end over graphql-ws, and the socket closes with 4401 as at logout", async () => {
    const credential = await issueCredential(server, admin.token);
    const client = server.ws({ connectionParams: { authorization: `Bearer ${credential.secret}` } });
    const closed = new Promise<number>((resolve) => client.on("closed", (event) => resolve((event as CloseEvent).code)));
    const live = wsStream(client, LIVE_VERIFY, { s: key.secret });
    expect((await live.next())?.data).toMatchObject({ verifyApiKey: { valid: true } });
    expect((await nextLiveResult(server, live, gateway, key))?.data).toMatchObject({ verifyApiKey: { valid: true } });

    await server.gql(REVOKE_CREDENTIAL, { id: credential.id }, admin.token);
    expect(await closed).toBe(SESSION_ENDED_CLOSE_CODE);
    expect(await nextLiveResult(server, live, gateway, key)).toBeNull();
  });
});

describe.skipIf(!TEST_REDIS_URL || !TEST_DATABASE_URL)("a credential revoked on another instance", () => {
  it("ends its SSE and graphql-ws streams on this one", async () => {
    const database = await createTestDatabase();
    const env = { ...sharedSecrets(), REDIS_CHANNEL_PREFIX: `pp-test-${randomBytes(6).toString("hex")}:` };
    const one = await startTestServer({ database, redis: true, env });
    const two = await startTestServer({ database, redis: true, env });
    try {
      const oneAdmin = await createUser(one, "two-instances-admin", "admin");
      const owner = await createPartner(one, "Two instances");
      const twoKey = await createKey(one, owner.id, owner.ownerId);
      const writer = await createGatewayCredential(one, "writer");
      const credential = await issueCredential(one, oneAdmin.token);

      const overSse = sseStream(two.url, LIVE_VERIFY, { s: twoKey.secret }, credential.secret);
      const client = two.ws({ connectionParams: { authorization: `Bearer ${credential.secret}` } });
      const closed = new Promise<number>((resolve) => client.on("closed", (event) => resolve((event as CloseEvent).code)));
      const overWs = wsStream(client, LIVE_VERIFY, { s: twoKey.secret });
      for (const stream of [overSse, overWs]) expect((await stream.next())?.data).toMatchObject({ verifyApiKey: { valid: true } });

      await one.gql(REVOKE_CREDENTIAL, { id: credential.id }, oneAdmin.token);
      expect(await closed).toBe(SESSION_ENDED_CLOSE_CODE);
      await overSse.ended;
      // Nothing recorded after the revocation reaches either stream.
      const seen = overSse.received.length + overWs.received.length;
      await one.gql(RECORD_USAGE, { events: [event(twoKey)] }, writer);
      expect(await overSse.next()).toBeNull();
      expect(await overWs.next()).toBeNull();
      expect(overSse.received.length + overWs.received.length).toBe(seen);
    } finally {
      await two.close();
      await one.close();
      await database.drop();
    }
  });
});
