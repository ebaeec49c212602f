// Attacks on signing in and up: parallel guesses (HTTP, one WebSocket, two instances), a Redis
// that goes away, logins that name more than one account, searches read as patterns, cheap
// sign-up probing, and forged or rotated client addresses.
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { PGlite } from "@electric-sql/pglite";
import type { Client } from "graphql-ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { LOGIN_FAILURES_PER_ACCOUNT, LOGIN_FAILURES_PER_ADDRESS, SIGN_UPS_PER_ADDRESS } from "../src/auth/login-throttle.js";
import { ConfigError, loadConfig } from "../src/config.js";
import { TEST_DATABASE_URL, TEST_REDIS_URL } from "./support/database.js";
import { HAS_REDIS_SERVER, OwnRedis } from "./support/redis.js";
import { errorCodes, sharedSecrets, startTestServer, type GraphQLResponse, type TestServer } from "./support/server.js";
import { createUser, TEST_PASSWORD } from "./support/users.js";

const LOGIN = /* GraphQL */ `
  mutation Login($input: LoginInput!) { login(input: $input) { token user { id username } } }
`;
const SIGN_UP = /* GraphQL */ `
  mutation SignUp($input: SignUpInput!) { signUp(input: $input) { token user { id username } } }
`;

/** POSTs one operation with extra request headers (a forwarded address, say). */
async function post(
  server: TestServer,
  query: string,
  variables: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<GraphQLResponse & { status: number }> {
  const response = await fetch(server.url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/graphql-response+json, application/json", ...headers },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, ...((await response.json()) as GraphQLResponse) };
}

const login = (server: TestServer, name: string, password: string, headers?: Record<string, string>) =>
  post(server, LOGIN, { input: { login: name, password } }, headers);
const from = (address: string) => ({ "x-forwarded-for": address });

/** One operation over an open graphql-ws client: its single result. */
function overWs(client: Client, query: string, variables: Record<string, unknown>): Promise<GraphQLResponse> {
  return new Promise((resolve, reject) => {
    let result: GraphQLResponse | undefined;
    client.subscribe(
      { query, variables },
      { next: (value) => (result = value as GraphQLResponse), error: reject, complete: () => resolve(result!) },
    );
  });
}

/** A graphql-ws client whose upgrade request carries the given headers. */
function wsWithHeaders(server: TestServer, headers: Record<string, string>): Client {
  class WebSocketWithHeaders extends WebSocket {
    constructor(address: string, protocols?: string | string[]) {
      super(address, protocols, { headers });
    }
  }
  return server.ws({ webSocketImpl: WebSocketWithHeaders });
}

/** How many answers carry each error code (`OK` for none). */
function tally(responses: GraphQLResponse[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const response of responses) {
    const code = String(errorCodes(response)[0] ?? "OK");
    counts[code] = (counts[code] ?? 0) + 1;
  }
  return counts;
}

const unique = (prefix: string) => `${prefix}-${randomBytes(4).toString("hex")}`;

describe("sign-in over the socket's address (TRUST_PROXY unset)", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  describe("parallel guesses", () => {
    it("checks only 10 of 40 wrong passwords sent at once; the rest answer RATE_LIMITED", async () => {
      const { username } = await createUser(server, unique("burst"));
      const answers = await Promise.all(
        Array.from({ length: 40 }, (_, i) => login(server, username, `wrong guess ${i}`)),
      );
      expect(tally(answers)).toEqual({ UNAUTHENTICATED: LOGIN_FAILURES_PER_ACCOUNT, RATE_LIMITED: 40 - LOGIN_FAILURES_PER_ACCOUNT });
      for (const refused of answers.filter((answer) => errorCodes(answer)[0] === "RATE_LIMITED")) {
        expect(refused.status).toBe(429);
        expect(refused.errors![0]!.extensions!.retryAfterSeconds).toBeGreaterThan(0);
      }
      expect(errorCodes(await login(server, username, TEST_PASSWORD))).toEqual(["RATE_LIMITED"]);
    });

    it("does not check the right password just because it came with 29 simultaneous guesses", async () => {
      const { username } = await createUser(server, unique("hidden"));
      const answers = await Promise.all([
        ...Array.from({ length: 29 }, (_, i) => login(server, username, `wrong guess ${i}`)),
        login(server, username, TEST_PASSWORD),
      ]);
      const counts = tally(answers);
      // At most 10 passwords are checked (an 11th only if it takes the point a success gave back).
      expect(counts.UNAUTHENTICATED ?? 0).toBeLessThanOrEqual(LOGIN_FAILURES_PER_ACCOUNT);
      expect(counts.RATE_LIMITED).toBeGreaterThanOrEqual(30 - LOGIN_FAILURES_PER_ACCOUNT - 1);
    });

    it("checks only 10 of 30 logins sent over one WebSocket", async () => {
      const { username } = await createUser(server, unique("socket"));
      const client = server.ws();
      const answers = await Promise.all(
        Array.from({ length: 30 }, (_, i) => overWs(client, LOGIN, { input: { login: username, password: `wrong ${i}` } })),
      );
      expect(tally(answers)).toEqual({ UNAUTHENTICATED: LOGIN_FAILURES_PER_ACCOUNT, RATE_LIMITED: 30 - LOGIN_FAILURES_PER_ACCOUNT });
      const locked = await overWs(client, LOGIN, { input: { login: username, password: TEST_PASSWORD } });
      expect(errorCodes(locked)).toEqual(["RATE_LIMITED"]);
      expect(locked.errors![0]!.extensions!.retryAfterSeconds).toBeGreaterThan(0);
    });
  });

  describe("a login names exactly one account", () => {
    it("treats % and _ in a login as themselves, not as wildcards", async () => {
      const victim = await createUser(server, unique("victim1"));
      for (const pattern of ["vict%", "%", `${victim.username.slice(0, -1)}_`, victim.username.replace("-", "_")]) {
        const answer = await login(server, pattern, TEST_PASSWORD);
        expect(errorCodes(answer), pattern).toEqual(["UNAUTHENTICATED"]);
      }
      const exact = await login(server, victim.username.toUpperCase(), TEST_PASSWORD);
      expect(exact.data?.login).toMatchObject({ user: { username: victim.username } });
    });

    it("lets wild_x sign up next to wild-x, and refuses WILD-X", async () => {
      const suffix = randomBytes(3).toString("hex");
      await createUser(server, `wild-x${suffix}`);
      const underscore = await post(server, SIGN_UP, {
        input: { username: `wild_x${suffix}`, email: `underscore-${suffix}@example.test`, password: TEST_PASSWORD },
      });
      expect(underscore.errors).toBeUndefined();
      expect(underscore.data!.signUp).toMatchObject({ user: { username: `wild_x${suffix}` } });
      const upper = await post(server, SIGN_UP, {
        input: { username: `WILD-X${suffix}`, email: `upper-${suffix}@example.test`, password: TEST_PASSWORD },
      });
      expect(errorCodes(upper)).toEqual(["CONFLICT"]);
      expect(upper.errors![0]!.extensions).toMatchObject({ field: "username" });
    });

    it("counts every spelling of one account (username in any case, email) in one budget", async () => {
      const { username } = await createUser(server, unique("spelled"));
      const spellings = [username, username.toUpperCase(), `${username}@example.test`, `${username.toUpperCase()}@EXAMPLE.TEST`];
      for (let attempt = 0; attempt < LOGIN_FAILURES_PER_ACCOUNT; attempt++) {
        const answer = await login(server, spellings[attempt % spellings.length]!, `wrong ${attempt}`);
        expect(errorCodes(answer)).toEqual(["UNAUTHENTICATED"]);
      }
      for (const spelling of spellings) {
        expect(errorCodes(await login(server, spelling, TEST_PASSWORD)), spelling).toEqual(["RATE_LIMITED"]);
      }
    });

    it("keeps the compared form in the database: rows inserted or renamed directly sign in by any case", async () => {
      const prisma = server.app.services.prisma;
      const { id } = await createUser(server, unique("before"));
      const renamed = unique("Renamed");
      await prisma.user.update({ where: { id }, data: { username: renamed } });
      expect((await login(server, renamed.toLowerCase(), TEST_PASSWORD)).data?.login).toMatchObject({ user: { username: renamed } });

      const inserted = unique("Raw");
      await prisma.$executeRaw`INSERT INTO "User" (id, username, email, password, role, "updatedAt")
        SELECT ${randomBytes(8).toString("hex")}, ${inserted}, ${`${inserted}@example.test`}, password, 'developer', now()
        FROM "User" WHERE id = ${id}`;
      expect((await login(server, inserted.toUpperCase(), TEST_PASSWORD)).data?.login).toMatchObject({ user: { username: inserted } });
      await expect(prisma.user.create({ data: { username: inserted.toUpperCase(), email: `${unique("x")}@example.test`, password: "x" } })).rejects.toMatchObject({ code: "P2002" });
    });
  });

  describe("searches match literally", () => {
    let admin: string;
    let partnerId: string;
    beforeAll(async () => {
      admin = (await createUser(server, unique("search-admin"), "admin")).token;
      const prisma = server.app.services.prisma;
      const names = ["100% Organic", "Plain Goods", "Under_Score Ltd", "UnderXScore Ltd", "Back\\slash Co"];
      await prisma.partnerOrganization.createMany({ data: names.map((name) => ({ name })) });
      const partner = await prisma.partnerOrganization.findFirstOrThrow({ where: { name: "Plain Goods" } });
      partnerId = Buffer.from(`PartnerOrganization:${partner.id}`).toString("base64");
      const ownerId = (await prisma.user.findFirstOrThrow({ where: { role: "admin" } })).id;
      for (const [slug, title, content] of [
        ["percent", "Up to 100% uptime", "plain words"],
        ["underscore", "snake_case fields", "plain words"],
        ["plain", "Plain guide", "no special characters here"],
        ["backslash", "Paths", "C:\\path"],
      ] as const) {
        await prisma.developerDoc.create({
          data: { slug, title, content, apiVersion: "v7", isPublished: true, publishedAt: new Date(), ownerId, partnerId: partner.id },
        });
      }
    });

    const partnerNames = async (search: string) => {
      const answer = await post(server, `query ($s: String) { partners(search: $s, first: 100) { edges { node { name } } } }`, { s: search }, { authorization: `Bearer ${admin}` });
      expect(answer.errors).toBeUndefined();
      return (answer.data!.partners as { edges: Array<{ node: { name: string } }> }).edges.map((edge) => edge.node.name).sort();
    };
    const docSlugs = async (search: string) => {
      const answer = await post(
        server,
        `query ($s: String, $p: ID!) {
          developerDocs(search: $s, apiVersion: "v7", first: 100) { edges { node { slug } } }
          partner(id: $p) { developerDocs(search: $s, first: 100) { edges { node { slug } } } }
        }`,
        { s: search, p: partnerId },
        { authorization: `Bearer ${admin}` },
      );
      expect(answer.errors).toBeUndefined();
      const data = answer.data as {
        developerDocs: { edges: Array<{ node: { slug: string } }> };
        partner: { developerDocs: { edges: Array<{ node: { slug: string } }> } };
      };
      const root = data.developerDocs.edges.map((edge) => edge.node.slug).sort();
      expect(data.partner.developerDocs.edges.map((edge) => edge.node.slug).sort()).toEqual(root);
      return root;
    };

    it("partners(search) treats %, _ and \\ as themselves", async () => {
      expect(await partnerNames("%")).toEqual(["100% Organic"]);
      expect(await partnerNames("under_score")).toEqual(["Under_Score Ltd"]);
      expect(await partnerNames("\\")).toEqual(["Back\\slash Co"]);
      expect(await partnerNames("PLAIN")).toEqual(["Plain Goods"]);
    });

    it("developerDocs(search) and PartnerOrganization.developerDocs(search) treat %, _ and \\ as themselves", async () => {
      expect(await docSlugs("%")).toEqual(["percent"]);
      expect(await docSlugs("_")).toEqual(["underscore"]);
      expect(await docSlugs("\\")).toEqual(["backslash"]);
      expect(await docSlugs("PLAIN")).toEqual(["percent", "plain", "underscore"]);
    });
  });

  it("does not take a client's own X-Forwarded-For as its address", async () => {
    const { username } = await createUser(server, unique("forged"));
    for (let attempt = 0; attempt < LOGIN_FAILURES_PER_ACCOUNT; attempt++) {
      await login(server, username, `wrong ${attempt}`, from(`203.0.113.${attempt}`));
    }
    expect(errorCodes(await login(server, username, TEST_PASSWORD, from("198.51.100.77")))).toEqual(["RATE_LIMITED"]);
  });
});

describe("behind a trusted proxy (TRUST_PROXY=1)", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: { TRUST_PROXY: "1" } });
  });
  afterAll(async () => {
    await server?.close();
  });

  it("gives each forwarded address its own budget, and ignores what the client wrote left of the proxy's entry", async () => {
    const { username } = await createUser(server, unique("proxied"));
    for (let attempt = 0; attempt < LOGIN_FAILURES_PER_ACCOUNT; attempt++) {
      expect(errorCodes(await login(server, username, `wrong ${attempt}`, from("203.0.113.10")))).toEqual(["UNAUTHENTICATED"]);
    }
    expect(errorCodes(await login(server, username, TEST_PASSWORD, from("203.0.113.10")))).toEqual(["RATE_LIMITED"]);
    expect(errorCodes(await login(server, username, TEST_PASSWORD, from("198.51.100.1, 203.0.113.10")))).toEqual(["RATE_LIMITED"]);
    expect(errorCodes(await login(server, username, TEST_PASSWORD, from("203.0.113.11")))).toEqual([]);
  });

  it("reads the upgrade request's X-Forwarded-For over WebSockets", async () => {
    const { username } = await createUser(server, unique("proxied-ws"));
    const first = wsWithHeaders(server, from("203.0.113.20"));
    for (let attempt = 0; attempt < LOGIN_FAILURES_PER_ACCOUNT; attempt++) {
      await overWs(first, LOGIN, { input: { login: username, password: `wrong ${attempt}` } });
    }
    expect(errorCodes(await overWs(first, LOGIN, { input: { login: username, password: TEST_PASSWORD } }))).toEqual(["RATE_LIMITED"]);
    expect(errorCodes(await login(server, username, TEST_PASSWORD, from("203.0.113.20")))).toEqual(["RATE_LIMITED"]);
    const second = wsWithHeaders(server, from("203.0.113.21"));
    expect(errorCodes(await overWs(second, LOGIN, { input: { login: username, password: TEST_PASSWORD } }))).toEqual([]);
  });

  it("counts an IPv6 client's whole /64 as one address", async () => {
    const { username } = await createUser(server, unique("six"));
    for (let attempt = 0; attempt < LOGIN_FAILURES_PER_ACCOUNT; attempt++) {
      await login(server, username, `wrong ${attempt}`, from(`2001:db8:1:2::${attempt + 1}`));
    }
    expect(errorCodes(await login(server, username, TEST_PASSWORD, from("2001:db8:1:2:ffff::1")))).toEqual(["RATE_LIMITED"]);
    expect(errorCodes(await login(server, username, TEST_PASSWORD, from("2001:db8:1:3::1")))).toEqual([]);
  });

  it("checks only 100 of 110 parallel guesses at different accounts from one address", async () => {
    const address = "203.0.113.30";
    const answers = await Promise.all(
      Array.from({ length: LOGIN_FAILURES_PER_ADDRESS + 10 }, (_, i) => login(server, `sprayed-${i}`, "a guess at it", from(address))),
    );
    expect(tally(answers)).toEqual({ UNAUTHENTICATED: LOGIN_FAILURES_PER_ADDRESS, RATE_LIMITED: 10 });
    expect(errorCodes(await login(server, "sprayed-0", "a guess at it", from("203.0.113.31")))).toEqual(["UNAUTHENTICATED"]);
  });

  it("allows 20 sign-ups per address an hour, counted before any work, and answers 429 beyond", async () => {
    const address = from("203.0.113.40");
    const attempts = SIGN_UPS_PER_ADDRESS + 5;
    const answers = await Promise.all(
      Array.from({ length: attempts }, (_, i) => {
        const username = unique(`joiner${i}`);
        return post(server, SIGN_UP, { input: { username, email: `${username}@example.test`, password: TEST_PASSWORD } }, address);
      }),
    );
    expect(tally(answers)).toEqual({ OK: SIGN_UPS_PER_ADDRESS, RATE_LIMITED: 5 });
    const refused = answers.find((answer) => errorCodes(answer)[0] === "RATE_LIMITED")!;
    expect(refused.status).toBe(429);
    expect(refused.errors![0]!.extensions!.retryAfterSeconds).toBeGreaterThan(0);
    // Probing whether a name is taken spends the same budget.
    const probe = await post(server, SIGN_UP, { input: { username: "admin", email: "probe@example.test", password: TEST_PASSWORD } }, address);
    expect(errorCodes(probe)).toEqual(["RATE_LIMITED"]);
    const elsewhere = await post(server, SIGN_UP, { input: { username: unique("other"), email: `${unique("o")}@example.test`, password: TEST_PASSWORD } }, from("203.0.113.41"));
    expect(elsewhere.errors).toBeUndefined();
  });
});

