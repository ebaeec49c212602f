import { performance } from "node:perf_hooks";
import { USAGE_COUNT_CAP } from "../../src/schema/usage-log.js";
import { startTestServer } from "../support/server.js";
import { createUser } from "../support/users.js";
import { printFigures, summarise } from "./stats.js";

const ROWS = Number(process.env.BENCH_USAGE_ROWS ?? 200_000);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 200);
const BATCH = 10_000;

/**
 * What `totalCount` costs on a large usage table: a page of usage logs without it (the baseline,
 * in the same run), with the capped count, and the exact count it replaces (run directly, since the
 * API never runs it). Every answer is checked. Runs on TEST_DATABASE_URL's server when set, else
 * on the embedded database.
 */
export default async function run(): Promise<void> {
  const server = await startTestServer();
  try {
    const { prisma } = server.app.services;
    const partner = await prisma.partnerOrganization.create({ data: { name: "Count bench" } });
    const admin = await createUser(server, "count-bench-admin", "admin");
    const key = await prisma.apiKey.create({
      data: { keyName: "bench", tokenPrefix: "ppk_live_bench", scopes: [], partnerId: partner.id, createdById: admin.id, secretHash: "bench" },
    });
    const now = Date.now();
    for (let start = 0; start < ROWS; start += BATCH) {
      await prisma.usageLog.createMany({
        data: Array.from({ length: Math.min(BATCH, ROWS - start) }, (_, i) => ({
          partnerId: partner.id,
          apiKeyId: key.id,
          endpoint: "/v1/things",
          method: "GET" as const,
          statusCode: 200,
          occurredAt: new Date(now - (start + i) * 1000),
        })),
      });
    }
    await prisma.$executeRawUnsafe(`ANALYZE "UsageLog"`);
    console.log(`${ROWS.toLocaleString("en")} usage logs, ${REQUESTS} requests per row, one at a time`);

    const time = async (label: string, call: () => Promise<void>) => {
      for (let i = 0; i < 5; i++) await call(); // warm-up
      const latencies: number[] = [];
      const started = performance.now();
      for (let i = 0; i < REQUESTS; i++) {
        const t0 = performance.now();
        await call();
        latencies.push(performance.now() - t0);
      }
      const figures = summarise(latencies, (performance.now() - started) / 1000);
      printFigures(label, figures, "req");
      return figures.p50Ms;
    };
    const page = (fields: string) => async () => {
      const response = await server.gql<{ usageLogs: { totalCount?: number; totalCountCapped?: boolean; edges: unknown[] } }>(
        `{ usageLogs(first: 20) { ${fields} edges { node { id } } } }`,
        {},
        admin.token,
      );
      const logs = response.data?.usageLogs;
      if (!logs || logs.edges.length !== 20) throw new Error(`bad answer: ${JSON.stringify(response)}`);
      if (fields && (logs.totalCount !== Math.min(ROWS, USAGE_COUNT_CAP) || logs.totalCountCapped !== ROWS > USAGE_COUNT_CAP)) {
        throw new Error(`bad count: ${JSON.stringify(logs)}`);
      }
    };
    const baseline = await time("page of 20 (baseline)", page(""));
    const counted = await time("page of 20 + capped totalCount", page("totalCount totalCountCapped"));
    const exact = await time("exact count(*) alone (not in the API)", async () => {
      if ((await prisma.usageLog.count({ where: { partnerId: partner.id } })) !== ROWS) throw new Error("bad exact count");
    });
    const baselineAgain = await time("page of 20 (baseline, again)", page(""));
    const base = (baseline + baselineAgain) / 2;
    console.log(
      `p50 ratios to the baseline page: with capped totalCount ${(counted / base).toFixed(2)}×, ` +
        `exact count alone ${(exact / base).toFixed(2)}×`,
    );
  } finally {
    await server.close();
  }
}
