// Security review: attacks by every kind of caller (each role of partners A and B, a signed-up
// developer with no partner, nobody, the gateway's service credential, a partner's own API key used
// as a bearer token) on the paths bola.test.ts and the matrix do not already walk. Each test
// asserts the safe behaviour.
import { randomBytes } from "node:crypto";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { captureLogs } from "./support/logs.js";
import { createWorld, type Actor, type World } from "./support/matrix.js";
import { errorCodes, startTestServer, type GraphQLResponse, type TestServer } from "./support/server.js";
import { sseStream, triggerUntilReceived, wsStream, type ResultStream } from "./support/streams.js";
import { createGatewayCredential, event, RECORD_USAGE } from "./support/usage.js";
import { createUser, TEST_PASSWORD } from "./support/users.js";

let clock = new Date("2027-05-01T12:00:00Z");
let server: TestServer;
let world: World;
let gateway: string;

interface IssuedKey {
  id: string;
  secret: string;
  keyName: string;
}
let keyA: IssuedKey;
let keyA2: IssuedKey;
let keyB: IssuedKey;
let docs: { draftA: string; publishedA: string; publishedB: string };
let logB: string;
let auditB: string;
let auditCredential: string;
const issuedSecrets: string[] = [];

const CREATE_KEY = /* GraphQL */ `
  mutation ($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret apiKey { id keyName } } }
`;

async function issueKey(actor: Actor, partnerGid: string, keyName: string): Promise<IssuedKey> {
  const response = await server.gql(
    CREATE_KEY,
    { input: { partnerId: partnerGid, keyName, scopes: ["USAGE_WRITE", "USAGE_READ"] } },
    world.token(actor),
  );
  if (!response.data?.createApiKey) throw new Error(JSON.stringify(response.errors));
  const { secret, apiKey } = response.data.createApiKey;
  issuedSecrets.push(secret);
  return { id: apiKey.id, secret, keyName };
}

const rawId = (globalId: string) => Buffer.from(globalId, "base64").toString("utf8").split(":").slice(1).join(":");

beforeAll(async () => {
  server = await startTestServer({ now: () => clock });
  world = await createWorld(server);
  gateway = await createGatewayCredential(server, "review-gateway");
  issuedSecrets.push(gateway);
  const prisma = server.app.services.prisma;

  keyA = await issueKey("partnerAdminA", world.partnerA.globalId, "a-primary");
  keyA2 = await issueKey("partnerAdminA", world.partnerA.globalId, "a-confidential-billing");
  keyB = await issueKey("partnerAdminB", world.partnerB.globalId, "b-primary");

  const doc = (partnerId: string | null, slug: string, isPublished: boolean) =>
    prisma.developerDoc.create({
      data: {
        title: slug,
        slug,
        apiVersion: "v1",
        content: `content of ${slug}`,
        isPublished,
        publishedAt: isPublished ? clock : null,
        ownerId: world.users.support.id,
        partnerId,
      },
    });
  const draftA = await doc(world.partnerA.id, "draft-for-a", false);
  const publishedA = await doc(world.partnerA.id, "published-for-a", true);
  const publishedB = await doc(world.partnerB.id, "published-for-b", true);
  docs = {
    draftA: world.globalId("DeveloperDoc", draftA.id),
    publishedA: world.globalId("DeveloperDoc", publishedA.id),
    publishedB: world.globalId("DeveloperDoc", publishedB.id),
  };

  const recorded = await server.gql(
    RECORD_USAGE,
    {
      events: [
        event(keyA.id, { endpoint: "/v1/a-endpoint", occurredAt: new Date(clock.getTime() - 60_000).toISOString() }),
        event(keyB.id, {
          endpoint: "/v1/b-only-endpoint",
          statusCode: 503,
          requestCount: 777,
          occurredAt: new Date(clock.getTime() - 30_000).toISOString(),
        }),
      ],
    },
    gateway,
  );
  if (recorded.data?.recordUsage.accepted !== 2) throw new Error(JSON.stringify(recorded));
  const log = await prisma.usageLog.findFirstOrThrow({ where: { partnerId: world.partnerB.id } });
  logB = world.globalId("UsageLog", log.id);
  const event_ = await prisma.auditEvent.findFirstOrThrow({ where: { partnerId: world.partnerB.id } });
  auditB = world.globalId("AuditEvent", event_.id);
  const credentialEvent = await prisma.auditEvent.create({
    data: { action: "serviceCredentialCreated", detail: { name: "review-gateway", via: "cli" } },
  });
  auditCredential = world.globalId("AuditEvent", credentialEvent.id);
});

