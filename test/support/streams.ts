import type { Client } from "graphql-ws";
import type { GraphQLResponse } from "./server.js";

/** What a stream delivered, in order; `next()` awaits the next one, or null once it ended. */
export interface ResultStream {
  readonly received: GraphQLResponse[];
  next(): Promise<GraphQLResponse | null>;
  /** Why the stream ended (a close event or error), once it has. */
  readonly ended: Promise<unknown>;
  close(): void;
}

function queue() {
  const received: GraphQLResponse[] = [];
  let read = 0;
  const waiters: Array<(value: GraphQLResponse | null) => void> = [];
  let done = false;
  let endReason: (reason: unknown) => void = () => {};
  const ended = new Promise<unknown>((resolve) => (endReason = resolve));
  return {
    received,
    ended,
    push(value: GraphQLResponse) {
      received.push(value);
      const waiter = waiters.shift();
      if (waiter) {
        read++;
        waiter(value);
      }
    },
    end(reason: unknown) {
      if (done) return;
      done = true;
      endReason(reason);
      for (const waiter of waiters.splice(0)) waiter(null);
    },
    next(): Promise<GraphQLResponse | null> {
      if (read < received.length) return Promise.resolve(received[read++]!);
      if (done) return Promise.resolve(null);
      return new Promise((resolve) => waiters.push(resolve));
    },
  };
}

/** A subscription (or `@live` query) over graphql-ws; `extensions` go in the subscribe message. */
export function wsStream(
  client: Client,
  query: string,
  variables: Record<string, unknown> = {},
  extensions?: Record<string, unknown>,
): ResultStream {
  const q = queue();
  const dispose = client.subscribe(
    { query, variables, ...(extensions ? { extensions } : {}) },
    {
      next: (value) => q.push(value as GraphQLResponse),
      error: (error) => q.end(error),
      complete: () => q.end("complete"),
    },
  );
  return { received: q.received, next: q.next, ended: q.ended, close: () => (dispose(), q.end("closed")) };
}

/** A subscription (or `@live` query) over HTTP server-sent events (graphql-sse "distinct connections"). */
export function sseStream(url: string, query: string, variables: Record<string, unknown> = {}, token?: string): ResultStream {
  const q = queue();
  const controller = new AbortController();
  void (async () => {
    try {
      const response = await fetch(url, {
        method: "POST",
        signal: controller.signal,
        headers: {
          "content-type": "application/json",
          accept: "text/event-stream",
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: JSON.stringify({ query, variables }),
      });
      if (!(response.headers.get("content-type") ?? "").includes("text/event-stream")) {
        q.push((await response.json()) as GraphQLResponse);
        return q.end(`status ${response.status}`);
      }
      const decoder = new TextDecoder();
      let buffer = "";
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let split: number;
        while ((split = buffer.indexOf("\n\n")) >= 0) {
          const message = buffer.slice(0, split);
          buffer = buffer.slice(split + 2);
          const lines = message.split("\n");
          const eventName = lines.find((line) => line.startsWith("event:"))?.slice(6).trim();
          const data = lines
            .filter((line) => line.startsWith("data:"))
            .map((line) => line.slice(5).trimStart())
            .join("\n");
          if (eventName === "next" && data) q.push(JSON.parse(data) as GraphQLResponse);
          if (eventName === "complete") return q.end("complete");
        }
      }
      q.end("closed");
    } catch (error) {
      q.end(error);
    }
  })();
  return { received: q.received, next: q.next, ended: q.ended, close: () => (controller.abort(), q.end("closed")) };
}

/**
 * Calls `trigger` until the stream delivers something (a subscriber is only listening some time
 * after it subscribed, and nothing tells the client when), and answers what it delivered first.
 */
export async function triggerUntilReceived(
  stream: ResultStream,
  trigger: () => Promise<unknown>,
  maxAttempts = 200,
): Promise<GraphQLResponse | null> {
  const first = stream.next();
  let arrived = false;
  void first.then(() => (arrived = true));
  for (let attempt = 0; attempt < maxAttempts && !arrived; attempt++) {
    await trigger();
    // Let an event already on its way land before triggering again.
    await new Promise((resolve) => setImmediate(resolve));
  }
  return arrived ? first : null;
}
