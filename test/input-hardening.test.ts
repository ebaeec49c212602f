// Attacks on the server's bounds and input handling: cost limits dodged with variables, aliases
// and fragments; bodies and WebSocket messages over the size limit; input built to break the code
// that reads it; cross-origin callers. Every refusal carries a stable extensions.code.
import { randomUUID } from "node:crypto";
import { request as httpRequest } from "node:http";
import { once } from "node:events";
import { connect } from "node:net";
import { encodeGlobalID } from "@pothos/plugin-relay";
import { getIntrospectionQuery } from "graphql";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import WebSocket from "ws";
import { MAX_REQUEST_BYTES } from "../src/app.js";
import { ConfigError, loadConfig } from "../src/config.js";
import { QUERY_LIMITS } from "../src/http/plugins/query-limits.js";
import { MAX_INPUT_DEPTH } from "../src/http/plugins/malformed-input.js";
import { captureLogs, LEVELS } from "./support/logs.js";
import { errorCodes, startTestServer, type GraphQLResponse, type TestServer } from "./support/server.js";
import { sseStream, wsStream } from "./support/streams.js";
import { createUser, type SignedInUser } from "./support/users.js";

const logs = captureLogs();
/** Lines at warn level or above written since `from` (a count of lines). */
const severeSince = (from: number) => logs.lines().slice(from).filter((line) => line.level >= LEVELS.warn);

let server: TestServer;
let admin: SignedInUser;
let partnerGid: string;

beforeAll(async () => {
  server = await startTestServer({ logger: logs.logger });
  admin = await createUser(server, "hardening-admin", "admin");
  const partner = await server.app.services.prisma.partnerOrganization.create({ data: { name: "Hardening Ltd" } });
  partnerGid = encodeGlobalID("PartnerOrganization", partner.id);
});
afterAll(async () => {
  await server?.close();
});

const ACCEPTS = ["application/json", "application/graphql-response+json"] as const;

/** POSTs a raw JSON body (so that it may hold what JSON.stringify cannot build) and reads the answer. */
async function postRaw(body: string, options: { accept?: string; token?: string } = {}) {
  const response = await fetch(server.url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: options.accept ?? "application/graphql-response+json",
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
    },
    body,
  });
  return { status: response.status, ...((await response.json()) as GraphQLResponse) };
}

const post = (query: string, variables: Record<string, unknown> = {}, accept?: string) =>
  postRaw(JSON.stringify({ query, variables }), { accept, token: admin.token });

/** The first result of an operation over graphql-ws: a `next`, or the errors of an `error` message. */
async function overWebSocket(query: string, variables: Record<string, unknown> = {}): Promise<GraphQLResponse> {
  const client = server.ws({ connectionParams: { authorization: `Bearer ${admin.token}` } });
  const stream = wsStream(client, query, variables);
  const first = await stream.next();
  stream.close();
  if (first) return first;
  const reason = await stream.ended;
  return { errors: Array.isArray(reason) ? reason : [{ message: String(reason) }] };
}

async function overSse(query: string, variables: Record<string, unknown> = {}): Promise<GraphQLResponse | null> {
  const stream = sseStream(server.url, query, variables, admin.token);
  const first = await stream.next();
  stream.close();
  return first;
}

const limitOf = (response: GraphQLResponse) => response.errors?.map((error) => error.extensions?.limit);

function expectCostRefused(response: GraphQLResponse) {
  expect(errorCodes(response)).toEqual(["GRAPHQL_VALIDATION_FAILED"]);
  expect(limitOf(response)).toEqual(["cost"]);
  expect(response.data ?? null).toBeNull();
}

