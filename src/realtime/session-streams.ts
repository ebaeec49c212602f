import { isAsyncIterable, Repeater, type Plugin } from "graphql-yoga";
import type { Context, Viewer } from "../context.js";
import type { AppPubSub } from "./pubsub.js";

export interface SessionStreams {
  /** Yoga plugin: every streamed result (subscription, `@live` query) of a session ends with it. */
  plugin: Plugin;
  close(): Promise<void>;
}

/**
 * Ends a session's open streams when the session ends: on every instance at logout (or a change
 * of the user's rights), and at the session's expiry. WebSockets are closed by the socket server
 * at logout; this also covers SSE, where no socket belongs to the session, and expiry.
 */
export function createSessionStreams(pubsub: AppPubSub, now: () => Date): SessionStreams {
  const stoppers = new Map<string, Set<() => void>>();
  const revoked = pubsub.subscribe("session:revoked");
  const listening = (async () => {
    for await (const { sessionId } of revoked) {
      for (const stop of stoppers.get(sessionId) ?? []) stop();
      stoppers.delete(sessionId);
    }
  })();

  function endWithSession<T>(source: AsyncIterable<T>, viewer: Viewer): AsyncIterable<T> {
    const { sessionId, sessionExpiresAt } = viewer;
    return new Repeater<T>(async (push, stop) => {
      const iterator = source[Symbol.asyncIterator]();
      const own = stoppers.get(sessionId) ?? new Set();
      own.add(stop);
      stoppers.set(sessionId, own);
      const stopped = stop.then(() => ({ done: true as const, value: undefined }));
      const expiry = stopAtExpiry(sessionExpiresAt, now, stop);
      try {
        for (;;) {
          const step = await Promise.race([iterator.next(), stopped]);
          // Checked per event too, so an injected clock (tests) ends the stream without waiting.
          if (step.done || now() >= sessionExpiresAt) break;
          // Awaiting the push keeps this a pull: nothing is buffered here.
          await push(step.value);
        }
      } finally {
        expiry.cancel();
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
      const viewer = (args.contextValue as Context | undefined)?.viewer;
      const result = run(args);
      if (!viewer) return result;
      const seal = (value: unknown) => (isAsyncIterable(value) ? endWithSession(value, viewer) : value);
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

// setTimeout's longest delay (about 24.8 days); a later expiry re-arms the timer when it fires.
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Stops the stream when the session expires, even if no event arrives to notice it. */
function stopAtExpiry(expiresAt: Date, now: () => Date, stop: () => void): { cancel(): void } {
  let timer: NodeJS.Timeout;
  const arm = () => {
    const remaining = expiresAt.getTime() - now().getTime();
    timer = setTimeout(() => (now() >= expiresAt ? stop() : arm()), Math.min(Math.max(remaining, 0), MAX_TIMER_MS));
    timer.unref();
  };
  arm();
  return { cancel: () => clearTimeout(timer) };
}
