import { createHash, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Plugin } from "graphql-yoga";
import type { Registry } from "prom-client";
import { bearerToken } from "../auth/callers.js";

export const METRICS_PATH = "/metrics";

const digest = (text: string) => createHash("sha256").update(text).digest();

/**
 * The Prometheus exposition of a registry, for a scrape that shows `token` (when one is set) as
 * `Authorization: Bearer <token>`; compared in constant time.
 */
async function scrape(
  registry: Registry,
  token: string | undefined,
  authorization: string | null,
): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  if (token) {
    const presented = bearerToken(authorization);
    if (!presented || !timingSafeEqual(digest(presented), digest(token))) {
      return { status: 401, headers: { "content-type": "text/plain", "www-authenticate": 'Bearer realm="metrics"' }, body: "Unauthorized\n" };
    }
  }
  return { status: 200, headers: { "content-type": registry.contentType }, body: await registry.metrics() };
}

/** `/metrics` on the GraphQL server's own port. */
export function serveMetrics(options: { registry: Registry; token: string | undefined }): Plugin {
  return {
    async onRequest({ request, url, fetchAPI, endResponse }) {
      if (url.pathname !== METRICS_PATH || request.method !== "GET") return;
      const answer = await scrape(options.registry, options.token, request.headers.get("authorization"));
      endResponse(new fetchAPI.Response(answer.body, { status: answer.status, headers: answer.headers }));
    },
  };
}

/** A server of its own for `/metrics` (METRICS_PORT), so that scrapes stay off the public port. */
export function createMetricsServer(options: { registry: Registry; token: string | undefined }) {
  const server = createServer((req, res) => {
    if ((req.url ?? "/").split("?")[0] !== METRICS_PATH || req.method !== "GET") {
      res.writeHead(404, { "content-type": "text/plain" }).end("Not found\n");
      return;
    }
    scrape(options.registry, options.token, req.headers.authorization ?? null).then(
      (answer) => res.writeHead(answer.status, answer.headers).end(answer.body),
      () => res.writeHead(500).end(),
    );
  });
  return {
    /** Listens; answers the metrics URL. */
    listen(port: number, host: string): Promise<string> {
      return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          const shownHost = host === "0.0.0.0" || host === "::" ? "localhost" : host;
          resolve(`http://${shownHost}:${(server.address() as AddressInfo).port}${METRICS_PATH}`);
        });
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
