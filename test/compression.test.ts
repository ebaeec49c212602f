import { request, type IncomingHttpHeaders } from "node:http";
import { brotliDecompressSync, gunzipSync } from "node:zlib";
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