describe.each([
  ["a hop count (TRUST_PROXY=2)", "2"],
  ["trusted subnets (TRUST_PROXY=loopback, 10.0.0.0/8)", "loopback, 10.0.0.0/8"],
])("behind two proxies, %s", (_label, trustProxy) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: { TRUST_PROXY: trustProxy } });
  });
  afterAll(async () => {
    await server?.close();
  });

  it("counts the address the outer proxy saw, whichever inner proxy passed it on", async () => {
    const { username } = await createUser(server, unique("two-hops"));
    for (let attempt = 0; attempt < LOGIN_FAILURES_PER_ACCOUNT; attempt++) {
      await login(server, username, `wrong ${attempt}`, from(`192.0.2.${attempt}, 198.51.100.5, 10.1.2.3`));
    }
    expect(errorCodes(await login(server, username, TEST_PASSWORD, from("198.51.100.5, 10.9.9.9")))).toEqual(["RATE_LIMITED"]);
    expect(errorCodes(await login(server, username, TEST_PASSWORD, from("198.51.100.5, 10.1.2.3")))).toEqual(["RATE_LIMITED"]);
    expect(errorCodes(await login(server, username, TEST_PASSWORD, from("198.51.100.6, 10.1.2.3")))).toEqual([]);
  });
});