afterAll(async () => {
  await server?.close();
});

const ask = (actor: Actor, query: string, variables: Record<string, unknown> = {}) =>
  server.gql(query, variables, world.token(actor));

const text = (response: unknown) => JSON.stringify(response);

describe("the gateway's service credential", () => {
  const VERIFY_AND_WALK = /* GraphQL */ `
    query ($secret: String!) {
      verifyApiKey(secret: $secret) {
        valid
        apiKey {
          id createdBy { id email }
          events { edges { node { id detail } } }
          usageLogs { edges { node { id } } }
          partner { id apiKeys(includeRevoked: true) { edges { node { id keyName tokenPrefix } } } }
        }
        partner {
          id name
          apiKeys(includeRevoked: true) { edges { node { id keyName tokenPrefix scopes lastUsedAt } } }
          members { totalCount edges { node { id email } } }
          usageLogs { edges { node { id endpoint } } }
          developerDocs(includeDrafts: true) { totalCount edges { node { id } } }
        }
      }
    }
  `;

  it("sees the key it verified, but no other key, user, log or doc of that partner", async () => {
    const response = await server.gql(VERIFY_AND_WALK, { secret: keyA.secret }, gateway);
    expect(response.data?.verifyApiKey).toMatchObject({ valid: true, apiKey: { id: keyA.id }, partner: { id: world.partnerA.globalId } });
    const body = text(response);
    // Another key of the same partner: the gateway never verified it, so it must not learn of it.
    expect(body).not.toContain(keyA2.id);
    expect(body).not.toContain(keyA2.keyName);
    for (const user of Object.values(world.users)) expect(body).not.toContain(user.globalId);
    expect(body).not.toContain("/v1/a-endpoint");
    expect(body).not.toContain(docs.publishedA);
    expect(body).not.toContain(docs.draftA);
  });

  it("finds nothing through root lists, node lookups or summaries", async () => {
    const response = await server.gql(
      `query ($ids: [ID!]!) {
        partners { totalCount edges { node { id } } }
        apiKeys(includeRevoked: true) { edges { node { id } } }
        developerDocs(includeDrafts: true) { totalCount edges { node { id } } }
        nodes(ids: $ids) { id }
        viewer { id }
      }`,
      { ids: [world.partnerA.globalId, keyA.id, logB, docs.draftA, auditB, world.users.admin.globalId] },
      gateway,
    );
    expect(response.errors).toBeUndefined();
    expect(response.data).toEqual({
      partners: { totalCount: 0, edges: [] },
      apiKeys: { edges: [] },
      developerDocs: { totalCount: 0, edges: [] },
      nodes: [null, null, null, null, null, null],
      viewer: null,
    });
    // Usage reads are for signed-in users only.
    expect(errorCodes(await server.gql(`{ usageSummary { totalRequests } }`, {}, gateway))).toEqual(["FORBIDDEN"]);
    expect(errorCodes(await server.gql(`{ usageLogs { edges { node { id } } } }`, {}, gateway))).toEqual(["FORBIDDEN"]);
    expect(errorCodes(await server.gql(`{ serviceCredentials { edges { node { id } } } }`, {}, gateway))).toEqual([
      "FORBIDDEN",
    ]);
  });

  it("is refused every write that needs a user, and changes nothing", async () => {
    const prisma = server.app.services.prisma;
    const before = await prisma.apiKey.findMany({ orderBy: { id: "asc" } });
    const writes: Array<[string, Record<string, unknown>]> = [
      [CREATE_KEY, { input: { partnerId: world.partnerA.globalId, keyName: "by-gateway", scopes: ["API_READ"] } }],
      [`mutation ($id: ID!) { revokeApiKey(id: $id) { id } }`, { id: keyA.id }],
      [`mutation ($id: ID!) { rotateApiKey(id: $id, gracePeriodSeconds: 0) { secret } }`, { id: keyA.id }],
      [`mutation ($id: ID!) { updatePartner(id: $id, input: { name: "Gw" }) { id } }`, { id: world.partnerA.globalId }],
      [
        `mutation { createPartner(input: { name: "Gw", primaryContact: { email: "gw@example.test", username: "gw-contact" } }) { partner { id } } }`,
        {},
      ],
      [`mutation { createServiceCredential(name: "second-gw") { secret } }`, {}],
      [
        `mutation { createDeveloperDoc(input: { title: "t", slug: "gw-doc", content: "c", apiVersion: "v1" }) { id } }`,
        {},
      ],
      [`mutation ($id: ID!) { publishDeveloperDoc(id: $id) { id } }`, { id: docs.draftA }],
      [`mutation ($u: ID!) { setUserRole(userId: $u, role: admin) { id } }`, { u: world.users.developerA.globalId }],
      [`mutation { logout }`, {}],
    ];
    for (const [query, variables] of writes) {
      const response = await server.gql(query, variables, gateway);
      expect(errorCodes(response), query).toEqual(["FORBIDDEN"]);
      expect(text(response)).not.toMatch(/pp[ks]_(live|test)_/);
    }
    expect(await prisma.apiKey.findMany({ orderBy: { id: "asc" } })).toEqual(before);
    expect(await prisma.user.findUniqueOrThrow({ where: { id: world.users.developerA.id } })).toMatchObject({
      role: "developer",
    });
    expect(await prisma.developerDoc.findUniqueOrThrow({ where: { id: rawId(docs.draftA) } })).toMatchObject({
      isPublished: false,
    });
  });

  it("cannot subscribe to usage over SSE or graphql-ws", async () => {
    const query = `subscription { usageLogCreated { id } }`;
    const sse = sseStream(server.url, query, {}, gateway);
    const first = await sse.next();
    expect(errorCodes(first!)).toEqual(["FORBIDDEN"]);
    sse.close();
    const client = server.ws({ connectionParams: { authorization: `Bearer ${gateway}` } });
    const ws = wsStream(client, query);
    const reason = await ws.ended;
    const errors = (Array.isArray(reason) ? reason : (ws.received[0]?.errors ?? [])) as Array<{ extensions?: { code?: string } }>;
    expect(errors[0]?.extensions?.code).toBe("FORBIDDEN");
  });
});

