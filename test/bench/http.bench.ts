import { mkdtemp, rm } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { brotliDecompressSync, gunzipSync, inflateSync } from "node:zlib";
import autocannon from "autocannon";
import { startScript, type Started } from "./support/processes.js";
import { startStatementProxy, type StatementProxy } from "../support/pg-proxy.js";
import { BENCH_ADMIN, BENCH_PASSWORD, benchServerPlace } from "./support/portal.js";

/**
 * `npm run bench -- http`: the read path against the framework it runs on. In one run: a bare
 * graphql-yoga server from this project's own packages, this server (on TEST_DATABASE_URL's
 * PostgreSQL, with TEST_REDIS_URL's Redis when set; else the embedded database, labelled), and
 * the same 20-key flow written as one `$queryRaw` behind bare Yoga. Each row is loaded with
 * autocannon (20 connections), every response body is compared with the expected one, and the
 * statements one request runs are counted on the wire: on a twin of each server that reaches
 * PostgreSQL through a counting proxy, so that the loaded servers talk to PostgreSQL directly, as
 * in production. Counted twice: a request the twin has not answered before (its caller already
 * known), then the same again (the response cache's case). The 20-key flow is loaded again on an
 * instance with the response cache off.
 *
 * Rounds: V8 optimises each process its own way, and two processes of the same code can differ by
 * a third in CPU per request for their whole life. So the loaded processes (bare Yoga and the
 * servers) are started afresh for each of BENCH_ROUNDS rounds (3 by default), every row is
 * loaded once a round (BENCH_DURATION_S seconds, 5 by default, after BENCH_WARMUP_S, 2) between
 * two runs of that round's bare Yoga, and the table gives each row's median over the rounds,
 * with every round's ratio beside it.
 */
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 5);
const WARMUP_S = Number(process.env.BENCH_WARMUP_S ?? 2);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 20);
const KEYS_PER_PARTNER = 20;

/** The processes a round loads: started afresh each round. */
type Target = "bare" | "portal" | "uncached" | "raw";

interface Row {
  label: string;
  target: Target;
  query: string;
  variables?: Record<string, unknown>;
  token?: string;
  /** Sent as Accept-Encoding: the answer then comes compressed. */
  acceptEncoding?: string;
  /** Checks the first response; its exact body is then expected of every response under load. */
  check(body: unknown): string | null;
  /** The server's twin behind the statement-counting proxy, when statements are counted. */
  twin?: string;
}

interface Measured {
  rps: number;
  p50: number;
  p99: number;
  bad: number;
}

/** Statements of one request the server has not answered before, then of the same request again. */
type Statements = { first: number; repeat: number };

async function post(url: string, query: string, variables?: Record<string, unknown>, token?: string) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const text = await response.text();
  return { status: response.status, text, json: JSON.parse(text) as { data?: any; errors?: unknown[] } };
}

async function gql<T = any>(url: string, query: string, variables?: Record<string, unknown>, token?: string): Promise<T> {
  const { json } = await post(url, query, variables, token);
  if (json.errors || !json.data) throw new Error(`${query.slice(0, 60)}…: ${JSON.stringify(json.errors)}`);
  return json.data as T;
}

/** The row's request as autocannon sends it. */
function requestOf(row: Row) {
  return {
    headers: {
      "content-type": "application/json",
      ...(row.token ? { authorization: `Bearer ${row.token}` } : {}),
      ...(row.acceptEncoding ? { "accept-encoding": row.acceptEncoding } : {}),
    },
    body: JSON.stringify({ query: row.query, variables: row.variables }),
  };
}

const decoders: Record<string, (bytes: Buffer) => Buffer> = { br: brotliDecompressSync, gzip: gunzipSync, deflate: inflateSync };

/**
 * Sends the row's request once and checks the answer, decoded; its bytes, read as autocannon
 * reads them (as text), are then expected of every response under load. A compressed answer is
 * the same bytes for the same answer, and one of a few hundred bytes arrives in one read, so its
 * text is the same each time too.
 */
