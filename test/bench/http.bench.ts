import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import autocannon from "autocannon";
import { startScript, type Started } from "./support/processes.js";
import { startStatementProxy, type StatementProxy } from "../support/pg-proxy.js";
import { BENCH_ADMIN, BENCH_PASSWORD, benchServerPlace } from "./support/portal.js";

/**
 * `npm run bench -- http`: the read path against the framework it runs on. In one run: a bare
 * graphql-yoga server from this project's own packages, this server (on TEST_DATABASE_URL's
 * PostgreSQL, with TEST_REDIS_URL's Redis when set; else the embedded database, labelled), and
 * the same 20-key flow written as one `$queryRaw` behind bare Yoga. Each row is loaded with
 * autocannon (20 connections; BENCH_DURATION_S seconds, 15 by default), every response body is
 * compared with the expected one, and the statements one request runs are counted on the wire: on
 * a twin of each server that reaches PostgreSQL through a counting proxy, so that the loaded
 * servers talk to PostgreSQL directly, as in production. Counted twice: a request the twin has not
 * answered before (its caller already known), then the same again (the response cache's case).
 * The 20-key flow is loaded again on a third instance with the response cache off.
 */
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 15);
const WARMUP_S = Number(process.env.BENCH_WARMUP_S ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 20);
const KEYS_PER_PARTNER = 20;

interface Row {
  label: string;
  url: string;
  query: string;
  variables?: Record<string, unknown>;
  token?: string;
  /** Checks the first response; its exact body is then expected of every response under load. */
  check(body: unknown): string | null;
  /**
   * Counts the statements of one request: the same server's twin behind the statement-counting
   * proxy (the loaded server talks to PostgreSQL directly, so the proxy costs the load nothing).
   */
  counted?: { url: string; counter: StatementProxy };
}

interface Measured {
  label: string;
  rps: number;
  p50: number;
  p99: number;
  /** Statements of one request the server has not answered before, then of the same request again. */
  statements: { first: number; repeat: number } | null;
  bad: number;
}

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

async function load(row: Row): Promise<Measured> {
  const first = await post(row.url, row.query, row.variables, row.token);
  const problem = first.status === 200 ? row.check(first.json) : `HTTP ${first.status}`;
  if (problem) throw new Error(`${row.label}: ${problem}\n${first.text.slice(0, 500)}`);

  let statements: Measured["statements"] = null;
  if (row.counted) {
    const { url, counter } = row.counted;
    const counted = async () => {
      const before = counter.statements;
      const answer = await post(url, row.query, row.variables, row.token);
      if (answer.text !== first.text) throw new Error(`${row.label}: the counted twin answered ${answer.text.slice(0, 300)}`);
      // Writes a request leaves behind after answering (a throttled lastUsedAt) land, and count, here.
      await new Promise((resolve) => setTimeout(resolve, 250));
      return counter.statements - before;
    };
    // The caller is known to the twin (its session or credential read) before the counts.
    await post(url, "{ __typename }", undefined, row.token);
    statements = { first: await counted(), repeat: await counted() };
  }

  const options = {
    url: row.url,
    method: "POST" as const,
    connections: CONNECTIONS,
    headers: { "content-type": "application/json", ...(row.token ? { authorization: `Bearer ${row.token}` } : {}) },
    body: JSON.stringify({ query: row.query, variables: row.variables }),
    expectBody: first.text,
  };
  if (WARMUP_S > 0) await autocannon({ ...options, duration: WARMUP_S });
  const result = await autocannon({ ...options, duration: DURATION_S });
  return {
    label: row.label,
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    statements,
    bad: result.mismatches + result.non2xx + result.errors + result.timeouts,
  };
}

/** A row with the bare-Yoga runs just before and after it, which its ratios are taken to. */
interface Compared extends Measured {
  bare: { rps: number; p99: number };
}

