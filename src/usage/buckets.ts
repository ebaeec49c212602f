/** UTC bucket widths shared by the summary and the rollups ingest keeps. */
export type UsageGrain = "MINUTE" | "HOUR" | "DAY";

/** Finest first; each width divides the next, so a bucket of one lies within one bucket of the next. */
export const USAGE_GRAINS = ["MINUTE", "HOUR", "DAY"] as const satisfies readonly UsageGrain[];

export const GRAIN_MS: Record<UsageGrain, number> = { MINUTE: 60_000, HOUR: 3_600_000, DAY: 86_400_000 };

/** A request counts as an error when its status is 400 or above. */
export const ERROR_STATUS_FROM = 400;

/** Epoch-aligned buckets are UTC minutes, hours and days, as date_trunc on UTC timestamps makes them. */
export const bucketStart = (at: number, grain: UsageGrain) => Math.floor(at / GRAIN_MS[grain]) * GRAIN_MS[grain];