describe("TRUST_PROXY values", () => {
  const trustProxy = (value: string | undefined) => loadConfig({ TRUST_PROXY: value }).trustProxy;

  it("reads false, true (one hop), hop counts and proxy subnets, and refuses anything else at start", () => {
    expect(trustProxy(undefined)).toBe(false);
    expect(trustProxy("false")).toBe(false);
    expect(trustProxy("true")).toBe(1);
    expect(trustProxy("2")).toBe(2);
    expect(trustProxy("loopback, 10.0.0.0/8")).toEqual(["loopback", "10.0.0.0/8"]);
    expect(() => loadConfig({ TRUST_PROXY: "yes please" })).toThrow(ConfigError);
  });
});

describe.skipIf(!TEST_REDIS_URL || !TEST_DATABASE_URL)("parallel guesses across instances (Redis)", () => {
  it("checks only 10 of 40 wrong passwords sent at once to two instances", async () => {
    const env = { ...sharedSecrets(), REDIS_CHANNEL_PREFIX: `pp-test-${randomBytes(6).toString("hex")}:` };
    const first = await startTestServer({ env, redis: true });
    const second = await startTestServer({ env, redis: true, database: { url: first.config.databaseUrl, drop: async () => {} } });
    try {
      const { username } = await createUser(first, unique("shared"));
      const answers = await Promise.all(
        Array.from({ length: 40 }, (_, i) => login(i % 2 ? first : second, username, `wrong guess ${i}`)),
      );
      expect(tally(answers)).toEqual({ UNAUTHENTICATED: LOGIN_FAILURES_PER_ACCOUNT, RATE_LIMITED: 40 - LOGIN_FAILURES_PER_ACCOUNT });
      expect(errorCodes(await login(second, `${username}@example.test`, TEST_PASSWORD))).toEqual(["RATE_LIMITED"]);
    } finally {
      await second.close();
      await first.close();
    }
  });
});