describe("bearer tokens that must not authenticate", () => {
  const VIEWER = `{ viewer { id } }`;

  it("a partner's own API key is not a bearer token, over HTTP or graphql-ws", async () => {
    for (const query of [VIEWER, `{ apiKeys { edges { node { id } } } }`, RECORD_USAGE]) {
      const response = await server.gql(query, { events: [event(keyA.id)] }, keyA.secret);
      expect(errorCodes(response)).toEqual(["UNAUTHENTICATED"]);
      expect(response.status).toBe(401);
    }
    for (const connectionParams of [{ authorization: `Bearer ${keyA.secret}` }, { token: keyA.secret }]) {
      const client = server.ws({ connectionParams });
      const stream = wsStream(client, `subscription { usageLogCreated { id } }`);
      const reason = await stream.ended;
      expect(stream.received).toEqual([]);
      expect(reason).not.toBe("complete");
    }
  });

  it("session tokens signed with the server's key but for another audience, issuer or algorithm are refused", async () => {
    const session = await server.app.services.prisma.session.findFirstOrThrow({
      where: { userId: world.users.developerA.id, revokedAt: null },
    });
    const { jwtSecret } = server.app.secrets;
    const { issuer, audience } = server.config.jwt;
    const sign = (options: { iss?: string; aud?: string; alg?: string; sub?: string; exp?: number }) =>
      new SignJWT({ sid: session.id })
        .setProtectedHeader({ alg: options.alg ?? "HS256", typ: "JWT" })
        .setSubject(options.sub ?? world.users.developerA.id)
        .setIssuer(options.iss ?? issuer)
        .setAudience(options.aud ?? audience)
        .setIssuedAt()
        .setExpirationTime(options.exp ?? Math.floor(clock.getTime() / 1000) + 3600)
        .sign(jwtSecret);
    // The control: a token built this way with the right claims works.
    const good = await server.gql(VIEWER, {}, await sign({}));
    expect(good.data).toEqual({ viewer: { id: world.users.developerA.globalId } });
    const bad = [
      await sign({ aud: "someone-else" }),
      await sign({ iss: "someone-else" }),
      await sign({ alg: "HS512" }),
      await sign({ alg: "HS384" }),
      // Another user's id on developer A's session: an admin's, to escalate.
      await sign({ sub: world.users.admin.id }),
      await sign({ exp: Math.floor(Date.now() / 1000) - 10 }),
    ];
    for (const token of bad) {
      const response = await server.gql(VIEWER, {}, token);
      expect(errorCodes(response)).toEqual(["UNAUTHENTICATED"]);
    }
  });

  it("a service credential secret for a credential that does not exist, or with a broken checksum, is refused", async () => {
    const tampered = gateway.slice(0, -1) + (gateway.endsWith("A") ? "B" : "A");
    const unknown = `pps_live_${"A".repeat(38)}`;
    for (const token of [tampered, unknown]) {
      expect(errorCodes(await server.gql(`{ verifyApiKey(secret: "x") { valid } }`, {}, token))).toEqual(["UNAUTHENTICATED"]);
    }
  });
});

