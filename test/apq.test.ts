import { createHash } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashPassword } from "../src/auth/password.js";
import { loadConfig } from "../src/config.js";
import { loadPersistedManifest } from "../src/http/plugins/persisted-operations.js";
import { LoginDocument, ViewerDocument } from "./generated/graphql.js";
import { errorCodes, startTestServer, type GraphQLResponse, type TestServer } from "./support/server.js";
import { wsStream, type ResultStream } from "./support/streams.js";
import { createUser, TEST_PASSWORD, type SignedInUser } from "./support/users.js";

const MANIFEST = join(import.meta.dirname, "generated", "persisted-documents.json");
const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
const persisted = (hash: string) => ({ persistedQuery: { version: 1, sha256Hash: hash } });
/** The hash codegen gave a first-party document (client-preset's `persistedDocuments`). */
const hashOf = (document: unknown) => (document as { __meta__: { hash: string } }).__meta__.hash;

/** One POST with whatever body an APQ client sends. */
async function post(server: TestServer, body: Record<string, unknown>, token?: string) {
  const response = await fetch(server.url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/graphql-response+json, application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify(body),
  });
  return { status: response.status, ...((await response.json()) as GraphQLResponse) };
}

/** The first result of a graphql-ws operation, or the errors it was refused with. */
async function firstOf(stream: ResultStream): Promise<GraphQLResponse> {
  const result = await stream.next();
  if (result) return result;
  const reason = await stream.ended;
  return { errors: (Array.isArray(reason) ? reason : []) as GraphQLResponse["errors"] };
}

describe("automatic persisted queries (the default)", () => {
  let server: TestServer;
  let user: SignedInUser;
  beforeAll(async () => {
    server = await startTestServer();
    user = await createUser(server, "apq-user", "developer");
  });
  afterAll(async () => {
    await server?.close();
  });

  it("over HTTP: a hash alone is PERSISTED_QUERY_NOT_FOUND until sent once with its query", async () => {
    const query = `query ApqViewer { viewer { username } }`;
    const hash = sha256(query);
    const unknown = await post(server, { extensions: persisted(hash) }, user.token);
    expect(errorCodes(unknown)).toEqual(["PERSISTED_QUERY_NOT_FOUND"]);
    expect(unknown.status).toBe(404);

    const registered = await post(server, { query, extensions: persisted(hash) }, user.token);
    expect(registered.data).toEqual({ viewer: { username: "apq-user" } });

    const byHash = await post(server, { extensions: persisted(hash) }, user.token);
    expect(byHash.data).toEqual({ viewer: { username: "apq-user" } });
    // As Apollo Client sends hash-only queries: a GET with the extension in the URL.
    const url = new URL(server.url);
    url.searchParams.set("extensions", JSON.stringify(persisted(hash)));
    const get = await fetch(url, { headers: { authorization: `Bearer ${user.token}`, accept: "application/json" } });
    expect(await get.json()).toEqual({ data: { viewer: { username: "apq-user" } } });
  });

  it("refuses a query sent with another query's hash, and still runs documents sent without one", async () => {
    const mismatch = await post(server, { query: `{ viewer { id } }`, extensions: persisted(sha256("{ viewer { role } }")) });
    expect(errorCodes(mismatch)).toEqual(["PERSISTED_QUERY_MISMATCH"]);
    expect((await post(server, { query: `{ viewer { id } }` })).data).toEqual({ viewer: null });
  });

  it("over graphql-ws: the same protocol (query \"\" with the hash), sharing what HTTP registered", async () => {
    const client = server.ws({ connectionParams: { authorization: `Bearer ${user.token}` } });
    const query = `query WsViewer { viewer { username role } }`;
    const hash = sha256(query);
    expect(errorCodes(await firstOf(wsStream(client, "", {}, persisted(hash))))).toEqual(["PERSISTED_QUERY_NOT_FOUND"]);
    expect((await firstOf(wsStream(client, query, {}, persisted(hash)))).data).toEqual({
      viewer: { username: "apq-user", role: "developer" },
    });
    expect((await firstOf(wsStream(client, "", {}, persisted(hash)))).data).toEqual({
      viewer: { username: "apq-user", role: "developer" },
    });
    expect(errorCodes(await firstOf(wsStream(client, `{ viewer { id } }`, {}, persisted(hash))))).toEqual([
      "PERSISTED_QUERY_MISMATCH",
    ]);

    const overHttp = `query HttpFirst { viewer { id } }`;
    await post(server, { query: overHttp, extensions: persisted(sha256(overHttp)) }, user.token);
    expect((await firstOf(wsStream(client, "", {}, persisted(sha256(overHttp))))).data).toEqual({
      viewer: { id: user.globalId },
    });
  });
});