// Three connections deep: up to n × n × n rows.
const THREE_DEEP = /* GraphQL */ `
  query ($n: Int) {
    partners(first: $n) { edges { node { apiKeys(first: $n) { edges { node {
      usageLogs(first: $n) { edges { node { id } } }
    } } } } } }
  }
`;
const THREE_DEEP_LAST = THREE_DEEP.replaceAll("first:", "last:");
const THREE_DEEP_NAMED_FRAGMENTS = /* GraphQL */ `
  query ($n: Int) { partners(first: $n) { ...Page } }
  fragment Page on QueryPartnersConnection { edges { node { ...Keys } } }
  fragment Keys on PartnerOrganization {
    apiKeys(first: $n) { edges { node { usageLogs(first: $n) { edges { node { id } } } } } }
  }
`;
const THREE_DEEP_INLINE_FRAGMENTS = /* GraphQL */ `
  query ($n: Int) {
    ... on Query { partners(first: $n) { edges { node { ... on PartnerOrganization {
      apiKeys(first: $n) { edges { node { ... on APIKey { usageLogs(first: $n) { edges { node { id } } } } } } }
    } } } } }
  }
`;
/** The operation with `$n` written out as a literal. */
const withLiteral = (query: string, n: number) => query.replace("($n: Int)", "").replaceAll("$n", String(n));
const TWO_DEEP_FIELD = `partners(first: $n) { edges { node { apiKeys(first: $n) { edges { node { id } } } } } }`;
const aliasesOfTwoDeep = (count: number) =>
  `query ($n: Int) { ${Array.from({ length: count }, (_, i) => `a${i}: ${TWO_DEEP_FIELD}`).join(" ")} }`;

describe("the cost of an operation, with its variables", () => {
  it.each([
    ["first: $n", THREE_DEEP],
    ["last: $n", THREE_DEEP_LAST],
    ["named fragments", THREE_DEEP_NAMED_FRAGMENTS],
    ["inline fragments", THREE_DEEP_INLINE_FRAGMENTS],
  ])("refuses three nested pages of 25 through %s over HTTP, and runs pages of 5", async (_label, query) => {
    expectCostRefused(await post(query, { n: 25 }));
    const small = await post(query, { n: 5 });
    expect(small.errors).toBeUndefined();
    expect(small.data).toEqual({ partners: { edges: [{ node: { apiKeys: { edges: [] } } }] } });
  });

  it("counts a page asked for without a size as the server's default page, and a larger one as 100", async () => {
    expectCostRefused(await post(THREE_DEEP)); // $n absent: 20 × 20 × 20 rows
    expectCostRefused(await post(withLiteral(THREE_DEEP, 100)));
    expectCostRefused(await post(THREE_DEEP, { n: 1_000_000 }));
  });

  it("adds up aliases: 30 copies of an allowed operation are refused together", async () => {
    expect((await post(aliasesOfTwoDeep(1), { n: 25 })).errors).toBeUndefined();
    expect((await post(aliasesOfTwoDeep(QUERY_LIMITS.aliases), { n: 2 })).errors).toBeUndefined();
    expectCostRefused(await post(aliasesOfTwoDeep(QUERY_LIMITS.aliases), { n: 25 }));
  });

  it("counts nodes(ids:) by the number of ids, and takes at most 100 of them", async () => {
    const ids = (count: number) =>
      Array.from({ length: count }, () => encodeGlobalID("PartnerOrganization", randomUUID()));
    const NODES = `query ($ids: [ID!]!, $n: Int) { nodes(ids: $ids) { ... on PartnerOrganization {
      apiKeys(first: $n) { edges { node { usageLogs(first: $n) { edges { node { id } } } } } } } } }`;
    const hundred = await post(NODES, { ids: ids(100), n: 1 });
    expect(hundred.errors).toBeUndefined();
    expect(hundred.data!.nodes).toHaveLength(100);
    expectCostRefused(await post(NODES, { ids: ids(100), n: 25 }));

    const tooMany = await post(`query ($ids: [ID!]!) { nodes(ids: $ids) { id } }`, { ids: ids(101) });
    expect(errorCodes(tooMany)).toEqual(["BAD_USER_INPUT"]);
    const literal = await post(`{ nodes(ids: [${ids(101).map((id) => `"${id}"`).join(",")}]) { id } }`);
    expect(errorCodes(literal)).toEqual(["BAD_USER_INPUT"]);
  });

  it("applies over graphql-ws to queries, @live queries and subscriptions, and over SSE", async () => {
    expectCostRefused(await overWebSocket(THREE_DEEP, { n: 25 }));
    expectCostRefused(await overWebSocket(THREE_DEEP_NAMED_FRAGMENTS.replace("query ($n: Int)", "query ($n: Int) @live"), { n: 25 }));
    expect((await overWebSocket(THREE_DEEP, { n: 5 })).errors).toBeUndefined();

    // Each event would carry two nested pages of usage logs.
    const SUBSCRIPTION = /* GraphQL */ `
      subscription ($n: Int) { usageLogCreated { apiKey { usageLogs(first: $n) { edges { node {
        apiKey { usageLogs(first: $n) { edges { node { id } } } }
      } } } } } }
    `;
    expectCostRefused(await overWebSocket(SUBSCRIPTION, { n: 100 }));
    expectCostRefused((await overSse(SUBSCRIPTION, { n: 100 }))!);
    expectCostRefused((await overSse(THREE_DEEP, { n: 25 }))!);
  });

  it("keeps real screens and introspection allowed", async () => {
    const dashboard = await post(
      `{ viewer { username partner { name } }
         partners(first: 100) { totalCount edges { node { name status members(first: 10) { totalCount edges { node { username email } } }
           apiKeys(first: 10) { edges { node { keyName scopes isActive lastUsedAt } } } } } }
         usageSummary { totalRequests errorRequests series { bucketStart requestCount } byEndpoint { endpoint requestCount } } }`,
    );
    expect(dashboard.errors).toBeUndefined();
    const live = await overWebSocket(`query @live { usageSummary { totalRequests } }`);
    expect(live.errors).toBeUndefined();
    const introspection = await post(getIntrospectionQuery({ descriptions: true, inputValueDeprecation: true }));
    expect(introspection.errors).toBeUndefined();
  });

  it("refuses introspection that re-enters a type's fields, which multiplies at every level", async () => {
    const query = `{ __schema { types { fields { type { fields { type { fields { type { fields { name } } } } } } } } } }`;
    for (const accept of ACCEPTS) {
      const circular = await post(query, {}, accept);
      expect(circular.status).toBe(400);
      expect(limitOf(circular)).toEqual(["depth"]);
    }
  });
});

