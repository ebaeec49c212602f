// `npm run service-credential` beside running instances (PostgreSQL and Redis): what it creates
// shows in the next answer, though the same query was answered from the response cache before,
// and what it revokes is refused from the next request on.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TEST_DATABASE_URL, TEST_REDIS_URL } from "./support/database.js";
import { errorCodes, startTestServer, type TestServer } from "./support/server.js";
import { createUser, type SignedInUser } from "./support/users.js";

const LIST = `{ serviceCredentials(first: 20) { edges { node { name } } } }`;

describe.skipIf(!TEST_DATABASE_URL || !TEST_REDIS_URL)("the service-credential command line", () => {
  let server: TestServer;
  let staff: SignedInUser;
  beforeAll(async () => {
    server = await startTestServer({ redis: true });
    staff = await createUser(server, "cli-staff", "admin");
  });
  afterAll(() => server?.close());

  const cli = (...args: string[]) =>
    promisify(execFile)(process.execPath, ["--import", "tsx", "src/cli/service-credential.ts", ...args], {
      env: {
        ...process.env,
        DATABASE_URL: server.config.databaseUrl,
        JWT_SECRET: server.config.jwt.secret,
        API_KEY_HASH_SECRET: server.config.apiKeys.hashSecret,
        REDIS_URL: server.config.redisUrl,
        REDIS_CHANNEL_PREFIX: server.config.redisChannelPrefix,
        LOG_LEVEL: "silent",
      },
    });
  const names = async () => {
    const answer = await server.gql<{ serviceCredentials: { edges: Array<{ node: { name: string } }> } }>(LIST, {}, staff.token);
    return answer.data!.serviceCredentials.edges.map((edge) => edge.node.name);
  };

  it("creates a credential the running instance lists and accepts at once, and revokes it at once", async () => {
    expect(await names()).toEqual([]);
    // Asked again: the answer the instance cached, still true.
    expect(await names()).toEqual([]);

    const { stdout } = await cli("create", "edge-gateway");
    const secret = stdout.trim();
    expect(secret).toMatch(/^pps_/);
    expect(await names()).toEqual(["edge-gateway"]);
    expect((await server.gql(`{ __typename }`, {}, secret)).data).toEqual({ __typename: "Query" });

    await cli("revoke", "edge-gateway");
    const refused = await server.gql(`{ __typename }`, {}, secret);
    expect(errorCodes(refused)).toEqual(["UNAUTHENTICATED"]);
  });
});
