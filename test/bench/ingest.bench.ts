import { performance } from "node:perf_hooks";
import type { Client } from "graphql-ws";
import { startTestServer } from "../support/server.js";
import { createGatewayCredential, createKey, createPartner, event, RECORD_USAGE } from "../support/usage.js";
import { createUser } from "../support/users.js";
import { printFigures, summarise } from "./stats.js";

const BATCHES = Number(process.env.BENCH_INGEST_BATCHES ?? 20);
const BATCH_SIZE = 1000;
const SUBSCRIBERS = Number(process.env.BENCH_SUBSCRIBERS ?? 1000);
const SOCKETS = Number(process.env.BENCH_SUBSCRIBER_SOCKETS ?? 100);
const PUSHES = Number(process.env.BENCH_PUSHES ?? 50);

/**
 * recordUsage throughput with batches of 1,000 events, then push latency: from recordUsage
 * returning to each of 1,000 concurrent usageLogCreated subscribers (graphql-ws, spread over
 * 100 sockets) receiving the event. Embedded database, or TEST_DATABASE_URL's server when set.
 */
export default async function run(): Promise<void> {
  const server = await startTestServer();
  try {
    const gateway = await createGatewayCredential(server);
    const partner = await createPartner(server, "Bench usage");
    const keys = await Promise.all(
      Array.from({ length: 10 }, () => createKey(server, partner.id, partner.ownerId)),
    );
    const developer = await createUser(server, "bench-usage-dev", "developer", partner.id);

    // Ingest rate.
    const latencies: number[] = [];
    const started = performance.now();
    for (let b = 0; b < BATCHES; b++) {
      const events = Array.from({ length: BATCH_SIZE }, (_, i) =>
        event(keys[i % keys.length]!, { endpoint: `/v1/bench/${i % 50}`, statusCode: i % 20 === 0 ? 500 : 200 }),
      );
      const t0 = performance.now();
      const response = await server.gql(RECORD_USAGE, { events }, gateway);
      latencies.push(performance.now() - t0);
      if (response.data?.recordUsage.accepted !== BATCH_SIZE) throw new Error(JSON.stringify(response));
    }
    const seconds = (performance.now() - started) / 1000;
    printFigures(`recordUsage, batches of ${BATCH_SIZE}`, { ...summarise(latencies, seconds), operations: BATCHES * BATCH_SIZE }, "events");
    console.log(`  (p50/p99 above are per batch of ${BATCH_SIZE} events)`);

    // Push latency to many subscribers.
    const clients: Client[] = Array.from({ length: SOCKETS }, () =>
      server.ws({ lazy: false, connectionParams: { authorization: `Bearer ${developer.token}` } }),
    );
    const lastSeen = new Map<number, { endpoint: string; at: number }>();
    const disposers = Array.from({ length: SUBSCRIBERS }, (_, i) =>
      clients[i % clients.length]!.subscribe(
        { query: `subscription { usageLogCreated { endpoint } }` },
        {
          next: (value) => {
            const endpoint = (value.data as { usageLogCreated: { endpoint: string } }).usageLogCreated.endpoint;
            lastSeen.set(i, { endpoint, at: performance.now() });
          },
          error: (error) => console.error("subscriber failed", error),
          complete: () => {},
        },
      ),
    );
    // Every subscriber is listening once each has received a warm-up event.
    for (let i = 0; lastSeen.size < SUBSCRIBERS; i++) {
      if (i > 2000) throw new Error(`only ${lastSeen.size} of ${SUBSCRIBERS} subscribers listening`);
      await server.gql(RECORD_USAGE, { events: [event(keys[0]!, { endpoint: "/warm-up" })] }, gateway);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }

    const push: number[] = [];
    const pushStarted = performance.now();
    for (let p = 0; p < PUSHES; p++) {
      const endpoint = `/push/${p}`;
      const response = await server.gql(RECORD_USAGE, { events: [event(keys[0]!, { endpoint })] }, gateway);
      const returned = performance.now();
      if (response.data?.recordUsage.accepted !== 1) throw new Error(JSON.stringify(response));
      const arrived = () => [...lastSeen.values()].filter((seen) => seen.endpoint === endpoint);
      while (arrived().length < SUBSCRIBERS) await new Promise((resolve) => setImmediate(resolve));
      // An event may reach a subscriber before the mutation's response reaches the gateway: 0 ms.
      for (const seen of arrived()) push.push(Math.max(0, seen.at - returned));
    }
    const pushSeconds = (performance.now() - pushStarted) / 1000;
    printFigures(`push to ${SUBSCRIBERS} subscribers`, summarise(push, pushSeconds), "deliveries");
    for (const dispose of disposers) dispose();
  } finally {
    await server.close();
  }
}