describe.skipIf(!HAS_REDIS_SERVER)("when Redis goes away", () => {
  it("keeps signing in, and keeps throttling in process, until it is back", async () => {
    const redis = await OwnRedis.create();
    const server = await startTestServer({
      env: { REDIS_URL: redis.url, REDIS_CHANNEL_PREFIX: `pp-test-${randomBytes(6).toString("hex")}:` },
    });
    try {
      const { username } = await createUser(server, unique("outage"));
      await redis.stop();

      expect((await login(server, username, TEST_PASSWORD)).data?.login).toMatchObject({ user: { username } });
      for (let attempt = 0; attempt < LOGIN_FAILURES_PER_ACCOUNT; attempt++) {
        expect(errorCodes(await login(server, username, `wrong ${attempt}`))).toEqual(["UNAUTHENTICATED"]);
      }
      const locked = await login(server, username, TEST_PASSWORD);
      expect(errorCodes(locked)).toEqual(["RATE_LIMITED"]);
      expect(locked.status).toBe(429);
      const signUp = await post(server, SIGN_UP, { input: { username: unique("during"), email: `${unique("d")}@example.test`, password: TEST_PASSWORD } });
      expect(signUp.errors).toBeUndefined();
    } finally {
      // Back on the same port, so the instance's Redis clients close as they would in production.
      await redis.start();
      await server.close();
      await redis.stop();
    }
  });
});

