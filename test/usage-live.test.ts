import { randomBytes } from "node:crypto";
import { once } from "node:events";
import type { Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { createTestDatabase, TEST_DATABASE_URL, TEST_REDIS_URL } from "./support/database.js";
import { sharedSecrets, startTestServer, type TestServer } from "./support/server.js";
import { sseStream, triggerUntilReceived, wsStream, type ResultStream } from "./support/streams.js";
import { createGatewayCredential, createKey, createPartner, event, RECORD_USAGE, type TestKey } from "./support/usage.js";
import { createUser, TEST_PASSWORD, type SignedInUser } from "./support/users.js";

const CREATED = /* GraphQL */ `
  subscription Created($partnerId: ID, $apiKeyId: ID) {
    usageLogCreated(partnerId: $partnerId, apiKeyId: $apiKeyId) { id endpoint statusCode partner { id } apiKey { id } }
  }
`;
const LIVE_SUMMARY = /* GraphQL */ `
  query LiveSummary($partnerId: ID) @live {
    usageSummary(partnerId: $partnerId) { totalRequests }
  }
`;

type Created = { usageLogCreated: { partner: { id: string }; endpoint: string } };
const partnerOf = (stream: ResultStream) =>
  stream.received.map((result) => (result.data as Created | undefined)?.usageLogCreated.partner.id);

let server: TestServer;
let gateway: string;
let partnerA: Awaited<ReturnType<typeof createPartner>>;
let partnerB: Awaited<ReturnType<typeof createPartner>>;
let keyA: TestKey;
let keyB: TestKey;
let developerA: SignedInUser;
let support: SignedInUser;

beforeAll(async () => {
  server = await startTestServer();
  gateway = await createGatewayCredential(server);
  partnerA = await createPartner(server, "Live A");
  partnerB = await createPartner(server, "Live B");
  keyA = await createKey(server, partnerA.id, partnerA.ownerId);
  keyB = await createKey(server, partnerB.id, partnerB.ownerId);
  developerA = await createUser(server, "live-dev-a", "developer", partnerA.id);
  support = await createUser(server, "live-support", "support");
});
afterAll(async () => {
  await server?.close();
});

/** One batch with an event of B first, then one of A. */
const recordBThenA = (target: TestServer = server, token = gateway) =>
  target.gql(RECORD_USAGE, { events: [event(keyB, { endpoint: "/b" }), event(keyA, { endpoint: "/a" })] }, token);

describe("usageLogCreated", () => {
  it("over graphql-ws, delivers partner A's events to A's developer and never B's", async () => {
    const client = server.ws({ connectionParams: { authorization: `Bearer ${developerA.token}` } });
    const stream = wsStream(client, CREATED);
    const first = await triggerUntilReceived(stream, () => recordBThenA());
    expect(first?.errors).toBeUndefined();
    await recordBThenA();
    // The batch's A event is published after its B event, so once it arrives B's would have too.
    while (stream.received.length < 2) await stream.next();
    expect(new Set(partnerOf(stream))).toEqual(new Set([partnerA.globalId]));
    stream.close();
  });

  it("over SSE, delivers to staff every partner's events, and to a filtered subscriber only its key's", async () => {
    const all = sseStream(server.url, CREATED, {}, support.token);
    const onlyB = sseStream(server.url, CREATED, { apiKeyId: keyB.globalId }, support.token);
    await triggerUntilReceived(all, () => recordBThenA());
    await triggerUntilReceived(onlyB, () => recordBThenA());
    await recordBThenA();
    while (!partnerOf(all).includes(partnerA.globalId) || partnerOf(all).lastIndexOf(partnerA.globalId) < partnerOf(all).length - 1) {
      await all.next();
    }
    expect(new Set(partnerOf(all))).toEqual(new Set([partnerA.globalId, partnerB.globalId]));
    expect(new Set(partnerOf(onlyB))).toEqual(new Set([partnerB.globalId]));
    all.close();
    onlyB.close();
  });

  it("refuses at subscribe time a partner or key the viewer may not read, over SSE and graphql-ws", async () => {
    const noPartner = await createUser(server, "live-loner", "developer");
    const cases: Array<[string, Record<string, unknown>, string | undefined]> = [
      ["other partner", { partnerId: partnerB.globalId }, developerA.token],
      ["other partner's key", { apiKeyId: keyB.globalId }, developerA.token],
      ["no partner", {}, noPartner.token],
      ["signed out", {}, undefined],
    ];
    for (const [label, variables, token] of cases) {
      const sse = sseStream(server.url, CREATED, variables, token);
      const answer = await sse.next();
      expect(answer?.errors?.[0]?.extensions?.code, label).toBe(token ? "FORBIDDEN" : "UNAUTHENTICATED");
      sse.close();
    }
    const client = server.ws({ connectionParams: { authorization: `Bearer ${developerA.token}` } });
    const ws = wsStream(client, CREATED, { partnerId: partnerB.globalId });
    const reason = await ws.ended;
    const errors = (Array.isArray(reason) ? reason : (ws.received[0]?.errors ?? [])) as Array<{ extensions?: { code?: string } }>;
    expect(errors[0]?.extensions?.code).toBe("FORBIDDEN");
  });

  it("ends a session's SSE subscription and @live query when it logs out", async () => {
    const login = await server.gql(
      `mutation ($input: LoginInput!) { login(input: $input) { token } }`,
      { input: { login: "live-dev-a", password: TEST_PASSWORD } },
    );
    const token: string = login.data!.login.token;
    const stream = sseStream(server.url, CREATED, {}, token);
    const live = sseStream(server.url, LIVE_SUMMARY, {}, token);
    await triggerUntilReceived(stream, () => recordBThenA());
    expect((await live.next())?.data).toBeTruthy();
    await server.gql(`mutation { logout }`, {}, token);
    expect(await stream.ended).toBe("complete");
    expect(await live.ended).toBe("complete");
  });

  it("keeps delivering to others while one subscriber stops reading", async () => {
    // A raw graphql-ws client whose socket stops taking data off the wire once subscribed.
    const stalled = new WebSocket(server.url.replace(/^http/, "ws"), "graphql-transport-ws");
    const messages: Array<{ type: string }> = [];
    const arrived = () => new Promise<void>((resolve) => stalled.once("message", () => resolve()));
    stalled.on("message", (data) => messages.push(JSON.parse(String(data)) as { type: string }));
    await once(stalled, "open");
    stalled.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${support.token}` } }));
    await arrived();
    expect(messages[0]?.type).toBe("connection_ack");
    stalled.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query: CREATED } }));
    for (let i = 0; i < 200 && !messages.some((m) => m.type === "next"); i++) {
      await recordBThenA();
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(messages.some((m) => m.type === "next")).toBe(true);
    (stalled as unknown as { _socket: Socket })._socket.pause();

    const reader = server.ws({ connectionParams: { authorization: `Bearer ${support.token}` } });
    const stream = wsStream(reader, `subscription ($p: ID) { usageLogCreated(partnerId: $p) { id endpoint } }`, {
      p: partnerA.globalId,
    });
    await triggerUntilReceived(stream, () => recordBThenA());
    await recordBThenA();
    while (stream.received.length < 2) await stream.next();
    const before = stream.received.length;
    for (let i = 0; i < 3; i++) {
      const batch = Array.from({ length: 300 }, (_, n) => event(keyA, { endpoint: `/flood/${i}/${n}` }));
      await server.gql(RECORD_USAGE, { events: batch }, gateway);
    }
    while (stream.received.length < before + 900) await stream.next();
    expect(stream.received.length).toBe(before + 900);
    stream.close();
    stalled.terminate();
  });
});

describe("live queries", () => {
  it("sends a @live usageSummary again after ingest, over graphql-ws and SSE", async () => {
    const client = server.ws({ connectionParams: { authorization: `Bearer ${developerA.token}` } });
    const overWs = wsStream(client, LIVE_SUMMARY, { partnerId: partnerA.globalId });
    const overSse = sseStream(server.url, LIVE_SUMMARY, { partnerId: partnerA.globalId }, developerA.token);
    const total = (result: { data?: unknown } | null) =>
      (result?.data as { usageSummary: { totalRequests: number } } | undefined)?.usageSummary.totalRequests;
    const initialWs = total(await overWs.next());
    const initialSse = total(await overSse.next());
    expect(typeof initialWs).toBe("number");
    await server.gql(RECORD_USAGE, { events: [event(keyA, { requestCount: 5 })] }, gateway);
    let ws = total(await overWs.next());
    while (ws !== undefined && ws < initialWs! + 5) ws = total(await overWs.next());
    let sse = total(await overSse.next());
    while (sse !== undefined && sse < initialSse! + 5) sse = total(await overSse.next());
    expect(ws).toBe(initialWs! + 5);
    expect(sse).toBe(initialSse! + 5);
    overWs.close();
    overSse.close();
  });
});

describe.skipIf(!TEST_REDIS_URL || !TEST_DATABASE_URL)("two instances over Redis", () => {
  it("delivers an event recorded on instance 1 to a subscriber and a live query on instance 2", async () => {
    const database = await createTestDatabase();
    const env = { ...sharedSecrets(), REDIS_CHANNEL_PREFIX: `pp-test-${randomBytes(6).toString("hex")}:` };
    const one = await startTestServer({ database, redis: true, env });
    const two = await startTestServer({ database, redis: true, env });
    try {
      const token = await createGatewayCredential(one);
      const partner = await createPartner(one, "Redis A");
      const key = await createKey(one, partner.id, partner.ownerId);
      const developer = await createUser(two, "redis-dev", "developer", partner.id);
      const client = two.ws({ connectionParams: { authorization: `Bearer ${developer.token}` } });
      const subscription = wsStream(client, CREATED);
      const live = wsStream(client, LIVE_SUMMARY);
      const initial = (await live.next())?.data as { usageSummary: { totalRequests: number } };
      const first = await triggerUntilReceived(subscription, () =>
        one.gql(RECORD_USAGE, { events: [event(key, { endpoint: "/redis" })] }, token),
      );
      expect((first?.data as Created).usageLogCreated).toMatchObject({ endpoint: "/redis", partner: { id: partner.globalId } });
      let total = initial.usageSummary.totalRequests;
      while (total === initial.usageSummary.totalRequests) {
        total = ((await live.next())?.data as { usageSummary: { totalRequests: number } }).usageSummary.totalRequests;
      }
      expect(total).toBeGreaterThan(initial.usageSummary.totalRequests);
      subscription.close();
      live.close();
    } finally {
      await two.close();
      await one.close();
      await database.drop();
    }
  });
});
