import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LOGIN_FAILURES_PER_ACCOUNT } from "../src/auth/login-throttle.js";
import { SESSION_ENDED_CLOSE_CODE } from "../src/http/websocket.js";
import { randomBytes } from "node:crypto";
import { TEST_DATABASE_URL, TEST_REDIS_URL } from "./support/database.js";
import { errorCodes, sharedSecrets, startTestServer, type TestServer } from "./support/server.js";

const SIGN_UP = /* GraphQL */ `
  mutation SignUp($input: SignUpInput!) {
    signUp(input: $input) { token expiresAt user { id username email role partner { id } } }
  }
`;
const LOGIN = /* GraphQL */ `
  mutation Login($input: LoginInput!) { login(input: $input) { token user { id username } } }
`;
const VIEWER = /* GraphQL */ `query Viewer { viewer { id username email role } }`;
const LOGOUT = /* GraphQL */ `mutation Logout { logout }`;

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

const password = "a long enough passphrase";

describe("sign-up, login, viewer, logout", () => {
  it("runs the whole session flow and refuses the token after logout (HTTP and WebSocket)", async () => {
    const signUp = await server.gql(SIGN_UP, {
      input: { username: "  Ada  ", email: "  Ada@Example.COM ", password },
    });
    expect(signUp.errors).toBeUndefined();
    expect(signUp.data!.signUp.user).toMatchObject({
      username: "Ada",
      email: "ada@example.com",
      role: "developer",
      partner: null,
    });

    const login = await server.gql(LOGIN, { input: { login: "ada@example.com", password } });
    expect(login.errors).toBeUndefined();
    const token: string = login.data!.login.token;
    expect(token).not.toEqual(signUp.data!.signUp.token);

    const viewer = await server.gql(VIEWER, {}, token);
    expect(viewer.data!.viewer).toMatchObject({ username: "Ada", email: "ada@example.com" });

    // The close is expected; keep the client from reporting it as an error.
    const ws = server.ws({ lazy: false, onNonLazyError: () => {}, connectionParams: { authorization: `Bearer ${token}` } });
    const overWs = await new Promise<unknown>((resolve, reject) => {
      ws.subscribe({ query: VIEWER }, { next: resolve, error: reject, complete: () => {} });
    });
    expect(overWs).toMatchObject({ data: { viewer: { username: "Ada" } } });
    const wsClosed = new Promise<number>((resolve) => ws.on("closed", (event) => resolve((event as CloseEvent).code)));

    const logout = await server.gql(LOGOUT, {}, token);
    expect(logout.data).toEqual({ logout: true });

    expect(await wsClosed).toBe(SESSION_ENDED_CLOSE_CODE);
    const after = await server.gql(VIEWER, {}, token);
    expect(after.status).toBe(401);
    expect(errorCodes(after)).toEqual(["UNAUTHENTICATED"]);

    const reopened = server.ws({ connectionParams: { authorization: `Bearer ${token}` } });
    const refused = await new Promise<unknown>((resolve) => {
      reopened.subscribe({ query: VIEWER }, { next: () => resolve("answered"), error: resolve, complete: () => {} });
    });
    expect((refused as CloseEvent).code).toBe(4403);

    // The other session (from sign-up) is untouched by this logout.
    const other = await server.gql(VIEWER, {}, signUp.data!.signUp.token);
    expect(other.data!.viewer).toMatchObject({ username: "Ada" });
  });

  it("answers viewer: null when signed out, and logout needs a session", async () => {
    expect((await server.gql(VIEWER)).data).toEqual({ viewer: null });
    expect(errorCodes(await server.gql(LOGOUT))).toEqual(["UNAUTHENTICATED"]);
  });

  it("refuses forged, malformed and wrongly signed tokens", async () => {
    const login = await server.gql(LOGIN, { input: { login: "ada", password } });
    const token: string = login.data!.login.token;
    const [header, payload] = token.split(".");
    const forged = `${header}.${payload}.${"A".repeat(43)}`;
    const unsigned = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString("base64url")}.${payload}.`;
    for (const bad of [forged, unsigned, "not-a-token", `${token}x`]) {
      expect(errorCodes(await server.gql(VIEWER, {}, bad))).toEqual(["UNAUTHENTICATED"]);
    }
  });
});

describe("bad input", () => {
  it("refuses a duplicate username or email, after normalising, with CONFLICT", async () => {
    await server.gql(SIGN_UP, { input: { username: "grace", email: "grace@example.com", password } });
    const sameName = await server.gql(SIGN_UP, { input: { username: " GRACE ", email: "g2@example.com", password } });
    expect(errorCodes(sameName)).toEqual(["CONFLICT"]);
    expect(sameName.errors![0]!.extensions).toMatchObject({ field: "username" });
    const sameEmail = await server.gql(SIGN_UP, { input: { username: "grace2", email: " Grace@EXAMPLE.com", password } });
    expect(errorCodes(sameEmail)).toEqual(["CONFLICT"]);
    expect(sameEmail.errors![0]!.extensions).toMatchObject({ field: "email" });
    expect(await server.app.services.prisma.user.count({ where: { username: { startsWith: "grace" } } })).toBe(1);
  });

  it("answers an unknown user and a wrong password identically", async () => {
    const unknown = await server.gql(LOGIN, { input: { login: "nobody-here", password } });
    const wrong = await server.gql(LOGIN, { input: { login: "grace", password: "not the password" } });
    expect(errorCodes(unknown)).toEqual(["UNAUTHENTICATED"]);
    expect(unknown.status).toBe(wrong.status);
    expect(unknown.errors).toEqual(wrong.errors);
  });

  it.each([
    ["a malformed email", { username: "mallory", email: "not-an-email", password }, "email"],
    ["a short password", { username: "mallory", email: "m@example.com", password: "short" }, "password"],
    ["an oversized password", { username: "mallory", email: "m@example.com", password: "x".repeat(10_000) }, "password"],
    ["an oversized username", { username: "m".repeat(500), email: "m@example.com", password }, "username"],
    ["a username with spaces", { username: "mal lory", email: "m@example.com", password }, "username"],
  ])("refuses %s with BAD_USER_INPUT and stores nothing", async (_label, input, field) => {
    const response = await server.gql(SIGN_UP, { input });
    expect(errorCodes(response)).toEqual(["BAD_USER_INPUT"]);
    expect(response.errors![0]!.extensions!.issues).toEqual(
      expect.arrayContaining([expect.objectContaining({ path: ["input", field] })]),
    );
    expect(await server.app.services.prisma.user.count({ where: { email: "m@example.com" } })).toBe(0);
  });

  it("refuses a request body over the size limit before parsing it", async () => {
    const response = await fetch(server.url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: VIEWER, variables: { padding: "x".repeat(2 * 1024 * 1024) } }),
    });
    expect(response.status).toBe(413);
    expect(((await response.json()) as { errors: Array<{ extensions: { code: string } }> }).errors[0]!.extensions.code).toBe(
      "BAD_USER_INPUT",
    );
  });

  it("never exposes a password or its hash", async () => {
    const response = await server.gql(`{ viewer { password } }`);
    expect(errorCodes(response)).toEqual(["GRAPHQL_VALIDATION_FAILED"]);
    const stored = await server.app.services.prisma.user.findFirstOrThrow({ where: { username: "grace" } });
    expect(stored.password).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
  });
});

describe("the NUL character", () => {
  it("is refused with BAD_USER_INPUT, in variables and in the operation's text, and nothing is stored", async () => {
    const inVariables = await server.gql(SIGN_UP, { input: { username: "nul", email: "nul@example.com", password: `${password}\u0000` } });
    expect(errorCodes(inVariables)).toEqual(["BAD_USER_INPUT"]);
    const inText = await server.gql(
      `mutation { signUp(input: { username: "nul", email: "nul@example.com", password: "a long enough pass\\u0000word" }) { token } }`,
    );
    expect(errorCodes(inText)).toEqual(["BAD_USER_INPUT"]);
    expect(await server.app.services.prisma.user.count({ where: { username: "nul" } })).toBe(0);
  });
});

describe("failed sign-ins", () => {
  it("refuses a login with RATE_LIMITED after 10 failures from one address, even with the right password, and no other login", async () => {
    await server.gql(SIGN_UP, { input: { username: "targeted", email: "targeted@example.com", password } });
    for (let attempt = 0; attempt < LOGIN_FAILURES_PER_ACCOUNT; attempt++) {
      const wrong = await server.gql(LOGIN, { input: { login: "targeted", password: `wrong guess ${attempt}` } });
      expect(errorCodes(wrong)).toEqual(["UNAUTHENTICATED"]);
    }
    const locked = await server.gql(LOGIN, { input: { login: "TARGETED", password } });
    expect(errorCodes(locked)).toEqual(["RATE_LIMITED"]);
    expect(locked.status).toBe(429);
    expect(locked.errors![0]!.extensions!.retryAfterSeconds).toBeGreaterThan(0);
    expect(locked.data?.login ?? null).toBeNull();

    // Another account from the same address still signs in. A success is not counted as a failure,
    // and does not forget the earlier ones either (a sign-in from a shared address must not reset
    // a guesser's count).
    await server.gql(SIGN_UP, { input: { username: "bystander", email: "bystander@example.com", password } });
    for (let attempt = 0; attempt < LOGIN_FAILURES_PER_ACCOUNT - 1; attempt++) {
      await server.gql(LOGIN, { input: { login: "bystander", password: "not it at all" } });
    }
    expect(errorCodes(await server.gql(LOGIN, { input: { login: "bystander", password } }))).toEqual([]);
    expect(errorCodes(await server.gql(LOGIN, { input: { login: "bystander", password: "not it at all" } }))).toEqual([
      "UNAUTHENTICATED",
    ]);
    expect(errorCodes(await server.gql(LOGIN, { input: { login: "bystander", password } }))).toEqual(["RATE_LIMITED"]);
  });
});

describe.skipIf(!TEST_REDIS_URL || !TEST_DATABASE_URL)("failed sign-ins across instances", () => {
  it("counts them in Redis, so a second instance refuses too", async () => {
    const env = { ...sharedSecrets(), REDIS_CHANNEL_PREFIX: `pp-test-${randomBytes(6).toString("hex")}:` };
    const first = await startTestServer({ env, redis: true });
    const database = { url: first.config.databaseUrl, drop: async () => {} };
    const second = await startTestServer({ env, redis: true, database });
    try {
      await first.gql(SIGN_UP, { input: { username: "shared-target", email: "shared@example.com", password } });
      for (let attempt = 0; attempt < LOGIN_FAILURES_PER_ACCOUNT; attempt++) {
        await first.gql(LOGIN, { input: { login: "shared-target", password: `wrong ${attempt}` } });
      }
      expect(errorCodes(await second.gql(LOGIN, { input: { login: "shared-target", password } }))).toEqual(["RATE_LIMITED"]);
    } finally {
      await second.close();
      await first.close();
    }
  });
});

describe("the session's clock", () => {
  it("is the server's for the token as for the session: valid until the server's time passes its expiry, then refused", async () => {
    // A server whose time is years behind the real one: by the real clock, its tokens expired long ago.
    let clock = new Date("2020-01-01T00:00:00.000Z");
    const pinned = await startTestServer({ now: () => clock });
    try {
      const signUp = await pinned.gql(SIGN_UP, { input: { username: "clocked", email: "clocked@example.com", password } });
      expect(signUp.errors).toBeUndefined();
      const { token, expiresAt } = signUp.data!.signUp as { token: string; expiresAt: string };
      expect(new Date(expiresAt).getTime()).toBeLessThan(Date.now());
      expect((await pinned.gql(VIEWER, {}, token)).data?.viewer).toMatchObject({ username: "clocked" });
      // Past its expiry by the server's clock: refused, though the token verified a moment ago.
      clock = new Date(new Date(expiresAt).getTime() + 1000);
      expect(errorCodes(await pinned.gql(VIEWER, {}, token))).toEqual(["UNAUTHENTICATED"]);
    } finally {
      await pinned.close();
    }
  });
});