describe("secrets are never shown again", () => {
  it("not in any read, audit detail, verification answer or error, to anyone", async () => {
    const rotated = await server.gql(
      `mutation ($id: ID!) { rotateApiKey(id: $id, gracePeriodSeconds: 60) { secret } }`,
      { id: keyA2.id },
      world.token("partnerAdminA"),
    );
    const rotatedSecret: string = rotated.data!.rotateApiKey.secret;
    const credential = await ask("admin", `mutation { createServiceCredential(name: "review-second") { secret serviceCredential { id } } }`);
    const credentialSecret: string = credential.data!.createServiceCredential.secret;
    const secrets = [...issuedSecrets, rotatedSecret, credentialSecret];
    const prisma = server.app.services.prisma;
    const hashes = [
      ...(await prisma.apiKey.findMany({ select: { secretHash: true, previousSecretHash: true } })).flatMap((key) => [
        key.secretHash,
        key.previousSecretHash,
      ]),
      ...(await prisma.serviceCredential.findMany({ select: { secretHash: true } })).map((c) => c.secretHash),
      ...(await prisma.user.findMany({ select: { password: true } })).map((u) => u.password),
    ].filter((value): value is string => !!value);

    const everything = /* GraphQL */ `
      query ($secret: String!, $ids: [ID!]!) {
        apiKeys(includeRevoked: true) {
          edges { node { id keyName tokenPrefix events { edges { node { id action detail serviceCredential { id tokenPrefix } } } } } }
        }
        serviceCredentials(includeRevoked: true) { edges { node { id name tokenPrefix } } }
        nodes(ids: $ids) { id ... on AuditEvent { detail } }
        verifyApiKey(secret: $secret) { valid code apiKeyId partnerId scopes apiKey { id tokenPrefix } partner { id } }
      }
    `;
    const responses: GraphQLResponse[] = [
      rotated,
      await ask("admin", everything, { secret: keyA.secret, ids: [auditB, auditCredential] }),
      await server.gql(everything, { secret: keyA.secret, ids: [auditB, auditCredential] }, gateway),
      await ask("partnerAdminA", `{ apiKeys(includeRevoked: true) { edges { node { id events { edges { node { detail } } } } } } }`),
      // A duplicate name is refused with CONFLICT: the refusal must not carry the new secret either.
      await ask("partnerAdminA", CREATE_KEY, { input: { partnerId: world.partnerA.globalId, keyName: "a-primary", scopes: ["API_READ"] } }),
    ];
    expect(errorCodes(responses.at(-1)!)).toEqual(["CONFLICT"]);
    for (const response of responses.slice(1)) {
      const body = text(response);
      for (const secret of secrets) expect(body).not.toContain(secret);
      for (const hash of hashes) expect(body).not.toContain(hash);
      expect(body).not.toMatch(/pp[ks]_(live|test)_[0-9A-Za-z]{38}/);
    }
  });
});

describe("audit events", () => {
  it("of partner B, or of a service credential, are out of reach of everyone but staff and B's partnerAdmins", async () => {
    for (const actor of ["partnerAdminA", "developerA", "developerB", "noPartner", "signedOut"] as const) {
      const response = await ask(actor, `query ($ids: [ID!]!) { nodes(ids: $ids) { id } }`, { ids: [auditB, auditCredential] });
      expect(response.errors).toBeUndefined();
      expect(response.data).toEqual({ nodes: [null, null] });
    }
    const own = await ask("partnerAdminB", `query ($id: ID!) { node(id: $id) { id } }`, { id: auditB });
    expect(own.data).toEqual({ node: { id: auditB } });
    // Support reads the audit log (read-only), as admins do.
    const staffRead = await ask("support", `query ($ids: [ID!]!) { nodes(ids: $ids) { id } }`, { ids: [auditB, auditCredential] });
    expect(staffRead.data).toEqual({ nodes: [{ id: auditB }, { id: auditCredential }] });
  });

  it("show partner members no staff actor, and the key's creator only when readable", async () => {
    // An admin rotates partner A's key: its event's actor is staff, whom partner members may not read.
    const rotated = await ask("admin", `mutation ($id: ID!) { rotateApiKey(id: $id, gracePeriodSeconds: 0) { apiKey { id } } }`, {
      id: keyA.id,
    });
    expect(rotated.errors).toBeUndefined();
    const adminKey = await ask("admin", CREATE_KEY, {
      input: { partnerId: world.partnerA.globalId, keyName: "made-by-admin", scopes: ["API_READ"] },
    });
    const adminKeyId: string = adminKey.data!.createApiKey.apiKey.id;
    const response = await ask(
      "partnerAdminA",
      `query ($a: ID!, $b: ID!) {
        a: apiKey(id: $a) { events { edges { node { action actor { id username } } } } }
        b: apiKey(id: $b) { createdBy { id } events { edges { node { actor { id } } } } }
      }`,
      { a: keyA.id, b: adminKeyId },
    );
    expect(response.errors).toBeUndefined();
    expect(text(response)).not.toContain(world.users.admin.globalId);
    expect(text(response)).not.toContain(world.users.admin.username);
    expect(response.data!.b.createdBy).toBeNull();
  });
});