describe("an operation over a bound", () => {
  const passwordCheck = (alias: string) => `${alias}: login(input: { login: "x", password: "not-the-password" }) { token }`;
  const operations: Record<string, string> = {
    depth: `{ viewer { partner { members { edges { node { partner { members { edges { node { partner { members { edges { node { id } } } } } } } } } } } } } }`,
    aliases: `{ ${Array.from({ length: QUERY_LIMITS.aliases + 1 }, (_, i) => `a${i}: viewer { id }`).join(" ")} }`,
    directives: `{ ${Array.from({ length: QUERY_LIMITS.directives + 1 }, (_, i) => `d${i}: __typename @include(if: true)`).join(" ")} }`,
    tokens: `{ ${"__typename ".repeat(QUERY_LIMITS.tokens)} }`,
    cost: withLiteral(THREE_DEEP, 100),
    passwordChecks: `mutation { ${passwordCheck("a")} ${passwordCheck("b")} }`,
  };

  it.each(Object.keys(operations).flatMap((limit) => ACCEPTS.map((accept) => [limit, accept] as const)))(
    "answers HTTP 400 with GRAPHQL_VALIDATION_FAILED for %s, accepting %s",
    async (limit, accept) => {
      const response = await postRaw(JSON.stringify({ query: operations[limit] }), { accept });
      expect(response.status).toBe(400);
      expect(errorCodes(response)).toContain("GRAPHQL_VALIDATION_FAILED");
      expect(limitOf(response)).toContain(limit);
    },
  );
});

/** Writes `bytes` of a JSON body in chunks (no Content-Length) and answers the first response. */
function sendChunked(options: { bytes: number; end: boolean; method?: string; contentType?: string; accept?: string }) {
  return new Promise<{ status: number; body: string; bytesSent: number }>((resolve, reject) => {
    const request = httpRequest(server.url, {
      method: options.method ?? "POST",
      headers: { "content-type": options.contentType ?? "application/json", accept: options.accept ?? "application/json" },
    });
    let bytesSent = 0;
    let answered = false;
    request.on("response", (response) => {
      answered = true;
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () => {
        resolve({ status: response.statusCode!, body, bytesSent });
        request.destroy();
      });
    });
    // The server may close the connection while the rest is still being written.
    request.on("error", (error) => {
      if (!answered) reject(error);
    });
    const chunk = Buffer.alloc(64 * 1024, "a");
    const write = () => {
      while (!answered && bytesSent < options.bytes) {
        bytesSent += chunk.length;
        if (!request.write(chunk)) return void request.once("drain", write);
      }
      if (options.end && !answered) request.end();
    };
    request.write('{"query":"{ __typename }","variables":{"padding":"');
    write();
  });
}