async function expected(row: Row, url: string): Promise<string> {
  const { headers, body } = requestOf(row);
  const answer = await new Promise<{ status: number; encoding?: string; bytes: Buffer }>((resolve, reject) => {
    const req = request(url, { method: "POST", headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode!, encoding: res.headers["content-encoding"], bytes: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
  const decode = answer.encoding ? decoders[answer.encoding] : (bytes: Buffer) => bytes;
  const text = decode ? decode(answer.bytes).toString() : "";
  let problem: string | null = answer.status === 200 ? null : `HTTP ${answer.status}`;
  if (!decode) problem = `an answer in ${answer.encoding}`;
  if (row.acceptEncoding && !answer.encoding) problem = `an uncompressed answer to Accept-Encoding: ${row.acceptEncoding}`;
  problem ??= row.check(JSON.parse(text));
  if (problem) throw new Error(`${row.label}: ${problem}\n${text.slice(0, 500)}`);
  return answer.bytes.toString();
}

/**
 * The statements of one request on the row's twin behind the counting proxy: a request the twin
 * has not answered before (its answer checked), then the same again (the same answer expected).
 */
async function countStatements(row: Row, twin: string, counter: StatementProxy): Promise<Statements> {
  // The caller is known to the twin (its session or credential read) before the counts.
  await post(twin, "{ __typename }", undefined, row.token);
  const counted = async () => {
    const before = counter.statements;
    const response = await post(twin, row.query, row.variables, row.token);
    // Writes a request leaves behind after answering (a throttled lastUsedAt) land, and count, here.
    await new Promise((resolve) => setTimeout(resolve, 250));
    return { statements: counter.statements - before, text: response.text };
  };
  const first = await counted();
  const problem = row.check(JSON.parse(first.text));
  if (problem) throw new Error(`${row.label}: the counted twin answered ${first.text.slice(0, 300)}: ${problem}`);
  const repeat = await counted();
  if (repeat.text !== first.text) throw new Error(`${row.label}: the counted twin answered ${repeat.text.slice(0, 300)} the second time`);
  return { first: first.statements, repeat: repeat.statements };
}

async function load(row: Row, url: string): Promise<Measured> {
  const options = { url, method: "POST" as const, connections: CONNECTIONS, ...requestOf(row), expectBody: await expected(row, url) };
  if (WARMUP_S > 0) await autocannon({ ...options, duration: WARMUP_S });
  const result = await autocannon({ ...options, duration: DURATION_S });
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    bad: result.mismatches + result.non2xx + result.errors + result.timeouts,
  };
}

/** One round's figures for a row, with its bare-Yoga runs just before and after it. */
interface Compared extends Measured {
  bare: { rps: number; p99: number };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

/** Each row's median over the rounds (ratios taken per round, then their median), every round's ratio beside it. */
function print(rows: Array<{ label: string; rounds: Compared[]; statements: Statements | null; baseline?: boolean }>) {
  const header = ["what", "req/s", "p50 ms", "p99 ms", "bare req/s", "ratio", "ratio by round", "p99 ×", "SQL first→again", "bad"];
  const lines = rows.map(({ label, rounds, statements, baseline }) => {
    const ratios = rounds.map((round) => round.rps / round.bare.rps);
    return [
      label,
      Math.round(median(rounds.map((round) => round.rps))).toLocaleString("en"),
      median(rounds.map((round) => round.p50)).toFixed(0),
      median(rounds.map((round) => round.p99)).toFixed(0),
      Math.round(median(rounds.map((round) => round.bare.rps))).toLocaleString("en"),
      median(ratios).toFixed(3),
      baseline ? "" : ratios.map((ratio) => ratio.toFixed(2)).join(" "),
      median(rounds.map((round) => round.p99 / Math.max(round.bare.p99, 1))).toFixed(1),
      statements === null ? "n/a" : `${statements.first} → ${statements.repeat}`,
      String(rounds.reduce((sum, round) => sum + round.bad, 0)),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((line) => line[i]!.length)));
  const format = (cells: string[]) => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ");
  console.log(format(header));
  for (const line of lines) console.log(format(line));
}

/** Two partners, each with a partnerAdmin who issues 20 keys, and a gateway credential: all through the API. */
export async function seed(url: string, adminLogin: { login: string; password: string }) {
  const login = (input: { login: string; password: string }) =>
    gql<{ login: { token: string } }>(url, `mutation ($input: LoginInput!) { login(input: $input) { token } }`, { input }).then(
      (data) => data.login.token,
    );
  const admin = await login(adminLogin);
  const partners: Array<{ id: string; name: string; adminToken: string; adminUsername: string; secrets: string[] }> = [];
  for (const name of ["Bench Freight", "Bench Payments"]) {
    const username = `${name.toLowerCase().replace(/\s+/g, "-")}-admin`;
    const { signUp } = await gql(
      url,
      `mutation ($input: SignUpInput!) { signUp(input: $input) { user { id } } }`,
      { input: { username, email: `${username}@example.com`, password: BENCH_PASSWORD } },
    );
    // The new partner's primary contact, made its partnerAdmin in the same call.
    const { createPartner } = await gql(
      url,
      `mutation ($input: CreatePartnerInput!) { createPartner(input: $input) { partner { id } } }`,
      { input: { name, primaryContact: { userId: signUp.user.id } } },
      admin,
    );
    const partnerId: string = createPartner.partner.id;
    const adminToken = await login({ login: username, password: BENCH_PASSWORD });
    const secrets: string[] = [];
    for (let i = 0; i < KEYS_PER_PARTNER; i++) {
      const { createApiKey } = await gql(
        url,
        `mutation ($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret } }`,
        { input: { partnerId, keyName: `key-${String(i).padStart(2, "0")}`, scopes: ["USAGE_READ", "USAGE_WRITE"] } },
        adminToken,
      );
      secrets.push(createApiKey.secret);
    }
    partners.push({ id: partnerId, name, adminToken, adminUsername: username, secrets });
  }
  const { createServiceCredential } = await gql(
    url,
    `mutation { createServiceCredential(name: "bench-gateway") { secret } }`,
    {},
    admin,
  );
  return { partners, gateway: createServiceCredential.secret as string };
}

/** `npm start`'s time to ready on an empty embedded data folder, then on the same folder again. */
async function measureStartup(): Promise<{ empty: number; existing: number }> {
  const dataDir = await mkdtemp(path.join(tmpdir(), "pp-bench-start-"));
  const env = { DATA_DIR: dataDir, PORT: "0", HOST: "127.0.0.1", DATABASE_URL: undefined, REDIS_URL: undefined };
  try {
    const times: number[] = [];
    for (let run = 0; run < 2; run++) {
      const started = await startScript("src/start.mjs", env, /GraphiQL:\s+(http[^\s"\\]+)/);
      times.push(started.startupMs);
      await started.stop();
    }
    return { empty: times[0]!, existing: times[1]! };
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

export default async function run(): Promise<void> {
  const databaseServer = process.env.TEST_DATABASE_URL || undefined;
  const redisUrl = process.env.TEST_REDIS_URL || undefined;
  const children: Started[] = [];
  const start = async (script: string, env: Record<string, string | undefined>, ready: RegExp) => {
    const started = await startScript(script, env, ready);
    children.push(started);
    return started;
  };
  const stop = async (started: Started) => {
    children.splice(children.indexOf(started), 1);
    await started.stop();
  };
  let place: Awaited<ReturnType<typeof benchServerPlace>> | undefined;
  let counter: StatementProxy | undefined;
  try {
    const startup = await measureStartup();
    console.log(
      `start-up (npm start, embedded): empty data folder ${(startup.empty / 1000).toFixed(1)} s, existing ${(startup.existing / 1000).toFixed(1)} s`,
    );

    place = await benchServerPlace({ databaseServer, redisUrl });
    const { env, database } = place;
    if (database) counter = await startStatementProxy(database.url);
    const where = database
      ? `PostgreSQL${redisUrl ? " and Redis" : ""}`
      : "EMBEDDED PGlite (fallback: set TEST_DATABASE_URL for PostgreSQL; statements not counted)";
    const ready = /GraphiQL:\s+(http[^\s"\\]+)/;
    const listening = /listening on (\S+)/;
    // Seeded through the API by a server of its own, stopped before the rounds (an embedded data
    // folder takes one server at a time).
    const seeder = await start("src/start.mjs", env, ready);
    const { partners, gateway } = await seed(seeder.match[1]!, BENCH_ADMIN);
    await stop(seeder);
    const partner = partners[0]!;
    const partnerRowId = Buffer.from(partner.id, "base64").toString().split(":")[1]!;
    const rawEnv = (url: string) => ({ DATABASE_URL: url, PARTNER_ID: partnerRowId });

    // Twins behind the statement-counting proxy (same database, secrets and Redis), for the counts.
    const twin = counter ? await start("src/start.mjs", { ...env, DATABASE_URL: counter.url }, ready) : null;
    const rawTwin = counter ? await start("test/bench/servers/raw-keys.ts", rawEnv(counter.url), listening) : null;

    const KEYS_QUERY = `{ apiKeys(first: 20) { edges { node { keyName tokenPrefix scopes partner { name } createdBy { username } } } } }`;
    const checkKeys = (body: any): string | null => {
      const edges = body?.data?.apiKeys?.edges;
      if (!Array.isArray(edges) || edges.length !== KEYS_PER_PARTNER) return "expected 20 keys";
      const bad = edges.find(
        (edge: any) => edge.node.partner?.name !== partner.name || edge.node.createdBy?.username !== partner.adminUsername,
      );
      return bad ? "a key with the wrong partner or creator" : null;
    };
    const bareRow: Row = {
      label: "bare graphql-yoga { __typename }",
      target: "bare",
      query: "{ __typename }",
      check: (body: any) => (body?.data?.__typename === "Query" ? null : "expected Query"),
    };
    const rows: Row[] = [
      ...(database
        ? [
            {
              label: "bare Yoga + one $queryRaw: 20 keys, no auth",
              target: "raw" as const,
              query: KEYS_QUERY,
              check: (body: any) => (body?.data?.apiKeys?.edges?.length === KEYS_PER_PARTNER ? null : "expected 20 keys"),
              twin: rawTwin?.match[1],
            },
          ]
        : []),
      {
        label: "this server: partnerAdmin lists its 20 keys",
        target: "portal",
        query: KEYS_QUERY,
        token: partner.adminToken,
        check: checkKeys,
        twin: twin?.match[1],
      },
      // The same server with its response cache off (on PostgreSQL, which two servers can share):
      // what every request costs when nothing is cached.
      ...(database
        ? [{ label: "the same, response cache off", target: "uncached" as const, query: KEYS_QUERY, token: partner.adminToken, check: checkKeys }]
        : []),
      // The same, asked for as a browser asks: the answer (3.6 kB) comes compressed.
      {
        label: "the same, asked with Accept-Encoding: gzip, deflate, br",
        target: "portal",
        query: KEYS_QUERY,
        token: partner.adminToken,
        acceptEncoding: "gzip, deflate, br",
        check: checkKeys,
      },
      {
        label: "this server: { viewer { id username role } }",
        target: "portal",
        query: "{ viewer { id username role } }",
        token: partner.adminToken,
        check: (body: any) => (body?.data?.viewer?.username === partner.adminUsername ? null : "expected the viewer"),
        twin: twin?.match[1],
      },
      {
        label: "this server: verifyApiKey (cached, credential)",
        target: "portal",
        query: `query ($secret: String!) { verifyApiKey(secret: $secret, requiredScopes: [USAGE_WRITE]) { valid code scopes } }`,
        variables: { secret: partner.secrets[0] },
        token: gateway,
        check: (body: any) => (body?.data?.verifyApiKey?.valid === true ? null : "expected a valid key"),
        twin: twin?.match[1],
      },
    ];

    const statements = new Map<Row, Statements>();
    if (counter) for (const row of rows) if (row.twin) statements.set(row, await countStatements(row, row.twin, counter));
    if (twin) await stop(twin);
    if (rawTwin) await stop(rawTwin);

    console.log(
      `this server on ${where}; ${ROUNDS} rounds, each on newly started processes; ` +
        `${CONNECTIONS} connections, ${DURATION_S} s per row after ${WARMUP_S} s warm-up`,
    );
    const compared = new Map<Row, Compared[]>(rows.map((row) => [row, []]));
    const bareRuns: Measured[][] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const [bare, portal, uncached, raw] = await Promise.all([
        start("test/bench/servers/bare-yoga.ts", {}, listening),
        start("src/start.mjs", env, ready),
        database ? start("src/start.mjs", { ...env, RESPONSE_CACHE_TTL_SECONDS: "0" }, ready) : null,
        database ? start("test/bench/servers/raw-keys.ts", rawEnv(database.url), listening) : null,
      ]);
      const urls: Record<Target, string | undefined> = {
        bare: bare.match[1],
        portal: portal.match[1],
        uncached: uncached?.match[1],
        raw: raw?.match[1],
      };
      // The machine is shared and its speed drifts within a run (by half, some days), so bare
      // Yoga is loaded before the first row and again after every row, and each row is compared
      // with the two bare runs around it.
      const runs = [await load(bareRow, urls.bare!)];
      for (const row of rows) {
        const measured = await load(row, urls[row.target]!);
        const before = runs.at(-1)!;
        const after = await load(bareRow, urls.bare!);
        runs.push(after);
        compared.get(row)!.push({ ...measured, bare: { rps: (before.rps + after.rps) / 2, p99: (before.p99 + after.p99) / 2 } });
      }
      bareRuns.push(runs);
      for (const started of [bare, portal, uncached, raw]) if (started) await stop(started);
    }

    for (const [round, runs] of bareRuns.entries()) {
      console.log(`round ${round + 1}, bare Yoga runs in order (req/s): ${runs.map((run) => Math.round(run.rps).toLocaleString("en")).join(", ")}`);
    }
    console.log(
      "ratio = req/s ÷ the mean of the bare runs just before and after the row in its round; " +
        "req/s, p50, p99, bare req/s, ratio and p99 × are medians over the rounds",
    );
    const allBare = bareRuns.flat();
    const bareSummary = {
      label: `${bareRow.label} (all ${allBare.length} runs)`,
      rounds: allBare.map((run) => ({ ...run, bare: { rps: run.rps, p99: run.p99 } })),
      statements: null,
      baseline: true,
    };
    print([bareSummary, ...rows.map((row) => ({ label: row.label, rounds: compared.get(row)!, statements: statements.get(row) ?? null }))]);
    const bad = [...allBare, ...[...compared.values()].flat()].some((run) => run.bad > 0);
    if (bad) throw new Error("some responses did not match the expected body");
  } finally {
    for (const child of children.reverse()) await child.stop();
    await counter?.close();
    await place?.cleanUp();
  }
}