describe("usage of partner B, asked for by name", () => {
  it("usageSummary with B's partnerId or apiKeyId answers zeros, and no endpoint or series count of B", async () => {
    const window = { from: new Date(clock.getTime() - 3_600_000).toISOString(), to: new Date(clock.getTime() + 60_000).toISOString() };
    const query = `query ($p: ID, $k: ID, $from: DateTime, $to: DateTime) {
      usageSummary(partnerId: $p, apiKeyId: $k, from: $from, to: $to, bucket: MINUTE) {
        totalRequests errorRequests byStatusCode { statusCode requestCount }
        byEndpoint { endpoint requestCount } series { requestCount errorRequests }
      }
    }`;
    for (const actor of ["partnerAdminA", "developerA", "noPartner"] as const) {
      for (const variables of [{ p: world.partnerB.globalId }, { k: keyB.id }, { p: world.partnerA.globalId, k: keyB.id }, {}]) {
        const response = await ask(actor, query, { ...variables, ...window });
        expect(response.errors).toBeUndefined();
        const summary = response.data!.usageSummary;
        expect(text(summary)).not.toContain("b-only-endpoint");
        expect(summary.byStatusCode).not.toContainEqual(expect.objectContaining({ statusCode: 503 }));
        expect(summary.errorRequests).toBe(0);
        expect(summary.series.every((point: { errorRequests: number }) => point.errorRequests === 0)).toBe(true);
        if (actor === "noPartner" || "p" in variables || "k" in variables) expect(summary.totalRequests).toBe(0);
      }
    }
    // The control: staff see B's numbers.
    const staffView = await ask("support", query, { p: world.partnerB.globalId, ...window });
    expect(staffView.data!.usageSummary.totalRequests).toBe(777);
  });

  it("filters by B's key or partner inside A's own relations answer nothing", async () => {
    const response = await ask(
      "developerA",
      `query ($a: ID!, $keyA: ID!, $p: ID!, $k: ID!) {
        usageLogs(filter: { apiKeyId: $k }) { edges { node { id } } }
        partner(id: $a) {
          byKey: usageLogs(filter: { apiKeyId: $k }) { edges { node { id } } }
          byPartner: usageLogs(filter: { partnerId: $p }) { edges { node { id } } }
        }
        apiKey(id: $keyA) { usageLogs(filter: { partnerId: $p }) { edges { node { id } } } }
      }`,
      { a: world.partnerA.globalId, keyA: keyA.id, p: world.partnerB.globalId, k: keyB.id },
    );
    expect(response.errors).toBeUndefined();
    expect(response.data).toEqual({
      usageLogs: { edges: [] },
      partner: { byKey: { edges: [] }, byPartner: { edges: [] } },
      apiKey: { usageLogs: { edges: [] } },
    });
  });
});

