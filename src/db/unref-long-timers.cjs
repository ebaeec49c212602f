// Preloaded into the `prisma migrate deploy` child process. Prisma 6.19's WebAssembly schema
// engine leaves a 10-second timer armed after it finishes (its migration lock timeout), which
// keeps the CLI alive for 10 s after the work is done. Unref'ing long timers lets it exit as
// soon as the migrations are applied; nothing in the CLI relies on such a timer to finish work.
const setTimeoutOriginal = global.setTimeout;
/** @type {(callback: (...args: unknown[]) => void, delay?: number, ...args: unknown[]) => NodeJS.Timeout} */
const setTimeoutUnrefLong = (callback, delay, ...args) => {
  const timer = setTimeoutOriginal(callback, delay, ...args);
  if (typeof delay === "number" && delay >= 5000) timer.unref();
  return timer;
};
global.setTimeout = /** @type {typeof setTimeout} */ (/** @type {unknown} */ (setTimeoutUnrefLong));
