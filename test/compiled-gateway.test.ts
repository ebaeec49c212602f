// recordUsage and verifyApiKey run through graphql-jit (src/http/plugins/compiled-gateway.ts);
// everything else through Yoga's executor. The two must answer the same: the same batch sent as a
// recordUsage-only mutation (compiled) and with `__typename` beside it (not compiled) gets the same
// answer, stored rows, rejections and errors, whatever is wrong with it; so does a verification.
import { randomBytes } from "node:crypto";
import { parse } from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Plugin } from "graphql-yoga";
import { compiledGatewayOperations, isRecordUsageOnly } from "../src/http/plugins/compiled-gateway.js";
import { buildSchema } from "../src/schema/index.js";
import { startTestServer, type TestServer } from "./support/server.js";
import { createGatewayCredential, createKey, createPartner, event, type TestKey } from "./support/usage.js";
import { createUser } from "./support/users.js";

let server: TestServer;
let gateway: string;
let key: TestKey;
let revoked: TestKey;

beforeAll(async () => {
  server = await startTestServer();
  gateway = await createGatewayCredential(server);
  const partner = await createPartner(server, "Compiled ingest");
  key = await createKey(server, partner.id, partner.ownerId);
  revoked = await createKey(server, partner.id, partner.ownerId, { revokedAt: new Date() });
});
afterAll(async () => {
  await server?.close();
});

const SELECTION = `recordUsage(events: $events, idempotencyKey: $idempotencyKey) { accepted rejected { index code message } }`;
const COMPILED = `mutation Ingest($events: [UsageEventInput!]!, $idempotencyKey: String) { ${SELECTION} }`;
const STANDARD = `mutation Ingest($events: [UsageEventInput!]!, $idempotencyKey: String) { ${SELECTION} __typename }`;
const VERIFICATION = `verifyApiKey(secret: $secret, requiredScopes: $scopes) { valid code scopes expiresAt apiKeyId partnerId }`;
const VERIFY_COMPILED = `query Verify($secret: String!, $scopes: [ApiKeyScope!]) { ${VERIFICATION} }`;
const VERIFY_STANDARD = `query Verify($secret: String!, $scopes: [ApiKeyScope!]) { ${VERIFICATION} __typename }`;

describe("which operations run compiled", () => {
  it("only a mutation whose one root field is recordUsage, whatever its name or alias", () => {
    expect(isRecordUsageOnly(parse(COMPILED))).toBe(true);
    expect(isRecordUsageOnly(parse(`mutation { batch: recordUsage(events: []) { accepted } }`))).toBe(true);
    expect(isRecordUsageOnly(parse(STANDARD))).toBe(false);
    expect(isRecordUsageOnly(parse(`query { recordUsage { accepted } }`))).toBe(false);
    expect(isRecordUsageOnly(parse(`mutation { ...F } fragment F on Mutation { recordUsage(events: []) { accepted } }`))).toBe(false);
    const two = parse(`mutation A { recordUsage(events: []) { accepted } } mutation B { logout }`);
    expect(isRecordUsageOnly(two, "A")).toBe(true);
    expect(isRecordUsageOnly(two, "B")).toBe(false);
  });
});