describe("cursors taken from a staff member's view of partner B", () => {
  it("page only through the viewer's own records, and answer as a cursor to nothing would", async () => {
    const staffLogs = await ask("admin", `{ usageLogs(first: 100) { edges { cursor node { id partner { id } } } } }`);
    const logCursorB = staffLogs.data!.usageLogs.edges.find(
      (edge: { node: { partner: { id: string } } }) => edge.node.partner.id === world.partnerB.globalId,
    ).cursor;
    for (const [after, before] of [[logCursorB, null], [null, logCursorB]]) {
      const response = await ask(
        "developerA",
        `query ($after: String, $before: String) { usageLogs(after: $after, before: $before, ${before ? "last" : "first"}: 100) { edges { node { id partner { id } } } } }`,
        { after, before },
      );
      expect(response.errors).toBeUndefined();
      expect(text(response)).not.toContain(world.partnerB.globalId);
      expect(text(response)).not.toContain(logB);
    }

    const staffKeys = await ask("admin", `{ apiKeys(first: 100) { edges { cursor node { id } } } }`);
    const keyCursorB = staffKeys.data!.apiKeys.edges.find((edge: { node: { id: string } }) => edge.node.id === keyB.id).cursor;
    // The same position in the list, naming a key that does not exist.
    const [list, time, idB] = Buffer.from(keyCursorB, "base64url").toString().split(":");
    expect(idB).toBe(rawId(keyB.id));
    const missingCursor = Buffer.from(`${list}:${time}:0${idB!.slice(1)}`).toString("base64url");
    const withB = await ask("developerA", `query ($c: String) { apiKeys(after: $c, first: 100) { edges { node { id } } } }`, {
      c: keyCursorB,
    });
    const withMissing = await ask(
      "developerA",
      `query ($c: String) { apiKeys(after: $c, first: 100) { edges { node { id } } } }`,
      { c: missingCursor },
    );
    expect(withB.errors).toBeUndefined();
    expect(text(withB)).not.toContain(keyB.id);
    // A cursor naming B's key must answer exactly as one naming no key: otherwise the page tells
    // partner A that B's id exists (and where it sorts).
    expect(withB).toEqual(withMissing);
  });
});

describe("a partner's docs through the partner", () => {
  it("count and list only published docs for its members, whatever they ask", async () => {
    for (const actor of ["developerA", "partnerAdminA"] as const) {
      const response = await ask(
        actor,
        `query ($id: ID!) { partner(id: $id) { developerDocs(includeDrafts: true) { totalCount edges { node { id } } } } }`,
        { id: world.partnerA.globalId },
      );
      expect(response.errors).toBeUndefined();
      expect(response.data!.partner.developerDocs).toEqual({ totalCount: 1, edges: [{ node: { id: docs.publishedA } }] });
    }
    const staffView = await ask(
      "support",
      `query ($id: ID!) { partner(id: $id) { developerDocs(includeDrafts: true) { totalCount } } }`,
      { id: world.partnerA.globalId },
    );
    expect(staffView.data!.partner.developerDocs.totalCount).toBe(2);
  });
});

describe("refused writes do not tell a foreign id from a missing one", () => {
  it("key writes, partner writes and doc writes answer FORBIDDEN alike, and change nothing", async () => {
    const missing = (typeName: string) => world.globalId(typeName, "01900000-0000-7000-8000-000000000000");
    const cases: Array<[Actor, string, string, string]> = [
      ["partnerAdminA", `mutation ($id: ID!) { revokeApiKey(id: $id) { id } }`, keyB.id, missing("APIKey")],
      ["partnerAdminA", `mutation ($id: ID!) { rotateApiKey(id: $id, gracePeriodSeconds: 0) { secret } }`, keyB.id, missing("APIKey")],
      ["partnerAdminA", `mutation ($id: ID!) { updatePartner(id: $id, input: { name: "x" }) { id } }`, world.partnerB.globalId, missing("PartnerOrganization")],
      [
        "partnerAdminA",
        `mutation ($id: ID!) { createApiKey(input: { partnerId: $id, keyName: "b-primary", scopes: [API_READ] }) { secret } }`,
        world.partnerB.globalId,
        missing("PartnerOrganization"),
      ],
      ["developerA", `mutation ($id: ID!) { updateDeveloperDoc(id: $id, input: { title: "x" }) { id } }`, docs.publishedB, missing("DeveloperDoc")],
    ];
    for (const [actor, query, foreign, absent] of cases) {
      const a = await ask(actor, query, { id: foreign });
      const b = await ask(actor, query, { id: absent });
      expect(errorCodes(a), query).toEqual(["FORBIDDEN"]);
      expect(a.errors![0]!.message).toBe(b.errors![0]!.message);
      expect(errorCodes(b)).toEqual(["FORBIDDEN"]);
    }
    const stored = await server.app.services.prisma.apiKey.findUniqueOrThrow({ where: { id: rawId(keyB.id) } });
    expect(stored).toMatchObject({ revokedAt: null, rotatedAt: null, isActive: true });
  });
});