describe("PERSISTED_OPERATIONS_ONLY with the codegen manifest", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: { PERSISTED_OPERATIONS_ONLY: "true", PERSISTED_OPERATIONS_FILE: MANIFEST } });
    // Signing in by a document's text is refused here: the user goes straight into the database.
    await server.app.services.prisma.user.create({
      data: { username: "pq-user", email: "pq-user@example.test", password: await hashPassword(TEST_PASSWORD), role: "developer" },
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  it("runs the manifest's operations by hash, over HTTP and graphql-ws", async () => {
    const login = await post(server, {
      variables: { input: { login: "pq-user", password: TEST_PASSWORD } },
      extensions: persisted(hashOf(LoginDocument)),
    });
    expect(login.errors).toBeUndefined();
    const token = (login.data as { login: { token: string } }).login.token;

    const viewer = await post(server, { extensions: persisted(hashOf(ViewerDocument)) }, token);
    expect(viewer.data).toMatchObject({ viewer: { username: "pq-user" } });

    const client = server.ws({ connectionParams: { authorization: `Bearer ${token}` } });
    expect((await firstOf(wsStream(client, "", {}, persisted(hashOf(ViewerDocument))))).data).toMatchObject({
      viewer: { username: "pq-user" },
    });
  });

  it("refuses any other document with PERSISTED_QUERY_ONLY, and an unknown hash with PERSISTED_QUERY_NOT_FOUND", async () => {
    const arbitrary = await post(server, { query: `{ viewer { id } }` });
    expect(errorCodes(arbitrary)).toEqual(["PERSISTED_QUERY_ONLY"]);
    expect(arbitrary.status).toBe(400);
    // Registering as under APQ is refused too, even with the right hash.
    const query = `{ viewer { id } }`;
    expect(errorCodes(await post(server, { query, extensions: persisted(sha256(query)) }))).toEqual(["PERSISTED_QUERY_ONLY"]);
    expect(errorCodes(await post(server, { extensions: persisted(sha256(query)) }))).toEqual(["PERSISTED_QUERY_NOT_FOUND"]);
    expect(errorCodes(await post(server, {}))).toEqual(["PERSISTED_QUERY_ONLY"]);
    // GraphiQL's page still loads; what it sends is refused like any other text.
    const page = await fetch(server.url, { headers: { accept: "text/html" } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("<title>Partner Portal</title>");

    const client = server.ws();
    expect(errorCodes(await firstOf(wsStream(client, `subscription { usageLogCreated { id } }`)))).toEqual([
      "PERSISTED_QUERY_ONLY",
    ]);
    expect(errorCodes(await firstOf(wsStream(client, "", {}, persisted(sha256(query)))))).toEqual(["PERSISTED_QUERY_NOT_FOUND"]);
  });
});

describe("persisted operations configuration", () => {
  it("needs a manifest for PERSISTED_OPERATIONS_ONLY, and refuses one whose hashes are not its documents'", () => {
    expect(() => loadConfig({ PERSISTED_OPERATIONS_ONLY: "true" })).toThrow(/PERSISTED_OPERATIONS_ONLY: needs PERSISTED_OPERATIONS_FILE/);
    expect(loadPersistedManifest(MANIFEST).get(hashOf(ViewerDocument))).toContain("query Viewer");

    const dir = mkdtempSync(join(tmpdir(), "manifest-"));
    const wrong = join(dir, "wrong.json");
    writeFileSync(wrong, JSON.stringify({ [`sha256:${sha256("{ viewer { id } }")}`]: "{ viewer { id } }" }));
    expect(() => loadPersistedManifest(wrong)).toThrow(/Invalid configuration:\n {2}PERSISTED_OPERATIONS_FILE: .* is not the hex sha256/);
    expect(() => loadPersistedManifest(join(dir, "missing.json"))).toThrow(/PERSISTED_OPERATIONS_FILE: .*ENOENT/);
  });
});
