import { performance } from "node:perf_hooks";
import { encodeGlobalID } from "@pothos/plugin-relay";
import { startTestServer } from "../support/server.js";
import { createUser } from "../support/users.js";
import { printFigures, summarise, type Figures } from "./stats.js";

const REQUESTS = Number(process.env.BENCH_HTTP_REQUESTS ?? 5_000);
const CONCURRENCY = Number(process.env.BENCH_HTTP_CONCURRENCY ?? 16);
const ROUNDS = 2;
const KEYS = 100;

/**
 * The gateway's key verification over REST (`POST /api/api-keys/verify`, run by SOFA through the
 * same Yoga) against the same call over GraphQL, on one server with the same cached keys. The two
 * alternate, twice each, so drift in the machine's load falls on both; every answer is checked.
 */
export default async function run(): Promise<void> {
  const server = await startTestServer({ watchStatements: true });
  try {
    const { prisma, serviceCredentials } = server.app.services;
    const api = server.url.replace(/\/graphql$/, "/api");
    const partner = await prisma.partnerOrganization.create({ data: { name: "Bench" } });
    const admin = await createUser(server, "bench-admin", "admin");
    const partnerId = encodeGlobalID("PartnerOrganization", partner.id);
    const secrets: string[] = [];
    for (let i = 0; i < KEYS; i++) {
      const created = await server.gql<{ createApiKey: { secret: string } }>(
        `mutation ($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret } }`,
        { input: { partnerId, keyName: `bench-${i}`, scopes: ["USAGE_WRITE"] } },
        admin.token,
      );
      if (!created.data?.createApiKey) throw new Error(JSON.stringify(created.errors));
      secrets.push(created.data.createApiKey.secret);
    }
    const { secret: gateway } = await serviceCredentials.issue({ name: "bench-gateway", actorUserId: null });

    const query = `query ($secret: String!) { verifyApiKey(secret: $secret, requiredScopes: [USAGE_WRITE]) { valid code scopes expiresAt apiKeyId partnerId } }`;
    const overGraphQL = async (i: number) =>
      (await server.gql<{ verifyApiKey: { valid: boolean } }>(query, { secret: secrets[i % KEYS] }, gateway)).data?.verifyApiKey
        .valid === true;
    const overRest = async (i: number) => {
      const response = await fetch(`${api}/api-keys/verify`, {
        method: "POST",
        headers: { authorization: `Bearer ${gateway}`, "content-type": "application/json" },
        body: JSON.stringify({ secret: secrets[i % KEYS], requiredScopes: ["USAGE_WRITE"] }),
      });
      return response.status === 200 && ((await response.json()) as { valid: boolean }).valid === true;
    };

    const measure = async (request: (i: number) => Promise<boolean>): Promise<Figures> => {
      const latencies: number[] = [];
      let next = 0;
      const worker = async () => {
        while (next < REQUESTS) {
          const i = next++;
          const t0 = performance.now();
          if (!(await request(i))) throw new Error(`request ${i} was not answered VALID`);
          latencies.push(performance.now() - t0);
        }
      };
      const started = performance.now();
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
      return summarise(latencies, (performance.now() - started) / 1000);
    };

    // Warm both paths (caches, JIT) before measuring.
    for (let i = 0; i < KEYS; i++) if (!(await overGraphQL(i)) || !(await overRest(i))) throw new Error("warm-up failed");
    const lookupsBefore = server.statements!.texts.length;
    const rate = (figures: Figures) => figures.operations / figures.seconds;
    const baseline: Figures[] = [];
    const rest: Figures[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const graphql = await measure(overGraphQL);
      printFigures(`GraphQL verifyApiKey, baseline (${round})`, graphql, "req");
      baseline.push(graphql);
      const routed = await measure(overRest);
      printFigures(`REST /api/api-keys/verify (${round})`, routed, "req");
      rest.push(routed);
    }
    const mean = (list: Figures[], of: (figures: Figures) => number) => list.reduce((sum, f) => sum + of(f), 0) / list.length;
    const measured = server.statements!.texts.slice(lookupsBefore);
    const lookups = measured.filter((text) => text.includes('"secretHash" = ')).length;
    console.log(
      `ratio REST ÷ GraphQL: throughput ${(mean(rest, rate) / mean(baseline, rate)).toFixed(2)}, ` +
        `p50 ${(mean(rest, (f) => f.p50Ms) / mean(baseline, (f) => f.p50Ms)).toFixed(2)}, ` +
        `p99 ${(mean(rest, (f) => f.p99Ms) / mean(baseline, (f) => f.p99Ms)).toFixed(2)}`,
    );
    const kinds = new Map<string, number>();
    for (const text of measured) {
      const kind = text.trim().split(/\s+/).slice(0, 3).join(" ");
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    }
    console.log(
      `SQL while measuring: ${measured.length} statements, ${lookups} of them secret lookups; by kind: ` +
        JSON.stringify(Object.fromEntries(kinds)),
    );
    console.log(`${REQUESTS} requests per run, ${CONCURRENCY} concurrent; client and server share this process`);
  } finally {
    await server.close();
  }
}