describe("streams opened before the viewer's rights changed", () => {
  const CREATED = `subscription { usageLogCreated { id partner { id } } }`;
  const LIVE = `query @live { usageLogs(first: 5) { edges { node { id } } } }`;

  async function openStreams(token: string) {
    const client = server.ws({ connectionParams: { authorization: `Bearer ${token}` } });
    const streams: ResultStream[] = [
      wsStream(client, CREATED),
      sseStream(server.url, CREATED, {}, token),
      sseStream(server.url, LIVE, {}, token),
    ];
    const recordA = () => server.gql(RECORD_USAGE, { events: [event(keyA2.id)] }, gateway);
    // Each subscriber is listening once it has received an event.
    for (const stream of streams.slice(0, 2)) expect(await triggerUntilReceived(stream, recordA)).toBeTruthy();
    expect(await streams[2]!.next()).toBeTruthy();
    return streams;
  }

  it.each([
    [
      "moved out of the partner",
      "developer" as const,
      (userGid: string) => `mutation { setUserPartner(userId: "${userGid}", partnerId: null) { id } }`,
    ],
    [
      "demoted from partnerAdmin",
      "partnerAdmin" as const,
      (userGid: string) => `mutation { setUserRole(userId: "${userGid}", role: developer) { id } }`,
    ],
  ])("end when the viewer is %s", async (_what, role, change) => {
    const username = `moved-${randomBytes(3).toString("hex")}`;
    const user = await createUser(server, username, role, world.partnerA.id);
    const streams = await openStreams(user.token);
    const changed = await ask("admin", change(user.globalId));
    expect(changed.errors).toBeUndefined();
    for (const stream of streams) await stream.ended;
    const counts = streams.map((stream) => stream.received.length);
    await server.gql(RECORD_USAGE, { events: [event(keyA2.id)] }, gateway);
    expect(streams.map((stream) => stream.received.length)).toEqual(counts);
    expect(errorCodes(await server.gql(`{ viewer { id } }`, {}, user.token))).toEqual(["UNAUTHENTICATED"]);
  });
});

