import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { seed } from "./http.bench.js";
import { summarise } from "./stats.js";
import { BENCH_ADMIN, benchServerPlace } from "./support/portal.js";
import { projectRoot, startScript, type Started } from "./support/processes.js";

/**
 * `npm run bench -- fanout [N,N…]`: live fan-out against the framework it runs on. In one run, a
 * bare graphql-yoga + graphql-ws server with an in-memory pub/sub (`subscription { ev { t } }`)
 * and this server (`usageLogCreated { endpoint }` as staff, fed by `recordUsage` of one event; on
 * TEST_DATABASE_URL's PostgreSQL and TEST_REDIS_URL's Redis when set, else embedded and in
 * memory). For each N (BENCH_FANOUT_N or the argument, default 1000,10000), N subscribers in a
 * separate process (BENCH_FANOUT_PER_SOCKET subscriptions per socket, default 1), then 30
 * single-event publishes 100 ms apart; latency runs from the publishing call returning to each
 * subscriber receiving the event. Prints p50, p99, lost events, closed sockets, p99 as a multiple
 * of bare Yoga's, and the server's memory per idle subscriber (RSS before and after connecting).
 */
const SIZES = (process.env.BENCH_FANOUT_N ?? process.argv[3] ?? "1000,10000").split(",").map(Number);
const PER_SOCKET = Number(process.env.BENCH_FANOUT_PER_SOCKET ?? 1);
const PUBLISHES = Number(process.env.BENCH_FANOUT_PUBLISHES ?? 30);
const INTERVAL_MS = 100;

const wallClock = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Target {
  label: string;
  url: string;
  pid: number;
  token?: string;
  query: string;
  /** Publishes event `n` and answers the label subscribers receive it under. */
  publish(n: number): Promise<string>;
}

interface Measured {
  label: string;
  subscribers: number;
  p50: number;
  p99: number;
  /** From the publishing call being made instead (includes the call itself: recordUsage's SQL for this server). */
  p99FromCall: number;
  lost: number;
  closed: number;
  bytesPerSubscriber: number;
  /** The server's CPU time over the publishes (publishing included) per event delivered. */
  cpuUsPerDelivery: number;
}

function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = /VmRSS:\s+(\d+)\s+kB/.exec(status);
  return kb ? Number(kb[1]) * 1024 : Number.NaN;
}

