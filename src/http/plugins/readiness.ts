import { useReadinessCheck, type Plugin } from "graphql-yoga";
import type { Database } from "../../db/index.js";
import type { PubSubConnection } from "../../realtime/pubsub.js";

const READY_PATH = "/readyz";

/**
 * `/readyz`: 200 while the database answers, 503 once shutdown has begun or when it does not.
 * Redis is not a condition: without it the server still serves everything but cross-instance
 * events, so an outage is reported in the body (`pubsub: "disconnected"`) instead of taking every
 * instance out of the load balancer at once.
 */
export function readiness(options: {
  database: Pick<Database, "ping">;
  pubsub: Pick<PubSubConnection, "state" | "publishFailures">;
  stopping: () => boolean;
}): Plugin {
  const check = useReadinessCheck({
    endpoint: READY_PATH,
    check: async ({ fetchAPI }) => {
      const stopping = options.stopping();
      const ready = !stopping && (await options.database.ping());
      const body = {
        status: ready ? "ready" : stopping ? "stopping" : "database unavailable",
        pubsub: options.pubsub.state,
        publishFailures: options.pubsub.publishFailures,
      };
      return new fetchAPI.Response(JSON.stringify(body), {
        status: ready ? 200 : 503,
        headers: { "content-type": "application/json" },
      });
    },
  });
  // Yoga's check also matches its path as a URL pattern, on every request; one comparison of the
  // parsed path does here.
  return {
    ...check,
    onRequest: (payload) => (payload.url.pathname === READY_PATH ? check.onRequest?.(payload) : undefined),
  };
}
