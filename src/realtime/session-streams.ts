import { isAsyncIterable, Repeater, type Plugin } from "graphql-yoga";
import type { Context } from "../context.js";
import type { AppPubSub } from "./pubsub.js";

export interface SessionStreams {
  /** Yoga plugin: every streamed result (subscription, `@live` query) of a session ends at logout. */
  plugin: Plugin;
  close(): Promise<void>;
}

/**
 * Ends a session's open streams on every instance when the session ends. WebSockets are closed
 * by the socket server; this also covers SSE, where no socket belongs to the session.
 */
export function createSessionStreams(pubsub: AppPubSub): SessionStreams {
  const stoppers = new Map<string, Set<() => void>>();
  const revoked = pubsub.subscribe("session:revoked");
  const listening = (async () => {
    for await (const { sessionId } of revoked) {
      for (const stop of stoppers.get(sessionId) ?? []) stop();
      stoppers.delete(sessionId);
    }
  })();

  function endWithSession<T>(source: AsyncIterable<T>, sessionId: string): AsyncIterable<T> {
    return new Repeater<T>(async (push, stop) => {
      const iterator = source[Symbol.asyncIterator]();
      const own = stoppers.get(sessionId) ?? new Set();
      own.add(stop);
      stoppers.set(sessionId, own);
      const stopped = stop.then(() => ({ done: true as const, value: undefined }));
      try {
        for (;;) {
          const step = await Promise.race([iterator.next(), stopped]);
          if (step.done) break;
          // Awaiting the push keeps this a pull: nothing is buffered here.
          await push(step.value);
        }
      } finally {
        own.delete(stop);
        if (own.size === 0 && stoppers.get(sessionId) === own) stoppers.delete(sessionId);
        stop();
        await iterator.return?.();
      }
    });
  }

  const wrap =
    <A extends { contextValue?: unknown }>(run: (args: A) => unknown) =>
    (args: A): unknown => {
      const sessionId = (args.contextValue as Context | undefined)?.viewer?.sessionId;
      const result = run(args);
      if (!sessionId) return result;
      const seal = (value: unknown) => (isAsyncIterable(value) ? endWithSession(value, sessionId) : value);
      return isThenable(result) ? Promise.resolve(result).then(seal) : seal(result);
    };

  return {
    plugin: {
      onExecute: ({ executeFn, setExecuteFn }) => setExecuteFn(wrap(executeFn) as typeof executeFn),
      onSubscribe: ({ subscribeFn, setSubscribeFn }) => setSubscribeFn(wrap(subscribeFn) as typeof subscribeFn),
    },
    async close() {
      await revoked.return?.();
      await listening.catch(() => {});
    },
  };
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === "function";
}
