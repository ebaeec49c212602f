import { promisify } from "node:util";
import { brotliCompress, constants, gzip } from "node:zlib";
import type { Plugin } from "graphql-yoga";
import { acceptedEncoding } from "../encoding.js";

// Paid once: brotli 9 takes about 1.2 s of CPU for 9 MB -> 1.9 MB (11 would take 16 s for 1.7 MB).
const compressors = {
  br: (page: Uint8Array) => promisify(brotliCompress)(page, { params: { [constants.BROTLI_PARAM_QUALITY]: 9 } }),
  gzip: (page: Uint8Array) => promisify(gzip)(page, { level: 9 }),
};
type Encoding = keyof typeof compressors;

/**
 * GraphiQL's page (9 MB with its assets inlined, the same bytes every time) compressed once per
 * encoding and then served from memory: compressing it per request would cost about a second of
 * CPU on every reload, for anyone who asks. JSON answers are compressed in one call
 * (compressed-answers.ts), what else is large as it goes (server.ts), which skips this one since
 * it already carries its Content-Encoding.
 */
export function precompressedGraphiQL(): Plugin {
  const pages = new Map<Encoding, Promise<ArrayBuffer>>();
  return {
    async onResponse({ request, response, setResponse, fetchAPI }) {
      if (request.method !== "GET" || !(response.headers.get("content-type") ?? "").startsWith("text/html")) return;
      const encoding = acceptedEncoding(request.headers.get("accept-encoding"), ["br", "gzip", "identity"]);
      if (encoding !== "br" && encoding !== "gzip") return;
      let page = pages.get(encoding);
      if (!page) {
        const plain = new Uint8Array(await response.arrayBuffer());
        page = compressors[encoding](plain).then(
          (bytes) => bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer,
        );
        pages.set(encoding, page);
        // A failure is not remembered: the next request tries again.
        page.catch(() => pages.delete(encoding));
      }
      const headers = new fetchAPI.Headers(response.headers);
      headers.set("content-encoding", encoding);
      headers.set("content-length", String((await page).byteLength));
      headers.append("vary", "Accept-Encoding");
      setResponse(new fetchAPI.Response(await page, { status: response.status, headers }));
    },
  };
}
