/** Shared figures for benchmark modules: throughput and latency percentiles. */
export interface Figures {
  operations: number;
  seconds: number;
  p50Ms: number;
  p99Ms: number;
}

export function summarise(latenciesMs: number[], seconds: number): Figures {
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  return { operations: sorted.length, seconds, p50Ms: at(0.5), p99Ms: at(0.99) };
}

export function printFigures(label: string, figures: Figures, unit = "ops") {
  const rate = figures.operations / figures.seconds;
  console.log(
    `${label.padEnd(34)} ${Math.round(rate).toLocaleString("en").padStart(10)} ${unit}/s   ` +
      `p50 ${figures.p50Ms.toFixed(3)} ms   p99 ${figures.p99Ms.toFixed(3)} ms   (${figures.operations} in ${figures.seconds.toFixed(2)} s)`,
  );
}
