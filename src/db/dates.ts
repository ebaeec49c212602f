import { z } from "zod";

/**
 * The instants a `timestamp(3)` column holds here: years 0001 to 9999 (UTC). PostgreSQL itself
 * goes further, but not through ISO-8601 text: year 0000 does not exist there (it counts 1 BC),
 * and JavaScript writes years outside 0000–9999 with a sign (`+010000-…`) that it cannot read.
 * The DateTime scalar accepts offsets that push a date just past either end, so every date
 * argument that reaches a query is checked against these first.
 */
export const EARLIEST_STORABLE_DATE = new Date("0001-01-01T00:00:00.000Z");
export const LATEST_STORABLE_DATE = new Date("9999-12-31T23:59:59.999Z");

export function isStorableDate(date: Date): boolean {
  const time = date.getTime();
  return time >= EARLIEST_STORABLE_DATE.getTime() && time <= LATEST_STORABLE_DATE.getTime();
}

/** For date arguments: anything else is the client's mistake (BAD_USER_INPUT), never a failed query. */
export const storableDate = z
  .date()
  .refine(isStorableDate, "must be a date from 0001-01-01 to 9999-12-31 (UTC)");
