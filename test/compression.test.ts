import { request, type IncomingHttpHeaders } from "node:http";
import { brotliDecompressSync, gunzipSync, inflateSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "./support/server.js";
import { createUser, type SignedInUser } from "./support/users.js";

let server: TestServer;
let support: SignedInUser;

beforeAll(async () => {
  server = await startTestServer();
  support = await createUser(server, "gzip-support", "support");
});
afterAll(async () => {
  await server?.close();
});

/** One raw HTTP exchange (no client-side decoding), answering the bytes as they came. */
function exchange(options: { method?: string; headers: Record<string, string>; body?: string }) {
  return new Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
    const req = request(server.url, { method: options.method ?? "GET", headers: options.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(options.body);
  });
}

const GRAPHIQL = { accept: "text/html" };

describe("compression", () => {
  it("sends GraphiQL's page gzip- or brotli-compressed when asked, and plain otherwise", async () => {
    const plain = await exchange({ headers: GRAPHIQL });
    expect(plain.status).toBe(200);
    expect(plain.headers["content-encoding"]).toBeUndefined();
    expect(plain.body.toString()).toContain("<title>Partner Portal</title>");

    const gzip = await exchange({ headers: { ...GRAPHIQL, "accept-encoding": "gzip" } });
    expect(gzip.headers["content-encoding"]).toBe("gzip");
    expect(gunzipSync(gzip.body).equals(plain.body)).toBe(true);

    const brotli = await exchange({ headers: { ...GRAPHIQL, "accept-encoding": "gzip, deflate, br" } });
    expect(brotli.headers["content-encoding"]).toBe("br");
    expect(brotliDecompressSync(brotli.body).equals(plain.body)).toBe(true);

    // The page is compressed once per encoding and then served from memory: the same bytes again.
    const again = await exchange({ headers: { ...GRAPHIQL, "accept-encoding": "br;q=1, gzip;q=0.5" } });
    expect(again.headers["content-encoding"]).toBe("br");
    expect(again.body.equals(brotli.body)).toBe(true);
    expect(Number(again.headers["content-length"])).toBe(brotli.body.length);
    const gzipOnly = await exchange({ headers: { ...GRAPHIQL, "accept-encoding": "br;q=0, gzip" } });
    expect(gzipOnly.headers["content-encoding"]).toBe("gzip");

    // The page is several megabytes of inlined assets; compressed it travels in a fraction.
    console.info(`GraphiQL page: ${plain.body.length} bytes, gzip ${gzip.body.length}, brotli ${brotli.body.length}`);
    expect(gzip.body.length).toBeLessThan(plain.body.length / 3);
    expect(gzip.body.length).toBeLessThan(3 * 1024 * 1024);
    expect(brotli.body.length).toBeLessThan(2 * 1024 * 1024);
  });

  it("compresses a large GraphQL answer, and leaves a small one as it is", async () => {
    const body = (query: string) => JSON.stringify({ query });
    const headers = { "content-type": "application/json", "accept-encoding": "gzip", authorization: `Bearer ${support.token}` };
    const large = await exchange({ method: "POST", headers, body: body(`{ __schema { types { name description } } }`) });
    expect(large.headers["content-encoding"]).toBe("gzip");
    expect(JSON.parse(gunzipSync(large.body).toString()).data.__schema.types.length).toBeGreaterThan(10);

    const small = await exchange({ method: "POST", headers, body: body(`{ viewer { username } }`) });
    expect(small.headers["content-encoding"]).toBeUndefined();
    expect(JSON.parse(small.body.toString())).toEqual({ data: { viewer: { username: "gzip-support" } } });
  });

  it("compresses a JSON answer of a few kilobytes in one piece, in the encoding the client's Accept-Encoding prefers", async () => {
    // Between the 1 KiB threshold and the 64 KiB bound of compression in one call.
    const query = JSON.stringify({ query: `{ __type(name: "Query") { fields { name description } } }` });
    const ask = (acceptEncoding?: string) =>
      exchange({
        method: "POST",
        headers: {
          "content-type": "application/json",
          authorization: `Bearer ${support.token}`,
          ...(acceptEncoding === undefined ? {} : { "accept-encoding": acceptEncoding }),
        },
        body: query,
      });
    const plain = await ask();
    expect(plain.headers["content-encoding"]).toBeUndefined();
    expect(plain.body.length).toBeGreaterThan(1024);
    expect(plain.body.length).toBeLessThan(64 * 1024);
    const answer = JSON.parse(plain.body.toString());
    expect(answer.data.__type.fields.length).toBeGreaterThan(10);

    const decoders: Record<string, (body: Buffer) => Buffer> = { br: brotliDecompressSync, gzip: gunzipSync, deflate: inflateSync };
    const cases: Array<[string, string | undefined]> = [
      ["gzip, deflate, br", "br"], // as browsers ask: brotli first
      ["gzip;q=1, br;q=0.5", "gzip"], // the client's q-values first
      ["deflate", "deflate"],
      ["br;q=0, gzip;q=0, deflate;q=0", undefined],
      ["identity", undefined],
      ["zstd", undefined],
    ];
    for (const [acceptEncoding, expected] of cases) {
      const response = await ask(acceptEncoding);
      expect(response.status, acceptEncoding).toBe(200);
      expect(response.headers["content-encoding"], acceptEncoding).toBe(expected);
      expect(Number(response.headers["content-length"]), acceptEncoding).toBe(response.body.length);
      if (!expected) {
        expect(response.body.equals(plain.body), acceptEncoding).toBe(true);
        continue;
      }
      expect(response.headers.vary, acceptEncoding).toMatch(/accept-encoding/i);
      expect(response.headers["content-type"]).toBe(plain.headers["content-type"]);
      expect(response.body.length, acceptEncoding).toBeLessThan(plain.body.length / 2);
      expect(JSON.parse(decoders[expected]!(response.body).toString()), acceptEncoding).toEqual(answer);
    }
  });

  it("compresses REST answers in one piece too, and answers above 64 KiB as they go", async () => {
    const get = (path: string, acceptEncoding?: string) =>
      new Promise<{ headers: IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
        const headers = { authorization: `Bearer ${support.token}`, ...(acceptEncoding ? { "accept-encoding": acceptEncoding } : {}) };
        const req = request(new URL(path, server.url), { headers }, (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
          res.on("error", reject);
        });
        req.on("error", reject);
        req.end();
      });
    // Enough people that the directory's page is over a kilobyte.
    for (let i = 0; i < 12; i++) await createUser(server, `gzip-directory-${i}`, "developer");
    const plain = await get("/api/users?first=50");
    expect(plain.headers["content-encoding"]).toBeUndefined();
    expect(plain.body.length).toBeGreaterThan(1024);
    const brotli = await get("/api/users?first=50", "gzip, br");
    expect(brotli.headers["content-encoding"]).toBe("br");
    expect(Number(brotli.headers["content-length"])).toBe(brotli.body.length);
    expect(JSON.parse(brotliDecompressSync(brotli.body).toString())).toEqual(JSON.parse(plain.body.toString()));

    // The OpenAPI document is over 64 KiB: compressed all the same, as a stream.
    const document = await get("/api/openapi.json");
    expect(document.body.length).toBeGreaterThan(64 * 1024);
    const gzip = await get("/api/openapi.json", "gzip");
    expect(gzip.headers["content-encoding"]).toBe("gzip");
    expect(gunzipSync(gzip.body).equals(document.body)).toBe(true);
  });

  it("never compresses a stream: an SSE @live query delivers its first result while the stream stays open", async () => {
    const first = await new Promise<{ headers: IncomingHttpHeaders; event: string }>((resolve, reject) => {
      const req = request(
        server.url,
        {
          method: "POST",
          headers: {
            "content-type": "application/json",
            accept: "text/event-stream",
            "accept-encoding": "gzip, br",
            authorization: `Bearer ${support.token}`,
          },
        },
        (res) => {
          let text = "";
          res.on("data", (chunk: Buffer) => {
            text += chunk.toString();
            if (text.includes("event: next")) {
              resolve({ headers: res.headers, event: text });
              req.destroy();
            }
          });
          res.on("end", () => reject(new Error(`stream ended before an event: ${text}`)));
        },
      );
      req.on("error", reject);
      req.end(JSON.stringify({ query: `query @live { usageSummary { totalRequests } }` }));
    });
    expect(first.headers["content-type"]).toMatch(/^text\/event-stream/);
    // Yoga marks its streams `Content-Encoding: none`.
    expect([undefined, "none", "identity"]).toContain(first.headers["content-encoding"]);
    expect(first.event).toContain("totalRequests");
  });
});