describe("the migration to a stored lower-cased username", () => {
  it("fills it for the rows already there, and keeps it right on insert and rename", async () => {
    const migrations = new URL("../prisma/migrations/", import.meta.url);
    const folders = readdirSync(migrations).filter((name) => /^\d{14}_/.test(name)).sort();
    const index = folders.findIndex((name) => name.endsWith("_username_lower"));
    expect(index).toBeGreaterThan(0);
    const db = new PGlite();
    try {
      const apply = async (folder: string) => db.exec(readFileSync(new URL(`${folder}/migration.sql`, migrations), "utf8"));
      for (const folder of folders.slice(0, index)) await apply(folder);
      await db.exec(`INSERT INTO "User" (id, username, email, password, "updatedAt")
        VALUES ('u1', 'Old_Timer', 'old@example.test', 'x', now()), ('u2', 'plain', 'plain@example.test', 'x', now())`);
      await apply(folders[index]!);
      const rows = await db.query<{ id: string; usernameLower: string }>(`SELECT id, "usernameLower" FROM "User" ORDER BY id`);
      expect(rows.rows).toEqual([
        { id: "u1", usernameLower: "old_timer" },
        { id: "u2", usernameLower: "plain" },
      ]);
      await db.exec(`UPDATE "User" SET username = 'Plainer' WHERE id = 'u2'`);
      expect((await db.query(`SELECT "usernameLower" FROM "User" WHERE id = 'u2'`)).rows).toEqual([{ usernameLower: "plainer" }]);
      await expect(db.exec(`INSERT INTO "User" (id, username, email, password, "updatedAt") VALUES ('u3', 'OLD_TIMER', 'o3@example.test', 'x', now())`)).rejects.toThrow(/usernameLower/);
    } finally {
      await db.close();
    }
  });
});
