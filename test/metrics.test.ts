// Prometheus metrics at /metrics: they move with real operations over HTTP and WebSockets, each
// server has a registry of its own, and METRICS_TOKEN / METRICS_PORT keep scrapes private.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LOGIN_FAILURES_PER_ACCOUNT } from "../src/auth/login-throttle.js";
import { TEST_REDIS_URL } from "./support/database.js";
import { startTestServer, type TestServer } from "./support/server.js";
import { wsStream } from "./support/streams.js";
import { createGatewayCredential, createKey, createPartner, event, RECORD_USAGE } from "./support/usage.js";
import { createUser, type SignedInUser } from "./support/users.js";

const METRICS_TOKEN = randomBytes(24).toString("base64url");

let server: TestServer;
let admin: SignedInUser;
const metricsUrl = () => server.url.replace(/\/graphql$/, "/metrics");

beforeAll(async () => {
  server = await startTestServer({ env: { METRICS_TOKEN }, redis: !!TEST_REDIS_URL });
  admin = await createUser(server, "metrics-admin", "admin");
});
afterAll(async () => {
  await server?.close();
});

type Samples = Map<string, number>;

/** Prometheus text exposition -> `name{label="value",…}` (labels sorted) -> value. */
function parse(text: string): Samples {
  const samples: Samples = new Map();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`unparsable metrics line: ${line}`);
    const labels = [...(match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map(([, k, v]) => `${k}="${v}"`).sort();
    samples.set(`${match[1]}{${labels.join(",")}}`, Number(match[3]));
  }
  return samples;
}

/** One sample's value (0 when absent), by name and labels. */
function value(samples: Samples, name: string, labels: Record<string, string> = {}): number {
  const key = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).sort().join(",");
  return samples.get(`${name}{${key}}`) ?? 0;
}

async function scrape(url = metricsUrl(), token: string | null = METRICS_TOKEN): Promise<Samples> {
  const response = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  return parse(await response.text());
}

