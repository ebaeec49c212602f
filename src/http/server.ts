import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import compression from "compression";
import type { YogaServerInstance } from "graphql-yoga";
import type { AccessLog, RequestLog } from "./access-log.js";
import { readBodyWithin } from "./request-body.js";

/** Responses that stream (SSE, incremental delivery): a compressor would hold their events back. */
const STREAMED = /^(text\/event-stream|multipart\/mixed)/i;

/**
 * gzip, brotli or deflate as the client's Accept-Encoding asks, for responses over 1 kB that Yoga
 * has not compressed already (JSON answers up to 64 KiB are, in one call: compressed-answers.ts);
 * never for streamed responses.
 */
const compress = compression({
  filter: (req, res) => !STREAMED.test(String(res.getHeader("content-type") ?? "")) && compression.filter(req, res),
}) as unknown as (req: IncomingMessage, res: ServerResponse, next: () => void) => void;

/**
 * The HTTP server in front of Yoga: bodies bounded before Yoga reads them, responses compressed
 * when asked, `/` sent to GraphiQL, and requests tracked so that shutdown can let them finish.
 */
export function createHttpServer(
  yoga: YogaServerInstance<Record<string, unknown>, Record<string, unknown>>,
  options: { maxBodyBytes: number; accessLog?: Pick<AccessLog, "http"> },
) {
  const inFlight = new Set<ServerResponse>();
  let drained: (() => void) | undefined;

  const handle = async (req: IncomingMessage, res: ServerResponse, requestLog?: RequestLog) => {
    if ((req.url ?? "/").split("?")[0] === "/") {
      res.writeHead(302, { location: yoga.graphqlEndpoint }).end();
      return;
    }
    // Streams (SSE subscriptions) run until closed; shutdown ends them instead of waiting.
    if (!(req.headers.accept ?? "").includes("text/event-stream")) {
      inFlight.add(res);
      res.once("close", () => {
        inFlight.delete(res);
        if (inFlight.size === 0) drained?.();
      });
    }
    // compression() only wraps the response's methods, and calls on synchronously. A client that
    // accepts no encoding would get the same bytes without it, so it is left out then.
    if (req.headers["accept-encoding"]) compress(req, res, () => {});
    // The request's log goes into Yoga's server context, where the plugins that log find it.
    if (await readBodyWithin(req, res, options.maxBodyBytes)) await yoga.handle(req, res, { requestLog });
  };
  const { accessLog } = options;
  const server = createServer((req, res) => (accessLog ? accessLog.http(req, res, (requestLog) => handle(req, res, requestLog)) : handle(req, res)));

  return {
    server,
    /** Listens; answers the GraphQL endpoint's URL. */
    listen(port: number, host: string): Promise<string> {
      return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          const address = server.address() as AddressInfo;
          const shownHost = host === "0.0.0.0" || host === "::" ? "localhost" : host;
          resolve(`http://${shownHost}:${address.port}${yoga.graphqlEndpoint}`);
        });
      });
    },
    /**
     * Stops accepting and waits (up to the timeout) for requests in flight; `closed` resolves
     * once every connection is gone (call `closeAll` to end the ones left).
     */
    async drain(timeoutMs: number): Promise<{ closed: Promise<void> }> {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      if (inFlight.size > 0) {
        const allDone = new Promise<void>((resolve) => (drained = resolve));
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
        await Promise.race([allDone, timeout]);
        clearTimeout(timer);
      }
      return { closed };
    },
    closeAll: () => server.closeAllConnections(),
  };
}