describe("a request body over 1 MiB", () => {
  // The server runs in this process: a fault in answering 413 would surface here, not as a status.
  const processErrors: unknown[] = [];
  const record = (error: unknown) => processErrors.push(error);
  beforeAll(() => void process.on("uncaughtException", record).on("unhandledRejection", record));
  afterAll(async () => {
    process.off("uncaughtException", record).off("unhandledRejection", record);
  });

  it.each([
    ["application/json", "application/json"],
    ["application/graphql", "application/json"],
    ["application/x-www-form-urlencoded", "application/json"],
    ["multipart/form-data; boundary=x", "application/json"],
    ["application/json", "text/event-stream"],
  ])("sent chunked as %s (accepting %s) is answered 413", async (contentType, accept) => {
    const answer = await sendChunked({ bytes: 3 * 1024 * 1024, end: true, contentType, accept });
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body).errors[0].extensions.code).toBe("BAD_USER_INPUT");
  });

  it.each(["PUT", "PATCH"])("sent chunked with %s is answered 413", async (method) => {
    expect((await sendChunked({ bytes: 3 * 1024 * 1024, end: true, method })).status).toBe(413);
  });

  it("is answered as soon as the limit is passed, while the client is still sending", async () => {
    // The body never ends: a server that waited for the whole of it would never answer.
    const answer = await sendChunked({ bytes: MAX_REQUEST_BYTES + 64 * 1024, end: false });
    expect(answer.status).toBe(413);
    expect(answer.bytesSent).toBeLessThan(3 * 1024 * 1024);
  });

  it("does not get through under a Content-Length that lies about its size", async () => {
    const body = `{"query":"{ __typename }","variables":{"padding":"${"a".repeat(3 * 1024 * 1024)}"}}`;
    const raw = (headers: string) =>
      new Promise<string>((resolve) => {
        const socket = connect(Number(new URL(server.url).port), "127.0.0.1");
        let received = "";
        socket.setEncoding("utf8");
        socket.on("data", (data: string) => (received += data));
        socket.on("error", () => {});
        socket.on("close", () => resolve(received));
        socket.write(`POST /graphql HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n${headers}\r\n`);
        socket.write(headers.includes("chunked") ? `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n` : body);
        socket.end();
      });
    for (const headers of ["Content-Length: 20\r\n", "Content-Length: 20\r\nTransfer-Encoding: chunked\r\n"]) {
      const received = await raw(headers);
      const statuses = [...received.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((match) => Number(match[1]));
      expect(statuses.length).toBeGreaterThan(0);
      for (const status of statuses) expect(status).toBeGreaterThanOrEqual(400);
      expect(received).not.toContain('"__typename"');
    }
    expect((await post(`{ __typename }`)).data).toEqual({ __typename: "Query" });
  });

  it("from a client that goes before sending all of it is dropped, and the server keeps serving", async () => {
    const requestId = `gone-${randomUUID()}`;
    const socket = connect(Number(new URL(server.url).port), "127.0.0.1");
    socket.on("error", () => {});
    await once(socket, "connect");
    // A third of the body it announces, then the client's end of the connection closes.
    socket.end(
      `POST /graphql HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 300\r\n` +
        `X-Request-Id: ${requestId}\r\n\r\n{"query":"{ __typename }","variables":{"padding":"${"a".repeat(50)}`,
    );
    await vi.waitFor(() => expect(logs.lines().find((line) => line.requestId === requestId && line.msg === "request")).toMatchObject({ aborted: true }));
    socket.destroy();
    expect((await post(`{ __typename }`)).data).toEqual({ __typename: "Query" });
    expect(processErrors).toEqual([]);
  });

  it("never faults the server process while refusing", async () => {
    for (let i = 0; i < 3; i++) expect((await sendChunked({ bytes: 2 * MAX_REQUEST_BYTES, end: true })).status).toBe(413);
    // Whatever the refusals leave to run (closing their sockets) has run once a later request is answered.
    expect((await post(`{ __typename }`)).data).toEqual({ __typename: "Query" });
    await new Promise((resolve) => setImmediate(resolve));
    expect(processErrors).toEqual([]);
  });

  it("over a WebSocket, closes that socket with 1009 and the server keeps serving", async () => {
    const socket = new WebSocket(server.url.replace(/^http/, "ws"), "graphql-transport-ws");
    await new Promise((resolve) => socket.once("open", resolve));
    const closed = new Promise<number>((resolve) => socket.once("close", (code) => resolve(code)));
    socket.send(JSON.stringify({ type: "connection_init", payload: { padding: "a".repeat(MAX_REQUEST_BYTES) } }));
    expect(await closed).toBe(1009);
    expect((await overWebSocket(`{ __typename }`)).data).toEqual({ __typename: "Query" });
    expect((await post(`{ __typename }`)).data).toEqual({ __typename: "Query" });
  });
});

