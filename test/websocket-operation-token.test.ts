import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "./support/server.js";
import { triggerUntilReceived, wsStream, type ResultStream } from "./support/streams.js";
import { createGatewayCredential, createKey, createPartner, event, RECORD_USAGE, type TestKey } from "./support/usage.js";
import { createUser, TEST_PASSWORD, type SignedInUser } from "./support/users.js";

// GraphiQL sends `connection_init` with an empty payload and puts its Headers tab in every
// subscribe message's `payload.extensions.headers`.
const VIEWER = /* GraphQL */ `query { viewer { username } }`;
const CREATED = /* GraphQL */ `subscription { usageLogCreated { id endpoint } }`;

const headers = (token: string, name = "Authorization") => ({ headers: { [name]: `Bearer ${token}` } });
const bearer = (token: string) => ({ connectionParams: { authorization: `Bearer ${token}` } });

/** The first result of a stream, or the errors it ended with. */
async function firstOf(stream: ResultStream) {
  const result = await stream.next();
  if (result) return result;
  const reason = await stream.ended;
  return { errors: (Array.isArray(reason) ? reason : []) as Array<{ extensions?: { code?: string } }> };
}
const codeOf = (result: { errors?: Array<{ extensions?: Record<string, unknown> }> }) => result.errors?.[0]?.extensions?.code;

let server: TestServer;
let gateway: string;
let key: TestKey;
let alice: SignedInUser;
let bob: SignedInUser;

async function signIn(username: string): Promise<string> {
  const login = await server.gql(`mutation ($input: LoginInput!) { login(input: $input) { token } }`, {
    input: { login: username, password: TEST_PASSWORD },
  });
  return login.data!.login.token as string;
}

beforeAll(async () => {
  server = await startTestServer();
  gateway = await createGatewayCredential(server);
  const partner = await createPartner(server, "Headers Tab");
  key = await createKey(server, partner.id, partner.ownerId);
  alice = await createUser(server, "op-alice", "developer", partner.id);
  bob = await createUser(server, "op-bob", "developer", partner.id);
});
afterAll(async () => {
  await server?.close();
});

describe("a per-operation Authorization over graphql-ws", () => {
  it("authenticates an operation on an anonymous connection, whatever the header name's case", async () => {
    const client = server.ws();
    for (const name of ["Authorization", "authorization", "AUTHORIZATION"]) {
      const result = await firstOf(wsStream(client, VIEWER, {}, headers(alice.token, name)));
      expect(result, name).toMatchObject({ data: { viewer: { username: "op-alice" } } });
    }
    // Without one, the same connection stays anonymous.
    expect(await firstOf(wsStream(client, VIEWER))).toMatchObject({ data: { viewer: null } });
  });

  it("refuses an operation token that authenticates nobody, as the connection's would be", async () => {
    const client = server.ws();
    for (const token of ["not-a-token", "pps_live_nothing"]) {
      expect(codeOf(await firstOf(wsStream(client, VIEWER, {}, headers(token)))), token).toBe("UNAUTHENTICATED");
    }
    // The connection is still open for operations that are fine.
    expect(await firstOf(wsStream(client, VIEWER, {}, headers(bob.token)))).toMatchObject({
      data: { viewer: { username: "op-bob" } },
    });
  });

  it("never widens what the connection's token allows: another caller's token is FORBIDDEN", async () => {
    const asAlice = server.ws(bearer(alice.token));
    expect(codeOf(await firstOf(wsStream(asAlice, VIEWER, {}, headers(bob.token))))).toBe("FORBIDDEN");
    expect(codeOf(await firstOf(wsStream(asAlice, VIEWER, {}, headers(gateway))))).toBe("FORBIDDEN");
    // Another session of the same user is the same caller.
    const aliceAgain = await signIn("op-alice");
    expect(await firstOf(wsStream(asAlice, VIEWER, {}, headers(aliceAgain)))).toMatchObject({
      data: { viewer: { username: "op-alice" } },
    });

    const asGateway = server.ws(bearer(gateway));
    expect(codeOf(await firstOf(wsStream(asGateway, VIEWER, {}, headers(alice.token))))).toBe("FORBIDDEN");
  });

  it("streams a subscription as the operation's caller, and ends it when that token's session ends", async () => {
    const token = await signIn("op-alice");
    const client = server.ws();
    const stream = wsStream(client, CREATED, {}, headers(token));
    const first = await triggerUntilReceived(stream, () => server.gql(RECORD_USAGE, { events: [event(key)] }, gateway));
    expect(first?.errors).toBeUndefined();
    expect(first?.data).toMatchObject({ usageLogCreated: { endpoint: expect.any(String) } });

    await server.gql(`mutation { logout }`, {}, token);
    expect(await stream.ended).toBe("complete");
    // Only that operation ended: the connection still serves others.
    expect(await firstOf(wsStream(client, VIEWER, {}, headers(bob.token)))).toMatchObject({
      data: { viewer: { username: "op-bob" } },
    });
    expect(codeOf(await firstOf(wsStream(client, VIEWER, {}, headers(token))))).toBe("UNAUTHENTICATED");
  });

  it("runs a @live query as the operation's caller, ended by that token's logout", async () => {
    const token = await signIn("op-bob");
    const live = wsStream(server.ws(), `query @live { viewer { username } }`, {}, headers(token, "authorization"));
    expect(await live.next()).toMatchObject({ data: { viewer: { username: "op-bob" } } });
    await server.gql(`mutation { logout }`, {}, token);
    expect(await live.ended).toBe("complete");
  });

  it("a subscription started without a token is refused, as over HTTP", async () => {
    expect(codeOf(await firstOf(wsStream(server.ws(), CREATED)))).toBe("UNAUTHENTICATED");
  });
});