describe("the compiled path", () => {
  it("compiles a recordUsage-only mutation and a verifyApiKey-only query, and leaves every other operation alone", () => {
    const plugin = compiledGatewayOperations();
    const schema = buildSchema();
    const replaced = (document: string) => {
      let set = false;
      type Payload = Parameters<NonNullable<Plugin["onExecute"]>>[0];
      const payload = { args: { schema, document: parse(document) }, executeFn: () => ({}), setExecuteFn: () => (set = true) };
      plugin.onExecute!(payload as unknown as Payload);
      return set;
    };
    expect(replaced(COMPILED)).toBe(true);
    expect(replaced(`mutation { recordUsage(events: []) { rejected { code } } }`)).toBe(true);
    expect(replaced(STANDARD)).toBe(false);
    expect(replaced(`{ viewer { id } }`)).toBe(false);
    expect(replaced(VERIFY_COMPILED)).toBe(true);
    expect(replaced(VERIFY_STANDARD)).toBe(false);
    // A live query is the live-query store's to run.
    expect(replaced(`query @live { verifyApiKey(secret: "x") { valid } }`)).toBe(false);
    expect(replaced(`{ ...F } fragment F on Query { verifyApiKey(secret: "x") { valid } }`)).toBe(false);
    // The key and partner records are the standard executor's to load.
    expect(replaced(`{ verifyApiKey(secret: "x") { valid apiKey { id } } }`)).toBe(false);
    expect(replaced(`{ verifyApiKey(secret: "x") { valid ... on ApiKeyVerification { code } } }`)).toBe(false);
  });
});

describe("recordUsage compiled and not", () => {
  const both = async (variables: (label: string) => Record<string, unknown>) => {
    const compiled = await server.gql(COMPILED, variables("compiled"), gateway);
    const standard = await server.gql(STANDARD, variables("standard"), gateway);
    return { compiled, standard };
  };
  const same = ({ compiled, standard }: Awaited<ReturnType<typeof both>>) => {
    expect(compiled.status).toBe(standard.status);
    expect(compiled.data?.recordUsage ?? null).toEqual(standard.data?.recordUsage ?? null);
    expect(compiled.errors).toEqual(standard.errors);
  };

  it("store a valid batch and answer rejections event by event alike", async () => {
    const marker = `/compiled-${randomBytes(3).toString("hex")}`;
    const events = (label: string) => [
      event(key, { endpoint: `${marker}/${label}`, requestCount: 3, occurredAt: new Date().toISOString() }),
      event(revoked, { endpoint: `${marker}/${label}` }),
      event(key, { endpoint: "no-slash" }),
      event(key, { method: "get", statusCode: 404 }),
      event("QVBJS2V5Og==", {}),
      { apiKeySecret: "ppk_test_not_a_key", endpoint: "/x", method: "GET", statusCode: 200 },
      event(key, { apiKeySecret: "ppk_test_both" }),
    ];
    const answers = await both((label) => ({ events: events(label), idempotencyKey: `${marker}-${label}` }));
    same(answers);
    expect(answers.compiled.data!.recordUsage.accepted).toBe(2);
    const stored = await server.app.services.prisma.usageLog.groupBy({
      by: ["endpoint"],
      where: { endpoint: { startsWith: marker } },
      _sum: { requestCount: true },
    });
    expect(stored.map((row) => [row.endpoint, row._sum.requestCount]).sort()).toEqual([
      [`${marker}/compiled`, 3],
      [`${marker}/standard`, 3],
    ]);
  });

  it("refuse malformed variables with the same errors and store nothing", async () => {
    const before = await server.app.services.prisma.usageLog.count();
    const malformed: Array<Record<string, unknown>> = [
      { events: [{ ...event(key), statusCode: "200" }] },
      { events: [{ ...event(key), statusCode: 2.5 }] },
      { events: [{ ...event(key), requestCount: 2 ** 31 }] },
      { events: [{ ...event(key), endpoint: undefined }] },
      { events: [{ ...event(key), unknownField: 1 }] },
      { events: [{ ...event(key), occurredAt: "yesterday" }] },
      { events: [null] },
      { events: null },
      { events: "not a list" },
      {},
      { events: [event(key)], idempotencyKey: 42 },
    ];
    for (const variables of malformed) {
      const answers = await both(() => variables);
      expect(answers.compiled.errors?.length, JSON.stringify(variables)).toBeGreaterThan(0);
      same(answers);
    }
    // A single event given where a list is expected is a list of one, in both.
    same(await both(() => ({ events: { ...event(key), endpoint: "/one" } })));
    expect(await server.app.services.prisma.usageLog.count()).toBe(before + 2);
  });

  it("answer a batch over the limit, a caller who may not ingest and a signed-out one alike", async () => {
    same(await both(() => ({ events: Array.from({ length: 5001 }, () => event(key)) })));
    const developer = await createUser(server, "compiled-ingest-dev", "developer");
    for (const token of [developer.token, undefined]) {
      const compiled = await server.gql(COMPILED, { events: [event(key)] }, token);
      const standard = await server.gql(STANDARD, { events: [event(key)] }, token);
      expect(compiled.status).toBe(standard.status);
      expect(compiled.errors?.length).toBeGreaterThan(0);
      expect(compiled.errors).toEqual(standard.errors);
    }
  });

  it("mask an unexpected failure alike, storing nothing", async () => {
    const prisma = server.app.services.prisma;
    const before = await prisma.usageLog.count();
    await prisma.$executeRawUnsafe(`ALTER TABLE "UsageBatch" RENAME TO "UsageBatchGone"`);
    try {
      const answers = await both((label) => ({ events: [event(key)], idempotencyKey: `gone-${label}` }));
      expect(answers.compiled.errors?.map((error) => error.message)).toEqual(["Unexpected error."]);
      same(answers);
    } finally {
      await prisma.$executeRawUnsafe(`ALTER TABLE "UsageBatchGone" RENAME TO "UsageBatch"`);
    }
    expect(await prisma.usageLog.count()).toBe(before);
  });
});