const deepArray = (levels: number) => `${"[".repeat(levels)}"x"${"]".repeat(levels)}`;
const deepObject = (levels: number) => `${'{"a":'.repeat(levels)}"x"${"}".repeat(levels)}`;

/** Every answer to client input: never a 500, never masked, every error with a stable code. */
function expectClientError(response: GraphQLResponse & { status?: number }, codes: string[] = ["BAD_USER_INPUT"]) {
  expect(response.status).not.toBe(500);
  expect(response.errors?.length).toBeGreaterThan(0);
  for (const error of response.errors ?? []) {
    expect(codes).toContain(error.extensions?.code);
    expect(error.message).not.toBe("Unexpected error.");
  }
}

describe("malformed input", () => {
  const SEARCH = `query ($s: String) { partners(search: $s) { totalCount } }`;
  const CREATE_PARTNER = `mutation ($input: CreatePartnerInput!) { createPartner(input: $input) { partner { id } } }`;

  it("nested 50,000 levels deep in variables is BAD_USER_INPUT, over HTTP and graphql-ws", async () => {
    const variables = [
      `{"s":${deepArray(50_000)}}`,
      `{"s":${deepObject(50_000)}}`,
      `{"input":{"name":${deepObject(50_000)}}}`,
    ];
    for (const [i, raw] of variables.entries()) {
      const query = i < 2 ? SEARCH : CREATE_PARTNER;
      const response = await postRaw(`{"query":${JSON.stringify(query)},"variables":${raw}}`, { token: admin.token });
      expectClientError(response);
    }
    const shallow = await post(SEARCH, { s: JSON.parse(deepArray(MAX_INPUT_DEPTH - 2)) });
    expectClientError(shallow); // not a String, so refused by GraphQL itself, but not for depth
    expect(shallow.errors![0]!.message).not.toMatch(/nested/);

    const socket = new WebSocket(server.url.replace(/^http/, "ws"), "graphql-transport-ws");
    const messages: Array<{ type: string; payload?: unknown }> = [];
    const next = () =>
      new Promise<{ type: string; payload?: unknown }>((resolve) => {
        const take = () => (messages.length ? resolve(messages.shift()!) : socket.once("message", take));
        take();
      });
    socket.on("message", (data) => messages.push(JSON.parse(String(data))));
    await new Promise((resolve) => socket.once("open", resolve));
    socket.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${admin.token}` } }));
    expect((await next()).type).toBe("connection_ack");
    socket.send(`{"id":"1","type":"subscribe","payload":{"query":${JSON.stringify(SEARCH)},"variables":{"s":${deepArray(50_000)}}}}`);
    const answer = await next();
    const errors = (answer.type === "next" ? (answer.payload as GraphQLResponse).errors : answer.payload) as GraphQLResponse["errors"];
    expectClientError({ errors });
    socket.close();
  });

  it("with a lone surrogate in a variable is BAD_USER_INPUT, and nothing is stored", async () => {
    for (const s of ["\uD800", "a\uDC00b", "\uDBFF"]) expectClientError(await post(SEARCH, { s }));
    expect((await post(SEARCH, { s: "😀" })).errors).toBeUndefined();
    const created = await post(
      `mutation ($input: CreateDeveloperDocInput!) { createDeveloperDoc(input: $input) { id } }`,
      { input: { title: "Lone \uD83D surrogate", slug: "lone-surrogate", content: "text", apiVersion: "v1" } },
    );
    expectClientError(created);
    expect(await server.app.services.prisma.developerDoc.count({ where: { slug: "lone-surrogate" } })).toBe(0);
    // In the operation's own text, GraphQL forbids it: a syntax error.
    expectClientError(await post(`{ partners(search: "\\uD800") { totalCount } }`), ["GRAPHQL_PARSE_FAILED"]);
  });

  const VARIABLE_CASES: Array<[string, string, Record<string, unknown>]> = [
    ["a deep array", SEARCH, { s: JSON.parse(deepArray(1000)) }],
    ["a deep object", SEARCH, { s: JSON.parse(deepObject(1000)) }],
    ["a huge string", SEARCH, { s: "x".repeat(900 * 1024) }],
    ["an Int over 2^31", `query ($n: Int) { partners(first: $n) { totalCount } }`, { n: 2 ** 31 }],
    ["an Int of 1e308", `query ($n: Int) { partners(first: $n) { totalCount } }`, { n: 1e308 }],
    ["a fractional Int", `query ($n: Int) { partners(first: $n) { totalCount } }`, { n: 1.5 }],
    ["a negative page", `query ($n: Int) { usageLogs(first: $n) { edges { cursor } } }`, { n: -1 }],
    ["a wrong enum value", `query ($s: PartnerStatus) { partners(status: $s) { totalCount } }`, { s: "deleted" }],
    ["a list for a String", SEARCH, { s: ["x"] }],
    ["null for a required input", CREATE_PARTNER, { input: null }],
    ["an unknown input field", CREATE_PARTNER, { input: { name: "x", owner: "y" } }],
    ["a malformed DateTime", `query ($t: DateTime) { usageSummary(to: $t) { totalRequests } }`, { t: "yesterday" }],
    ["a status code out of range", `query ($c: Int) { usageLogs(filter: { statusCode: $c }) { edges { cursor } } }`, { c: 2 ** 31 }],
    ["a huge key name", `mutation ($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret } }`, {
      input: { partnerId: "PARTNER", keyName: "k".repeat(900 * 1024), scopes: ["API_READ"] },
    }],
  ];
  it.each(VARIABLE_CASES)("as variables, %s is answered with a stable code", async (_label, query, variables) => {
    const filled = JSON.parse(JSON.stringify(variables).replace('"PARTNER"', JSON.stringify(partnerGid)));
    expectClientError(await post(query, filled));
  });

  const LITERAL_CASES: Array<[string, string]> = [
    ["a deep list", `{ partners(search: ${deepArray(1000)}) { totalCount } }`],
    ["a deep object", `{ partners(search: ${deepObject(1000).replaceAll('"a"', "a")}) { totalCount } }`],
    ["a huge string", `{ partners(search: "${"x".repeat(900 * 1024)}") { totalCount } }`],
    ["an Int over 2^31", `{ partners(first: 2147483648) { totalCount } }`],
    ["an Int of 1e308", `{ partners(first: 1e308) { totalCount } }`],
    ["a wrong enum value", `{ partners(status: deleted) { totalCount } }`],
    ["a malformed DateTime", `{ usageSummary(to: "yesterday") { totalRequests } }`],
    ["an unterminated string", `{ partners(search: "x) { totalCount } }`],
  ];
  it.each(LITERAL_CASES)("as literals, %s is answered with a stable code", async (_label, query) => {
    expectClientError(await post(query), ["GRAPHQL_VALIDATION_FAILED", "GRAPHQL_PARSE_FAILED", "BAD_USER_INPUT"]);
  });
});

describe("a client's bad global id", () => {
  const cases = (userGid: string): Array<[string, string, Record<string, unknown>]> => [
    ["not base64", `{ partner(id: "not-base64!") { id } }`, {}],
    ["of another type", `query ($id: ID!) { partner(id: $id) { id } }`, { id: userGid }],
    ["truncated", `query ($id: ID!) { apiKey(id: $id) { id } }`, { id: encodeGlobalID("APIKey", randomUUID()).slice(0, 9) }],
    ["without a type", `query ($id: ID!) { partner(id: $id) { id } }`, { id: Buffer.from("nocolon").toString("base64") }],
    ["in an input", `mutation ($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret } }`, {
      input: { partnerId: "%%%", keyName: "k", scopes: ["API_READ"] },
    }],
    ["in a mutation argument", `mutation ($id: ID!) { revokeApiKey(id: $id) { id } }`, { id: userGid }],
    ["in a subscription", `subscription ($id: ID) { usageLogCreated(partnerId: $id) { id } }`, { id: "not-base64!" }],
  ];

  it("is BAD_USER_INPUT and is not logged as a server error, while an unexpected error still is", async () => {
    const from = logs.lines().length;
    for (const [label, query, variables] of cases(admin.globalId)) {
      const response = query.startsWith("subscription") ? await overWebSocket(query, variables) : await post(query, variables);
      expect(errorCodes(response), label).toEqual(["BAD_USER_INPUT"]);
    }
    expect(severeSince(from)).toEqual([]);

    // A real fault (a table gone from under the server) is masked, and logged with its cause.
    const prisma = server.app.services.prisma;
    await prisma.$executeRawUnsafe(`ALTER TABLE "DeveloperDoc" RENAME TO "DeveloperDocAway"`);
    try {
      const response = await post(`{ developerDocs { totalCount } }`);
      expect(response.errors?.map((error) => error.message)).toEqual(["Unexpected error."]);
    } finally {
      await prisma.$executeRawUnsafe(`ALTER TABLE "DeveloperDocAway" RENAME TO "DeveloperDoc"`);
    }
    const errors = severeSince(from).filter((line) => line.level >= LEVELS.error);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.err?.message).toMatch(/DeveloperDoc/);
  });
});

describe("cross-origin callers", () => {
  const preflight = (url: string, origin: string) =>
    fetch(url, {
      method: "OPTIONS",
      headers: {
        origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
      },
    });
  const simple = (url: string, origin: string) =>
    fetch(`${url}?query=${encodeURIComponent("{ __typename }")}`, { headers: { origin, accept: "application/json" } });

  it("by default, any origin may call, never with credentials", async () => {
    for (const response of [await preflight(server.url, "https://anywhere.example"), await simple(server.url, "https://anywhere.example")]) {
      expect(response.headers.get("access-control-allow-origin")).toBe("https://anywhere.example");
      expect(response.headers.get("access-control-allow-credentials")).toBeNull();
    }
    const allowed = await preflight(server.url, "https://anywhere.example");
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get("access-control-allow-methods")).toContain("POST");
    expect(allowed.headers.get("access-control-allow-headers")).toContain("authorization");
  });

  it("with CORS_ORIGINS, only the listed origins", async () => {
    const listed = await startTestServer({
      embedded: true,
      env: { CORS_ORIGINS: "https://portal.example.com, https://admin.example.com" },
    });
    try {
      for (const origin of ["https://portal.example.com", "https://admin.example.com"]) {
        const allowed = await preflight(listed.url, origin);
        expect(allowed.status).toBe(204);
        expect(allowed.headers.get("access-control-allow-origin")).toBe(origin);
        expect(allowed.headers.get("access-control-allow-headers")).toContain("authorization");
        expect(allowed.headers.get("access-control-allow-credentials")).toBeNull();
        const answered = await simple(listed.url, origin);
        expect(answered.headers.get("access-control-allow-origin")).toBe(origin);
        expect(await answered.json()).toEqual({ data: { __typename: "Query" } });
      }
      for (const origin of ["https://evil.example", "null", "https://portal.example.com.evil.example"]) {
        const refused = await preflight(listed.url, origin);
        expect(refused.headers.get("access-control-allow-origin")).toBeNull();
        expect(refused.headers.get("access-control-allow-methods")).toBeNull();
        expect((await simple(listed.url, origin)).headers.get("access-control-allow-origin")).toBeNull();
      }
    } finally {
      await listed.close();
    }
  });

  it("refuses a CORS_ORIGINS entry that is not an origin", () => {
    expect(() => loadConfig({ CORS_ORIGINS: "https://portal.example.com/app" })).toThrow(ConfigError);
    expect(() => loadConfig({ CORS_ORIGINS: "portal.example.com" })).toThrow(ConfigError);
    expect(loadConfig({ CORS_ORIGINS: " https://a.example , https://b.example:8443 " }).corsOrigins).toEqual([
      "https://a.example",
      "https://b.example:8443",
    ]);
    expect(loadConfig({}).corsOrigins).toBe("*");
  });
});