/** Scrapes until `check` holds (a stream is counted once the server has started it). */
async function scrapeUntil(check: (samples: Samples) => boolean): Promise<Samples> {
  for (;;) {
    const samples = await scrape();
    if (check(samples)) return samples;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

describe("/metrics", () => {
  it("asks for METRICS_TOKEN as a bearer token when it is set", async () => {
    expect((await fetch(metricsUrl())).status).toBe(401);
    const wrong = await fetch(metricsUrl(), { headers: { authorization: `Bearer ${METRICS_TOKEN.slice(1)}x` } });
    expect(wrong.status).toBe(401);
    // A signed-in user's token is not the metrics token.
    expect((await fetch(metricsUrl(), { headers: { authorization: `Bearer ${admin.token}` } })).status).toBe(401);
    const samples = await scrape();
    expect(value(samples, "process_cpu_user_seconds_total")).toBeGreaterThan(0);
    expect(value(samples, "nodejs_heap_size_used_bytes")).toBeGreaterThan(0);
  });

  it("counts operations and their latency by operation and outcome, and HTTP requests by status", async () => {
    const before = await scrape();
    await server.gql(`query Probe { __typename }`);
    await server.gql(`query Probe { __typename }`);
    const malformed = await server.gql(`query BadId { partner(id: "not-base64!") { id } }`, {}, admin.token);
    expect(malformed.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    const after = await scrape();
    const probe = { operation: "Probe", type: "query", outcome: "ok" };
    expect(value(after, "graphql_operations_total", probe) - value(before, "graphql_operations_total", probe)).toBe(2);
    expect(
      value(after, "graphql_operation_duration_seconds_count", probe) - value(before, "graphql_operation_duration_seconds_count", probe),
    ).toBe(2);
    const bad = { operation: "BadId", type: "query", outcome: "client_error" };
    expect(value(after, "graphql_operations_total", bad) - value(before, "graphql_operations_total", bad)).toBe(1);
    const ok = { method: "POST", status: "200" };
    expect(value(after, "http_requests_total", ok) - value(before, "http_requests_total", ok)).toBeGreaterThanOrEqual(3);
  });

  it("counts key verifications by code, cache hits and misses, and the hit ratio", async () => {
    const partner = await createPartner(server, `Metrics ${randomBytes(3).toString("hex")}`);
    const key = await createKey(server, partner.id, partner.ownerId);
    const gateway = await createGatewayCredential(server, `metrics-gw-${randomBytes(3).toString("hex")}`);
    const before = await scrape();
    const verify = (secret: string) => server.gql(`query ($s: String!) { verifyApiKey(secret: $s) { valid code } }`, { s: secret }, gateway);
    expect((await verify(key.secret)).data).toEqual({ verifyApiKey: { valid: true, code: "VALID" } });
    expect((await verify(key.secret)).data).toEqual({ verifyApiKey: { valid: true, code: "VALID" } });
    expect((await verify("not a key")).data).toEqual({ verifyApiKey: { valid: false, code: "MALFORMED" } });
    const after = await scrape();
    const delta = (name: string, labels: Record<string, string>) => value(after, name, labels) - value(before, name, labels);
    expect(delta("api_key_verifications_total", { code: "VALID" })).toBe(2);
    expect(delta("api_key_verifications_total", { code: "MALFORMED" })).toBe(1);
    // The first verification loads the key, the second finds it cached (unless Redis is away).
    expect(delta("api_key_cache_lookups_total", { result: "miss" })).toBeGreaterThanOrEqual(1);
    expect(delta("api_key_cache_lookups_total", { result: "hit" })).toBe(1);
    const ratio = value(after, "api_key_cache_hit_ratio");
    expect(ratio).toBeGreaterThan(0);
    expect(ratio).toBeLessThan(1);
  });

  it("counts ingested and rejected usage events, events published, and what subscriptions deliver, while counting open streams", async () => {
    const partner = await createPartner(server, `Usage ${randomBytes(3).toString("hex")}`);
    const key = await createKey(server, partner.id, partner.ownerId);
    const gateway = await createGatewayCredential(server, `usage-gw-${randomBytes(3).toString("hex")}`);
    const before = await scrape();
    const client = server.ws({ connectionParams: { authorization: `Bearer ${admin.token}` } });
    const stream = wsStream(client, `subscription Watch { usageLogCreated { id } }`);
    const live = wsStream(client, `query LiveDocs @live { developerDocs { totalCount } }`);
    expect(await live.next()).toMatchObject({ data: { developerDocs: { totalCount: expect.any(Number) } } });
    const open = await scrapeUntil(
      (samples) => value(samples, "graphql_subscriptions_active") >= 1 && value(samples, "graphql_live_queries_active") >= 1,
    );
    expect(value(open, "websocket_connections")).toBeGreaterThanOrEqual(1);

    const unknown = { ...event(key), apiKeyId: null, apiKeySecret: "ppk_live_not_a_real_key" };
    let recorded = 0;
    let delivered: unknown = null;
    // A subscriber is listening some time after it subscribed: record until one event arrives.
    const first = stream.next();
    void first.then((result) => (delivered = result));
    while (!delivered) {
      const answer = await server.gql(RECORD_USAGE, { events: [event(key), unknown] }, gateway);
      expect(answer.data?.recordUsage).toMatchObject({ accepted: 1, rejected: [{ index: 1, code: "UNKNOWN_KEY" }] });
      recorded++;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    const after = await scrape();
    const delta = (name: string, labels: Record<string, string> = {}) => value(after, name, labels) - value(before, name, labels);
    expect(delta("usage_events_accepted_total")).toBe(recorded);
    expect(delta("usage_events_rejected_total", { code: "UNKNOWN_KEY" })).toBe(recorded);
    expect(delta("pubsub_events_published_total", { channel: "usage:created" })).toBe(recorded);
    expect(delta("graphql_stream_results_total", { operation: "Watch" })).toBeGreaterThanOrEqual(1);
    // Operations over the WebSocket are counted as those over HTTP are.
    expect(delta("graphql_operations_total", { operation: "Watch", type: "subscription", outcome: "ok" })).toBe(1);
    expect(delta("graphql_operations_total", { operation: "LiveDocs", type: "query", outcome: "ok" })).toBe(1);

    stream.close();
    live.close();
    await scrapeUntil(
      (samples) => value(samples, "graphql_subscriptions_active") === 0 && value(samples, "graphql_live_queries_active") === 0,
    );
  });

  it("counts refused sign-in attempts", async () => {
    const before = await scrape();
    const login = () =>
      server.gql(`mutation ($i: LoginInput!) { login(input: $i) { token } }`, { i: { login: admin.username, password: "not the password at all" } });
    for (let attempt = 0; attempt < LOGIN_FAILURES_PER_ACCOUNT; attempt++) await login();
    expect((await login()).errors?.[0]?.extensions?.code).toBe("RATE_LIMITED");
    const after = await scrape();
    expect(value(after, "sign_in_throttled_total", { attempt: "login" }) - value(before, "sign_in_throttled_total", { attempt: "login" })).toBe(1);
  });

  it("reports the pub/sub's state and the database pool", async () => {
    const state = TEST_REDIS_URL ? "connected" : "memory";
    const samples = await scrapeUntil((found) => value(found, "pubsub_state", { state }) === 1);
    expect(value(samples, "pubsub_state", { state: "disconnected" })).toBe(0);
    expect(value(samples, "database_pool_connections", { state: "max" })).toBeGreaterThanOrEqual(1);
    expect(
      value(samples, "database_pool_connections", { state: "busy" }) + value(samples, "database_pool_connections", { state: "idle" }),
    ).toBeGreaterThanOrEqual(1);
    expect(value(samples, "database_pool_connections", { state: "waiting" })).toBe(0);
  });
});

describe("with METRICS_PORT", () => {
  it("serves /metrics on that port only, from a registry of the server's own", async () => {
    const other = await startTestServer({ env: { METRICS_PORT: "0" } });
    try {
      expect(other.app.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      expect(other.app.metricsUrl).not.toContain(new URL(other.url).port);
      expect((await fetch(other.url.replace(/\/graphql$/, "/metrics"))).status).toBe(404);
      await other.gql(`query OnlyHere { __typename }`);
      const samples = await scrape(other.app.metricsUrl!, null);
      expect(value(samples, "graphql_operations_total", { operation: "OnlyHere", type: "query", outcome: "ok" })).toBe(1);
      // The first server's operations are not counted by this one, nor this one's by it.
      expect(value(samples, "graphql_operations_total", { operation: "Probe", type: "query", outcome: "ok" })).toBe(0);
      expect(value(await scrape(), "graphql_operations_total", { operation: "OnlyHere", type: "query", outcome: "ok" })).toBe(0);
    } finally {
      await other.close();
    }
  });
});