describe("verifyApiKey compiled and not", () => {
  const same = async (variables: Record<string, unknown>, token: string | undefined = gateway) => {
    const compiled = await server.gql(VERIFY_COMPILED, variables, token);
    const standard = await server.gql(VERIFY_STANDARD, variables, token);
    expect(compiled.status, JSON.stringify(variables)).toBe(standard.status);
    expect(compiled.data?.verifyApiKey ?? null).toEqual(standard.data?.verifyApiKey ?? null);
    expect(compiled.errors).toEqual(standard.errors);
    return compiled;
  };

  it("answer every kind of secret alike", async () => {
    expect((await same({ secret: key.secret })).data?.verifyApiKey).toMatchObject({ valid: true, code: "VALID" });
    expect((await same({ secret: key.secret, scopes: ["USAGE_WRITE"] })).data?.verifyApiKey.valid).toBe(true);
    expect((await same({ secret: key.secret, scopes: ["API_WRITE"] })).data?.verifyApiKey.code).toBe("INSUFFICIENT_SCOPE");
    expect((await same({ secret: revoked.secret })).data?.verifyApiKey.code).toBe("REVOKED");
    for (const secret of ["ppk_test_not_a_key", "", "x".repeat(10_000)]) {
      expect((await same({ secret })).data?.verifyApiKey.valid).toBe(false);
    }
  });

  it("refuse malformed variables alike", async () => {
    const malformed: Array<Record<string, unknown>> = [
      { secret: 42 },
      { secret: null },
      {},
      { secret: key.secret, scopes: ["NOT_A_SCOPE"] },
      { secret: key.secret, scopes: [null] },
    ];
    for (const variables of malformed) expect((await same(variables)).errors?.length, JSON.stringify(variables)).toBeGreaterThan(0);
    // A single scope given where a list is expected is a list of one, in both.
    expect((await same({ secret: key.secret, scopes: "USAGE_WRITE" })).data?.verifyApiKey.valid).toBe(true);
  });

  it("answer a caller who may not verify and a signed-out one alike", async () => {
    const developer = await createUser(server, "compiled-verify-dev", "developer");
    // "" sends no Authorization header.
    for (const token of [developer.token, ""]) {
      const answer = await same({ secret: key.secret }, token);
      expect(answer.data).toBeNull();
      expect(answer.errors?.map((error) => error.extensions?.code)).toEqual([token ? "FORBIDDEN" : "UNAUTHENTICATED"]);
    }
  });
});
