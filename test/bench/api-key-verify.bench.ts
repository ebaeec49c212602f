import { performance } from "node:perf_hooks";
import { encodeGlobalID } from "@pothos/plugin-relay";
import { startTestServer } from "../support/server.js";
import { watchedVerifier } from "../support/verifier.js";
import { createUser } from "../support/users.js";
import { printFigures, summarise } from "./stats.js";

const IN_PROCESS_VERIFICATIONS = Number(process.env.BENCH_VERIFICATIONS ?? 200_000);
const HTTP_REQUESTS = Number(process.env.BENCH_HTTP_REQUESTS ?? 5_000);
const HTTP_CONCURRENCY = Number(process.env.BENCH_HTTP_CONCURRENCY ?? 16);
const KEYS = 100;

/**
 * Verification of cached keys: straight through the verifier (what recordUsage and verifyApiKey
 * call), and as the gateway calls it over HTTP with a service credential. Runs on the embedded
 * database, or TEST_DATABASE_URL's server when set.
 */
export default async function run(): Promise<void> {
  const server = await startTestServer({ watchStatements: true });
  try {
    const { prisma, serviceCredentials } = server.app.services;
    const watched = watchedVerifier(server, () => new Date());
    const apiKeyVerifier = watched.verifier;
    const partner = await prisma.partnerOrganization.create({ data: { name: "Bench" } });
    const admin = await createUser(server, "bench-admin", "admin");
    const partnerId = encodeGlobalID("PartnerOrganization", partner.id);
    const keySecrets: string[] = [];
    for (let i = 0; i < KEYS; i++) {
      const created = await server.gql<{ createApiKey: { secret: string } }>(
        `mutation ($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret } }`,
        { input: { partnerId, keyName: `bench-${i}`, scopes: ["USAGE_READ", "USAGE_WRITE"] } },
        admin.token,
      );
      if (!created.data?.createApiKey) throw new Error(JSON.stringify(created.errors));
      keySecrets.push(created.data.createApiKey.secret);
    }
    const { secret: gatewayToken } = await serviceCredentials.issue({ name: "bench-gateway", actorUserId: null });
    for (const secret of keySecrets) await apiKeyVerifier.verify(secret);
    const readsBefore = watched.databaseReads;

    // In process.
    const latencies = new Array<number>(IN_PROCESS_VERIFICATIONS);
    const started = performance.now();
    for (let i = 0; i < IN_PROCESS_VERIFICATIONS; i++) {
      const t0 = performance.now();
      const result = await apiKeyVerifier.verify(keySecrets[i % KEYS]!, { requiredScopes: ["usage:write"] });
      latencies[i] = performance.now() - t0;
      if (!result.valid) throw new Error(`unexpected ${result.code}`);
    }
    printFigures("verify, in process (cached)", summarise(latencies, (performance.now() - started) / 1000), "verifications");

    // Over HTTP, as the gateway; `{ __typename }` first, as the server's own floor for comparison.
    const overHttp = async (label: string, request: (i: number) => Promise<boolean>, unit: string) => {
      const httpLatencies: number[] = [];
      let next = 0;
      const worker = async () => {
        while (next < HTTP_REQUESTS) {
          const i = next++;
          const t0 = performance.now();
          const ok = await request(i);
          httpLatencies.push(performance.now() - t0);
          if (!ok) throw new Error(`${label}: request ${i} failed`);
        }
      };
      const httpStarted = performance.now();
      await Promise.all(Array.from({ length: HTTP_CONCURRENCY }, worker));
      printFigures(label, summarise(httpLatencies, (performance.now() - httpStarted) / 1000), unit);
    };
    await overHttp(
      `{ __typename } over HTTP, baseline`,
      async () => (await server.gql(`{ __typename }`, {}, gatewayToken)).data?.__typename === "Query",
      "requests",
    );
    const query = `query ($secret: String!) { verifyApiKey(secret: $secret, requiredScopes: [USAGE_WRITE]) { valid code scopes } }`;
    await overHttp(
      `verifyApiKey over HTTP (${HTTP_CONCURRENCY} conc.)`,
      async (i) =>
        !!(await server.gql<{ verifyApiKey: { valid: boolean } }>(query, { secret: keySecrets[i % KEYS] }, gatewayToken)).data
          ?.verifyApiKey.valid,
      "verifications",
    );
    const reads = watched.databaseReads - readsBefore;
    const serverLookups = server.statements!.texts.filter((text) => text.includes('"secretHash" = ')).length;
    console.log(
      `key lookups in the database: ${reads} during the in-process run, ${serverLookups} by the server in all ` +
        `(one per key, when each was first verified)`,
    );
    console.log(
      "note: client and server share this process, so the HTTP figures include the client's own cost;\n" +
        "      the gateway's credential is authenticated from a cache too (src/auth/service-credentials.ts).",
    );
    await watched.close();
  } finally {
    await server.close();
  }
}