function print(rows: Compared[]) {
  const header = ["what", "req/s", "p50 ms", "p99 ms", "bare req/s", "ratio", "p99 ×", "SQL first→again", "bad"];
  const lines = rows.map((row) => [
    row.label,
    Math.round(row.rps).toLocaleString("en"),
    row.p50.toFixed(0),
    row.p99.toFixed(0),
    Math.round(row.bare.rps).toLocaleString("en"),
    (row.rps / row.bare.rps).toFixed(3),
    (row.p99 / Math.max(row.bare.p99, 1)).toFixed(1),
    row.statements === null ? "n/a" : `${row.statements.first} → ${row.statements.repeat}`,
    String(row.bad),
  ]);
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
  let place: Awaited<ReturnType<typeof benchServerPlace>> | undefined;
  let counter: StatementProxy | undefined;
  try {
    const startup = await measureStartup();
    console.log(
      `start-up (npm start, embedded): empty data folder ${(startup.empty / 1000).toFixed(1)} s, existing ${(startup.existing / 1000).toFixed(1)} s`,
    );

    const bare = await startScript("test/bench/servers/bare-yoga.ts", {}, /listening on (\S+)/);
    children.push(bare);

    place = await benchServerPlace({ databaseServer, redisUrl });
    const { env, database } = place;
    if (database) counter = await startStatementProxy(database.url);
    const where = database
      ? `PostgreSQL${redisUrl ? " and Redis" : ""}`
      : "EMBEDDED PGlite (fallback: set TEST_DATABASE_URL for PostgreSQL; statements not counted)";
    const ready = /GraphiQL:\s+(http[^\s"\\]+)/;
    const portal = await startScript("src/start.mjs", env, ready);
    children.push(portal);
    const url = portal.match[1]!;
    const { partners, gateway } = await seed(url, BENCH_ADMIN);
    const partner = partners[0]!;
    const partnerRowId = Buffer.from(partner.id, "base64").toString().split(":")[1]!;

    // Twins behind the statement-counting proxy (same database, secrets and Redis), for the counts.
    const twin = counter ? await startScript("src/start.mjs", { ...env, DATABASE_URL: counter.url }, ready) : null;
    if (twin) children.push(twin);
    // The same server with its response cache off (on PostgreSQL, which two servers can share):
    // what every request costs when nothing is cached.
    const uncached = database ? await startScript("src/start.mjs", { ...env, RESPONSE_CACHE_TTL_SECONDS: "0" }, ready) : null;
    if (uncached) children.push(uncached);
    const raw = database
      ? await startScript("test/bench/servers/raw-keys.ts", { DATABASE_URL: database.url, PARTNER_ID: partnerRowId }, /listening on (\S+)/)
      : null;
    if (raw) children.push(raw);
    const rawTwin = counter
      ? await startScript("test/bench/servers/raw-keys.ts", { DATABASE_URL: counter.url, PARTNER_ID: partnerRowId }, /listening on (\S+)/)
      : null;
    if (rawTwin) children.push(rawTwin);
    const counted = (server: Started | null) => (server && counter ? { url: server.match[1]!, counter } : undefined);

    const KEYS_QUERY = `{ apiKeys(first: 20) { edges { node { keyName tokenPrefix scopes partner { name } createdBy { username } } } } }`;
    const checkKeys = (body: any): string | null => {
      const edges = body?.data?.apiKeys?.edges;
      if (!Array.isArray(edges) || edges.length !== KEYS_PER_PARTNER) return "expected 20 keys";
      const bad = edges.find(
        (edge: any) => edge.node.partner?.name !== partner.name || edge.node.createdBy?.username !== partner.adminUsername,
      );
      return bad ? "a key with the wrong partner or creator" : null;
    };
    const rows: Row[] = [
      {
        label: "bare graphql-yoga { __typename }",
        url: bare.match[1]!,
        query: "{ __typename }",
        check: (body: any) => (body?.data?.__typename === "Query" ? null : "expected Query"),
      },
      ...(raw
        ? [
            {
              label: "bare Yoga + one $queryRaw: 20 keys, no auth",
              url: raw.match[1]!,
              query: KEYS_QUERY,
              check: (body: any) => (body?.data?.apiKeys?.edges?.length === KEYS_PER_PARTNER ? null : "expected 20 keys"),
              counted: counted(rawTwin),
            },
          ]
        : []),
      {
        label: "this server: partnerAdmin lists its 20 keys",
        url,
        query: KEYS_QUERY,
        token: partner.adminToken,
        check: checkKeys,
        counted: counted(twin),
      },
      ...(uncached
        ? [{ label: "the same, response cache off", url: uncached.match[1]!, query: KEYS_QUERY, token: partner.adminToken, check: checkKeys }]
        : []),
      {
        label: "this server: { viewer { id username role } }",
        url,
        query: "{ viewer { id username role } }",
        token: partner.adminToken,
        check: (body: any) => (body?.data?.viewer?.username === partner.adminUsername ? null : "expected the viewer"),
        counted: counted(twin),
      },
      {
        label: "this server: verifyApiKey (cached, credential)",
        url,
        query: `query ($secret: String!) { verifyApiKey(secret: $secret, requiredScopes: [USAGE_WRITE]) { valid code scopes } }`,
        variables: { secret: partner.secrets[0] },
        token: gateway,
        check: (body: any) => (body?.data?.verifyApiKey?.valid === true ? null : "expected a valid key"),
        counted: counted(twin),
      },
    ];

    console.log(`this server on ${where}; ${CONNECTIONS} connections, ${DURATION_S} s per row after ${WARMUP_S} s warm-up`);
    // The machine is shared and its speed drifts within a run (by half, some days), so bare Yoga
    // is loaded before the first row and again after every row, and each row is compared with the
    // two bare runs around it.
    const [bareRow, ...serverRows] = rows;
    const bareRuns = [await load(bareRow!)];
    const compared: Compared[] = [];
    for (const row of serverRows) {
      const measured = await load(row);
      const after = await load(bareRow!);
      const before = bareRuns.at(-1)!;
      bareRuns.push(after);
      compared.push({ ...measured, bare: { rps: (before.rps + after.rps) / 2, p99: (before.p99 + after.p99) / 2 } });
    }
    const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
    const bareMean = { rps: mean(bareRuns.map((run) => run.rps)), p99: mean(bareRuns.map((run) => run.p99)) };
    const bareSummary: Compared = {
      ...bareRuns[0]!,
      label: `${bareRow!.label} (mean of ${bareRuns.length} runs)`,
      rps: bareMean.rps,
      p50: mean(bareRuns.map((run) => run.p50)),
      p99: bareMean.p99,
      bad: bareRuns.reduce((sum, run) => sum + run.bad, 0),
      bare: bareMean,
    };
    const rps = bareRuns.map((run) => Math.round(run.rps).toLocaleString("en"));
    console.log(`bare Yoga runs, in order (req/s): ${rps.join(", ")}`);
    console.log("ratio = req/s ÷ the mean of the bare runs just before and after the row (bare req/s); p99 × likewise");
    const measured = [bareSummary, ...compared];
    print(measured);
    if (measured.some((row) => row.bad > 0)) throw new Error("some responses did not match the expected body");
  } finally {
    for (const child of children.reverse()) await child.stop();
    await counter?.close();
    await place?.cleanUp();
  }
}