describe("a raw graphql-ws connection", () => {
  it("refuses a token that does not authenticate at connection_init", async () => {
    const socket = new WebSocket(server.url.replace(/^http/, "ws"), "graphql-transport-ws");
    await new Promise((resolve) => socket.once("open", resolve));
    const closed = new Promise<number>((resolve) => socket.once("close", (code) => resolve(code)));
    socket.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${keyB.secret}` } }));
    expect(await closed).toBe(4403);
  });
});

describe("a revoked service credential", () => {
  it("is refused on a graphql-ws connection opened before the revocation", async () => {
    const created = await ask("admin", `mutation { createServiceCredential(name: "ws-gateway") { secret serviceCredential { id } } }`);
    const { secret, serviceCredential } = created.data!.createServiceCredential;
    const client = server.ws({ connectionParams: { authorization: `Bearer ${secret}` } });
    const VERIFY = `query ($s: String!) { verifyApiKey(secret: $s) { valid apiKey { id } } }`;
    const before = await wsStream(client, VERIFY, { s: keyB.secret }).next();
    expect(before?.data).toMatchObject({ verifyApiKey: { valid: true } });
    const revoked = await ask("admin", `mutation ($id: ID!) { revokeServiceCredential(id: $id) { isActive } }`, {
      id: serviceCredential.id,
    });
    expect(revoked.data).toEqual({ revokeServiceCredential: { isActive: false } });
    const after = wsStream(client, VERIFY, { s: keyB.secret });
    const reason = await after.ended;
    expect(text(after.received)).not.toContain(keyB.id);
    expect(after.received.some((result) => result.data?.verifyApiKey)).toBe(false);
    expect(reason).not.toBe("complete");
  });
});

describe("with LOG_LEVEL=debug", () => {
  it("logs no password, session token, key or credential secret, nor any stored hash", async () => {
    const logs = captureLogs("debug");
    const debugServer = await startTestServer({ env: { LOG_LEVEL: "debug" }, logger: logs.logger });
    try {
      const debugWorld = await createWorld(debugServer);
      const secrets: string[] = [debugWorld.users.admin.token, debugWorld.users.partnerAdminA.token];
      const wrongPassword = `not-the-password-${randomBytes(6).toString("hex")}`;
      await debugServer.gql(`mutation ($i: LoginInput!) { login(input: $i) { token } }`, {
        i: { login: debugWorld.users.developerA.username, password: wrongPassword },
      });
      const created = await debugServer.gql(
        CREATE_KEY,
        { input: { partnerId: debugWorld.partnerA.globalId, keyName: "logged?", scopes: ["USAGE_WRITE"] } },
        debugWorld.users.partnerAdminA.token,
      );
      const key = created.data!.createApiKey;
      const rotated = await debugServer.gql(
        `mutation ($id: ID!) { rotateApiKey(id: $id, gracePeriodSeconds: 60) { secret } }`,
        { id: key.apiKey.id },
        debugWorld.users.partnerAdminA.token,
      );
      const credential = await debugServer.gql(
        `mutation { createServiceCredential(name: "debug-gw") { secret } }`,
        {},
        debugWorld.users.admin.token,
      );
      const gatewaySecret: string = credential.data!.createServiceCredential.secret;
      secrets.push(key.secret, rotated.data!.rotateApiKey.secret, gatewaySecret, wrongPassword);
      await debugServer.gql(`query ($s: String!) { verifyApiKey(secret: $s) { valid } }`, { s: key.secret }, gatewaySecret);
      await debugServer.gql(RECORD_USAGE, { events: [event(key.apiKey.id), { ...event(key.apiKey.id), apiKeyId: null, apiKeySecret: key.secret }] }, gatewaySecret);
      // Refused input is logged at debug level: its log lines must not carry the caller's token.
      await debugServer.gql(
        `mutation { createDeveloperDoc(input: { title: "t", slug: "nul", content: "a\\u0000b", apiVersion: "v1" }) { id } }`,
        {},
        debugWorld.users.admin.token,
      );
      const prisma = debugServer.app.services.prisma;
      const hashes = [
        ...(await prisma.apiKey.findMany()).flatMap((k) => [k.secretHash, k.previousSecretHash]),
        ...(await prisma.serviceCredential.findMany()).map((c) => c.secretHash),
        ...(await prisma.user.findMany()).map((u) => u.password),
      ].filter((value): value is string => !!value);
      const logged = logs.text();
      expect(logged).toContain(`"msg":"request"`);
      for (const secret of [...secrets, ...hashes]) expect(logged).not.toContain(secret);
      expect(logged).not.toContain("correct horse battery staple");
    } finally {
      await debugServer.close();
    }
  });
});

describe("a stream whose session expires", () => {
  it("ends when the session does, like a logout", async () => {
    const user = await createUser(server, `expiring-${randomBytes(3).toString("hex")}`, "developer", world.partnerA.id);
    const client = server.ws({ connectionParams: { authorization: `Bearer ${user.token}` } });
    const stream = wsStream(client, `subscription { usageLogCreated { id endpoint } }`);
    const recordA = (endpoint: string) => server.gql(RECORD_USAGE, { events: [{ ...event(keyA2.id), endpoint }] }, gateway);
    expect(await triggerUntilReceived(stream, () => recordA("/before"))).toBeTruthy();
    const session = await server.app.services.prisma.session.findFirstOrThrow({ where: { userId: user.id } });
    const saved = clock;
    clock = new Date(session.expiresAt.getTime() + 1000);
    try {
      expect(errorCodes(await server.gql(`{ viewer { id } }`, {}, user.token))).toEqual(["UNAUTHENTICATED"]);
      await recordA("/after");
      await recordA("/after");
      // The stream ends, and nothing recorded after the expiry reaches it (events recorded
      // before it may still have been on their way).
      await stream.ended;
      expect(text(stream.received)).not.toContain("/after");
    } finally {
      clock = saved;
    }
  });
});

describe("a stream whose session expired before the viewer's rights changed", () => {
  it("delivers nothing of the old partner once the viewer has left it", async () => {
    const user = await createUser(server, `leaver-${randomBytes(3).toString("hex")}`, "developer", world.partnerA.id);
    const stream = sseStream(server.url, `subscription { usageLogCreated { id endpoint } }`, {}, user.token);
    const recordA = (endpoint: string) => server.gql(RECORD_USAGE, { events: [{ ...event(keyA2.id), endpoint }] }, gateway);
    expect(await triggerUntilReceived(stream, () => recordA("/before"))).toBeTruthy();
    const session = await server.app.services.prisma.session.findFirstOrThrow({ where: { userId: user.id } });
    const saved = clock;
    clock = new Date(session.expiresAt.getTime() + 1000);
    try {
      // The admin's own session expired too: they sign in again.
      const login = await server.gql(`mutation ($i: LoginInput!) { login(input: $i) { token } }`, {
        i: { login: world.users.admin.username, password: TEST_PASSWORD },
      });
      const moved = await server.gql(
        `mutation ($u: ID!) { setUserPartner(userId: $u, partnerId: null) { id } }`,
        { u: user.globalId },
        login.data!.login.token,
      );
      expect(moved.errors).toBeUndefined();
      await recordA("/after");
      await recordA("/after");
      // The user no longer belongs to partner A: the stream ends, and nothing recorded after the
      // move reaches it (events recorded before it may still be on their way).
      await stream.ended;
      expect(text(stream.received)).not.toContain("/after");
    } finally {
      clock = saved;
      stream.close();
    }
  });
});