/** The subscribers' process and a request/answer over its IPC channel. */
/** CPU time the process has used (user + system), in milliseconds. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  // utime and stime are fields 14 and 15 of the file, in clock ticks (100 per second on Linux).
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

function startClients() {
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", "test/bench/support/fanout-clients.ts"], {
    cwd: projectRoot,
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const ask = <T,>(message: Record<string, unknown>, answer: string) =>
    new Promise<T>((resolve) => {
      const onMessage = (reply: { type: string }) => {
        if (reply.type !== answer) return;
        child.off("message", onMessage);
        resolve(reply as T);
      };
      child.on("message", onMessage);
      child.send(message);
    });
  return {
    ask,
    close: () =>
      new Promise<void>((resolve) => {
        child.once("exit", () => resolve());
        child.send({ type: "close" });
      }),
  };
}

async function measure(target: Target, subscribers: number): Promise<Measured> {
  const clients = startClients();
  try {
    const before = rssBytes(target.pid);
    const { refused } = await clients.ask<{ refused: number }>(
      { type: "connect", url: target.url, token: target.token, query: target.query, subscribers, perSocket: PER_SOCKET },
      "connected",
    );
    // Everyone still connected is listening once a warm-up event reached them all (a server that
    // dropped sockets while they connected loses those subscribers' events: counted as lost).
    const listening = subscribers - refused;
    let best = 0;
    let stalled = 0;
    for (let attempt = 0; ; attempt++) {
      if (attempt > 240) throw new Error(`${target.label}: not all ${listening} subscribers listening`);
      // Sockets dropped after their acknowledgement never listen: go on once the count stops growing.
      if (stalled >= 20 && best > 0) {
        console.warn(`  ${target.label}: ${best} of ${listening} connected subscribers listening; going on`);
        break;
      }
      // A publish can time out while thousands of sockets connect at once; only the warm-up retries.
      const label = await target.publish(1_000_000 + attempt).catch((error: Error) => {
        console.warn(`  warm-up publish failed, retrying: ${error.message.split("\n")[0]}`);
        return null;
      });
      await sleep(500);
      if (label === null) continue;
      const { received } = await clients.ask<{ received: number }>({ type: "count", label }, "count");
      if (received >= listening) break;
      stalled = received > best ? 0 : stalled + 1;
      best = Math.max(best, received);
    }
    await sleep(1000);
    const after = rssBytes(target.pid);

    const cpuBefore = cpuMs(target.pid);
    const published: Array<{ label: string; calledAt: number; returnedAt: number }> = [];
    for (let n = 0; n < PUBLISHES; n++) {
      const calledAt = wallClock();
      const label = await target.publish(n);
      published.push({ label, calledAt, returnedAt: wallClock() });
      await sleep(INTERVAL_MS);
    }
    // Late deliveries: wait until all arrived, or 10 s without progress.
    let last = -1;
    for (let waited = 0; waited < 100; waited++) {
      const { received } = await clients.ask<{ received: number }>({ type: "count", label: published.at(-1)!.label }, "count");
      if (received >= listening) break;
      if (received !== last) waited = 0;
      last = received;
      await sleep(100);
    }
    const cpu = cpuMs(target.pid) - cpuBefore;
    const report = await clients.ask<{ times: number[][]; closed: number }>(
      { type: "report", labels: published.map((p) => p.label) },
      "report",
    );
    const latencies: number[] = [];
    const fromCall: number[] = [];
    let lost = 0;
    report.times.forEach((times, i) => {
      lost += Math.max(0, subscribers - times.length);
      // An event may reach a subscriber before the publishing call's answer reaches the driver: 0 ms.
      for (const at of times) latencies.push(Math.max(0, at - published[i]!.returnedAt));
      for (const at of times) fromCall.push(at - published[i]!.calledAt);
    });
    const figures = summarise(latencies, 1);
    return {
      label: target.label,
      subscribers,
      p50: figures.p50Ms,
      p99: figures.p99Ms,
      p99FromCall: summarise(fromCall, 1).p99Ms,
      lost,
      closed: report.closed,
      bytesPerSubscriber: (after - before) / subscribers,
      cpuUsPerDelivery: (cpu * 1000) / Math.max(1, latencies.length),
    };
  } finally {
    await clients.close();
  }
}

function print(rows: Measured[]) {
  const bare = new Map(rows.filter((row) => row.label.startsWith("bare")).map((row) => [row.subscribers, row]));
  const header = ["what", "N", "p50 ms", "p99 ms", "lost", "closed", "p99 × bare", "p99 from call ms", "CPU µs/delivery", "KB/subscriber"];
  const lines = rows.map((row) => {
    const base = bare.get(row.subscribers);
    return [
      row.label,
      row.subscribers.toLocaleString("en"),
      row.p50.toFixed(1),
      row.p99.toFixed(1),
      String(row.lost),
      String(row.closed),
      base ? (row.p99 / Math.max(base.p99, 0.1)).toFixed(2) : "n/a",
      row.p99FromCall.toFixed(1),
      row.cpuUsPerDelivery.toFixed(1),
      (row.bytesPerSubscriber / 1024).toFixed(1),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((line) => line[i]!.length)));
  const format = (cells: string[]) => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ");
  console.log(format(header));
  for (const line of lines) console.log(format(line));
}

export default async function run(): Promise<void> {
  const databaseServer = process.env.TEST_DATABASE_URL || undefined;
  const redisUrl = process.env.TEST_REDIS_URL || undefined;
  const children: Started[] = [];
  let place: Awaited<ReturnType<typeof benchServerPlace>> | undefined;
  try {
    const bare = await startScript("test/bench/servers/bare-fanout.ts", {}, /listening on (\S+)/);
    children.push(bare);
    const bareUrl = bare.match[1]!;

    place = await benchServerPlace({ databaseServer, redisUrl });
    const { env } = place;
    let where = place.database ? "PostgreSQL" : "EMBEDDED PGlite";
    where += redisUrl ? ", Redis pub/sub" : ", in-memory pub/sub (set TEST_REDIS_URL for Redis)";
    const portal = await startScript("src/start.mjs", env, /GraphiQL:\s+(http[^\s"\\]+)/);
    children.push(portal);
    const url = portal.match[1]!;
    const { partners, gateway } = await seed(url, BENCH_ADMIN);
    const login = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: `mutation ($input: LoginInput!) { login(input: $input) { token } }`, variables: { input: BENCH_ADMIN } }),
    });
    const adminToken = ((await login.json()) as { data: { login: { token: string } } }).data.login.token;
    const secret = partners[0]!.secrets[0]!;

    const targets: Target[] = [
      {
        label: "bare graphql-yoga + graphql-ws, in-memory",
        url: bareUrl,
        pid: bare.child.pid!,
        query: "subscription { ev { t } }",
        async publish(n) {
          const response = await fetch(new URL(`/publish?t=${n}`, bareUrl), { method: "POST" });
          if (!response.ok) throw new Error(`publish: HTTP ${response.status}`);
          await response.text();
          return JSON.stringify({ ev: { t: n } });
        },
      },
      {
        label: "this server: usageLogCreated { endpoint } as staff",
        url,
        pid: portal.child.pid!,
        token: adminToken,
        query: "subscription { usageLogCreated { endpoint } }",
        async publish(n) {
          const endpoint = `/fanout/${n}`;
          const response = await fetch(url, {
            method: "POST",
            headers: { "content-type": "application/json", authorization: `Bearer ${gateway}` },
            body: JSON.stringify({
              query: `mutation ($events: [UsageEventInput!]!) { recordUsage(events: $events) { accepted } }`,
              variables: { events: [{ apiKeySecret: secret, endpoint, method: "GET", statusCode: 200 }] },
            }),
          });
          const body = (await response.json()) as { data?: { recordUsage: { accepted: number } } };
          if (body.data?.recordUsage.accepted !== 1) throw new Error(`recordUsage: ${JSON.stringify(body)}\n${portal.output().slice(-3000)}`);
          return JSON.stringify({ usageLogCreated: { endpoint } });
        },
      },
    ];

    console.log(
      `this server on ${where}; ${PUBLISHES} single-event publishes ${INTERVAL_MS} ms apart; ` +
        `${PER_SOCKET} subscription(s) per socket; subscribers in a separate process`,
    );
    const rows: Measured[] = [];
    for (const subscribers of SIZES) {
      for (const target of targets) rows.push(await measure(target, subscribers));
    }
    console.log(
      "latency: from the publishing call returning to each subscriber receiving (0 when it arrived first); " +
        "p99 from call: from the call being made; CPU: the server's user+system time " +
        "over the publishes ÷ events delivered (steadier than latency on a shared machine); KB/subscriber: server RSS growth ÷ N",
    );
    print(rows);
  } finally {
    for (const child of children.reverse()) await child.stop();
    await place?.cleanUp();
  }
}
