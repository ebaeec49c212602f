import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";

/**
 * The subscribers of the fan-out benchmark, in a process of their own (so that their work is not
 * counted against the server's). Driven over IPC:
 *   → { type: "connect", url, token?, query, subscribers, perSocket }
 *                                        ← { type: "connected", refused } (every socket acknowledged or closed;
 *                                          refused: subscriptions on sockets closed before that)
 *   → { type: "count", label }            ← { type: "count", received }   (subscribers that got it)
 *   → { type: "report", labels }          ← { type: "report", times: number[][], closed }
 * Times are wall-clock milliseconds (performance.timeOrigin + performance.now()), comparable
 * with the driver's.
 */
type Command =
  | { type: "connect"; url: string; token?: string; query: string; subscribers: number; perSocket: number }
  | { type: "count"; label: string }
  | { type: "report"; labels: string[] }
  | { type: "close" };

const now = () => performance.timeOrigin + performance.now();
const received = new Map<string, number[]>();
const clients: Client[] = [];
let closedSockets = 0;

function send(message: unknown) {
  process.send!(message);
}

process.on("message", (command: Command) => {
  if (command.type === "connect") {
    const sockets = Math.ceil(command.subscribers / command.perSocket);
    let settled = 0;
    let refused = 0;
    const settle = () => {
      if (++settled === sockets) send({ type: "connected", refused });
    };
    for (let s = 0; s < sockets; s++) {
      let acknowledged = false;
      const client = createClient({
        url: command.url.replace(/^http/, "ws"),
        webSocketImpl: WebSocket,
        lazy: false,
        retryAttempts: 0,
        connectionParams: command.token ? { authorization: `Bearer ${command.token}` } : {},
        // A socket the server drops is counted (closed), not printed.
        onNonLazyError: () => {},
        on: {
          closed: () => {
            closedSockets++;
            if (!acknowledged) {
              acknowledged = true;
              refused += Math.min(command.perSocket, command.subscribers - s * command.perSocket);
              settle();
            }
          },
          connected: () => {
            acknowledged = true;
            settle();
          },
        },
      });
      clients.push(client);
      for (let i = 0; i < command.perSocket && s * command.perSocket + i < command.subscribers; i++) {
        client.subscribe(
          { query: command.query },
          {
            next: (value) => {
              const at = now();
              const label = JSON.stringify(value.data ?? value.errors);
              let times = received.get(label);
              if (!times) received.set(label, (times = []));
              times.push(at);
            },
            error: () => {},
            complete: () => {},
          },
        );
      }
    }
  } else if (command.type === "count") {
    send({ type: "count", received: received.get(command.label)?.length ?? 0 });
  } else if (command.type === "report") {
    send({ type: "report", times: command.labels.map((label) => received.get(label) ?? []), closed: closedSockets });
  } else if (command.type === "close") {
    void Promise.allSettled(clients.map((client) => client.dispose())).then(() => process.exit(0));
  }
});
