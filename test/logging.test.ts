// Structured logs: JSON lines with one access line per HTTP request and per WebSocket operation,
// request ids taken from X-Request-Id (or made) and answered, client errors without stacks,
// unexpected errors with them, and never a password, token or secret in any line.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { captureLogs, LEVELS, type LogLine } from "./support/logs.js";
import { startTestServer, type TestServer } from "./support/server.js";
import { createUser, TEST_PASSWORD, type SignedInUser } from "./support/users.js";

const logs = captureLogs("debug");
let server: TestServer;
let admin: SignedInUser;

beforeAll(async () => {
  server = await startTestServer({ logger: logs.logger });
  admin = await createUser(server, "log-admin", "admin");
});
afterAll(async () => {
  await server?.close();
});

/** POSTs an operation with the given request id; answers the body and the X-Request-Id returned. */
async function post(query: string, variables: Record<string, unknown> = {}, options: { token?: string; requestId?: string } = {}) {
  const response = await fetch(server.url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/graphql-response+json",
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      ...(options.requestId ? { "x-request-id": options.requestId } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: Record<string, any>; errors?: Array<{ extensions?: { code?: string } }> };
  return { status: response.status, requestId: response.headers.get("x-request-id"), ...body };
}

const linesOf = (requestId: string) => logs.lines().filter((line) => line.requestId === requestId);
const accessLine = (requestId: string) => linesOf(requestId).find((line) => line.msg === "request" || line.msg === "operation");

/** Resolves once a line matching `match` has been written (the access line follows the response). */
async function lineWritten(match: (line: LogLine) => boolean): Promise<LogLine> {
  for (;;) {
    const found = logs.lines().find(match);
    if (found) return found;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

describe("access lines", () => {
  it("write one JSON line per HTTP request with the request id, operation, status, duration and viewer", async () => {
    const requestId = `req-${randomBytes(4).toString("hex")}`;
    const answer = await post(`query WhoAmI { viewer { id } }`, {}, { token: admin.token, requestId });
    expect(answer.requestId).toBe(requestId);
    const line = await lineWritten((candidate) => candidate.requestId === requestId && candidate.msg === "request");
    expect(line).toMatchObject({
      level: LEVELS.info,
      transport: "http",
      method: "POST",
      path: "/graphql",
      status: 200,
      operation: "WhoAmI",
      operationType: "query",
      viewerId: admin.id,
    });
    expect(typeof line.durationMs).toBe("number");
    expect(typeof line.time).toBe("string");
    expect(linesOf(requestId).filter((candidate) => candidate.msg === "request")).toHaveLength(1);
  });

  it("name the operation and the errors of requests that never ran", async () => {
    const badToken = await post(`query Refused { __typename }`, {}, { token: "not-a-token", requestId: `refused-${randomBytes(4).toString("hex")}` });
    expect(badToken.status).toBe(401);
    expect(await lineWritten((line) => line.requestId === badToken.requestId && line.msg === "request")).toMatchObject({
      status: 401,
      operation: "Refused",
      viewerId: null,
      errors: ["UNAUTHENTICATED"],
    });
    const invalid = await post(`query Invalid { noSuchField }`, {}, { requestId: `invalid-${randomBytes(4).toString("hex")}` });
    expect(await lineWritten((line) => line.requestId === invalid.requestId && line.msg === "request")).toMatchObject({
      operation: "Invalid",
      errors: ["GRAPHQL_VALIDATION_FAILED"],
    });
  });

  it("make a request id when none (or a malformed one) is sent, and answer it", async () => {
    const plain = await post(`{ __typename }`);
    expect(plain.requestId).toMatch(/^[0-9a-f-]{36}$/);
    await lineWritten((line) => line.requestId === plain.requestId && line.msg === "request");
    const forged = await post(`{ __typename }`, {}, { requestId: 'x" level=error' });
    expect(forged.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("write one line per WebSocket operation, with the viewer", async () => {
    const client = server.ws({ connectionParams: { authorization: `Bearer ${admin.token}` } });
    const result = await new Promise<unknown>((resolve, reject) => {
      client.subscribe({ query: `query WsViewer { viewer { id } }` }, { next: resolve, error: reject, complete: () => {} });
    });
    expect(result).toMatchObject({ data: { viewer: { id: admin.globalId } } });
    const line = await lineWritten((candidate) => candidate.msg === "operation" && candidate.operation === "WsViewer");
    expect(line).toMatchObject({ level: LEVELS.info, transport: "ws", status: "complete", operationType: "query", viewerId: admin.id });
    expect(line.requestId).toMatch(/\/.+/);

    const invalid = await new Promise<unknown>((resolve) => {
      client.subscribe({ query: `query WsInvalid { noSuchField }` }, { next: () => {}, error: resolve, complete: () => {} });
    });
    expect(invalid).toMatchObject([{ extensions: { code: "GRAPHQL_VALIDATION_FAILED" } }]);
    expect(await lineWritten((candidate) => candidate.msg === "operation" && candidate.operation === "WsInvalid")).toMatchObject({
      transport: "ws",
      status: "error",
      errors: ["GRAPHQL_VALIDATION_FAILED"],
    });
  });
});

describe("errors in the log", () => {
  it("log a malformed global id as a client error, without a stack, and nothing at warn or above", async () => {
    const requestId = `malformed-${randomBytes(4).toString("hex")}`;
    const answer = await post(`query BadId { partner(id: "not-base64!") { id } }`, {}, { token: admin.token, requestId });
    expect(answer.errors?.map((error) => error.extensions?.code)).toEqual(["BAD_USER_INPUT"]);
    const access = await lineWritten((line) => line.requestId === requestId && line.msg === "request");
    expect(access).toMatchObject({ operation: "BadId", errors: ["BAD_USER_INPUT"] });
    const lines = linesOf(requestId);
    expect(lines.some((line) => line.level === LEVELS.debug && line.code === "BAD_USER_INPUT")).toBe(true);
    expect(lines.filter((line) => line.level >= LEVELS.warn)).toEqual([]);
    expect(JSON.stringify(lines)).not.toContain("stack");
  });

  it("log an unexpected error at error level, with its stack and the request id", async () => {
    const requestId = `fault-${randomBytes(4).toString("hex")}`;
    const prisma = server.app.services.prisma;
    await prisma.$executeRawUnsafe(`ALTER TABLE "DeveloperDoc" RENAME TO "DeveloperDocGone"`);
    try {
      const answer = await post(`query Docs { developerDocs { totalCount } }`, {}, { requestId });
      expect(answer.errors).toHaveLength(1);
    } finally {
      await prisma.$executeRawUnsafe(`ALTER TABLE "DeveloperDocGone" RENAME TO "DeveloperDoc"`);
    }
    await lineWritten((line) => line.requestId === requestId && line.msg === "request");
    const errors = linesOf(requestId).filter((line) => line.level === LEVELS.error);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.err?.stack).toMatch(/DeveloperDoc/);
    expect(accessLine(requestId)).toMatchObject({ errors: ["UNEXPECTED"] });
  });

  it("log an unexpected error of a WebSocket operation once, with the operation's request id", async () => {
    const prisma = server.app.services.prisma;
    const client = server.ws({ connectionParams: { authorization: `Bearer ${admin.token}` } });
    await prisma.$executeRawUnsafe(`ALTER TABLE "DeveloperDoc" RENAME TO "DeveloperDocGone"`);
    try {
      const result = await new Promise<any>((resolve, reject) => {
        client.subscribe({ query: `query WsDocs { developerDocs { totalCount } }` }, { next: resolve, error: reject, complete: () => {} });
      });
      expect(result.errors?.map((error: { message: string }) => error.message)).toEqual(["Unexpected error."]);
    } finally {
      await prisma.$executeRawUnsafe(`ALTER TABLE "DeveloperDocGone" RENAME TO "DeveloperDoc"`);
    }
    const access = await lineWritten((line) => line.msg === "operation" && line.operation === "WsDocs");
    expect(access).toMatchObject({ transport: "ws", errors: ["UNEXPECTED"] });
    const errors = linesOf(access.requestId!).filter((line) => line.level === LEVELS.error);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.err?.stack).toMatch(/DeveloperDoc/);
  });

  it("log a fault while reading the caller once, with the request id", async () => {
    const requestId = `caller-fault-${randomBytes(4).toString("hex")}`;
    // A session this server has not seen yet is read from the database, whose table is gone.
    const other = await createUser(server, `log-member-${randomBytes(3).toString("hex")}`, "admin");
    const prisma = server.app.services.prisma;
    await prisma.$executeRawUnsafe(`ALTER TABLE "Session" RENAME TO "SessionGone"`);
    let answer: Awaited<ReturnType<typeof post>>;
    try {
      answer = await post(`query Who { viewer { id } }`, {}, { token: other.token, requestId });
    } finally {
      await prisma.$executeRawUnsafe(`ALTER TABLE "SessionGone" RENAME TO "Session"`);
    }
    expect(answer.errors).toHaveLength(1);
    await lineWritten((line) => line.requestId === requestId && line.msg === "request");
    const errors = linesOf(requestId).filter((line) => line.level === LEVELS.error);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.err?.stack).toMatch(/Session/);
    expect(logs.lines().filter((line) => line.level === LEVELS.error && line.err?.stack === errors[0]!.err?.stack)).toHaveLength(1);
  });
});

describe("secrets", () => {
  it("never appear in the log of a run that signs up, signs in, creates and verifies a key", async () => {
    const password = `pw-${randomBytes(12).toString("hex")}`;
    const username = `logged-${randomBytes(3).toString("hex")}`;
    const signUp = await post(
      `mutation SignUp($input: SignUpInput!) { signUp(input: $input) { token } }`,
      { input: { username, email: `${username}@example.test`, password } },
    );
    const login = await post(`mutation Login($input: LoginInput!) { login(input: $input) { token } }`, {
      input: { login: username, password },
    });
    const wrongPassword = `wrong-${randomBytes(12).toString("hex")}`;
    await post(`mutation Login($input: LoginInput!) { login(input: $input) { token } }`, { input: { login: username, password: wrongPassword } });

    const partner = await server.app.services.prisma.partnerOrganization.create({ data: { name: `Logged ${username}` } });
    const { encodeGlobalID } = await import("@pothos/plugin-relay");
    const created = await post(
      `mutation CreateKey($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret apiKey { id } } }`,
      { input: { partnerId: encodeGlobalID("PartnerOrganization", partner.id), keyName: "logged", scopes: ["USAGE_WRITE"] } },
      { token: admin.token },
    );
    const keySecret: string = created.data!.createApiKey.secret;
    const credential = await post(
      `mutation Gateway($name: String!) { createServiceCredential(name: $name) { secret } }`,
      { name: `gw-${username}` },
      { token: admin.token },
    );
    const gatewaySecret: string = credential.data!.createServiceCredential.secret;
    const verified = await post(`query Verify($s: String!) { verifyApiKey(secret: $s) { valid } }`, { s: keySecret }, { token: gatewaySecret });
    expect(verified.data).toEqual({ verifyApiKey: { valid: true } });
    // The same over a WebSocket, whose connection params carry the credential.
    const client = server.ws({ connectionParams: { authorization: `Bearer ${gatewaySecret}` } });
    await new Promise<unknown>((resolve, reject) => {
      client.subscribe(
        { query: `query WsVerify($s: String!) { verifyApiKey(secret: $s) { valid } }`, variables: { s: keySecret } },
        { next: resolve, error: reject, complete: () => {} },
      );
    });
    const lastId = verified.requestId!;
    await lineWritten((line) => line.requestId === lastId && line.msg === "request");
    await lineWritten((line) => line.operation === "WsVerify" && line.msg === "operation");

    const { jwtSecret, apiKeyHashSecret } = server.app.secrets;
    const secrets = [
      password,
      wrongPassword,
      TEST_PASSWORD,
      admin.token,
      signUp.data!.signUp.token,
      login.data!.login.token,
      keySecret,
      gatewaySecret,
      ...[jwtSecret, apiKeyHashSecret].flatMap((secret) => [
        Buffer.from(secret).toString("base64url"),
        Buffer.from(secret).toString("base64"),
        Buffer.from(secret).toString("hex"),
      ]),
    ];
    const text = logs.text();
    expect(text).toContain("CreateKey");
    expect(text).toContain("Verify");
    for (const secret of secrets) expect(text).not.toContain(secret);
    // The secrets' distinctive parts too (a token's signature, a key's random part).
    for (const secret of [keySecret, gatewaySecret, admin.token]) expect(text).not.toContain(secret.slice(-16));
  });
});

describe("the format", () => {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
  const run = promisify(execFile);
  const script = `import { createLogger } from "./src/logger.ts"; const logger = createLogger({ level: "info", format: process.env.LOG_FORMAT || undefined }); logger.info({ answer: 42 }, "hello");`;
  const logLine = async (env: Record<string, string>) => {
    const { stdout } = await run(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      cwd: root,
      env: { ...process.env, ...env },
    });
    return stdout;
  };

  it("is JSON lines when standard output is not a terminal, and pretty when LOG_FORMAT=pretty", async () => {
    const json = await logLine({ LOG_FORMAT: "" });
    expect(JSON.parse(json.trim())).toMatchObject({ level: LEVELS.info, msg: "hello", answer: 42 });
    const pretty = await logLine({ LOG_FORMAT: "pretty" });
    expect(pretty).toContain("hello");
    expect(pretty).toMatch(/INFO/);
    expect(() => JSON.parse(pretty.trim())).toThrow();
  });
});
