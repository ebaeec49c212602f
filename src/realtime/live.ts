import { encodeGlobalID } from "@pothos/plugin-relay";
import type { AppPubSub } from "./pubsub.js";

/**
 * The resource identifier the live-query store tracks for a record: its GraphQL type name and
 * the Relay global id its `id` field shows (the store collects every selected `id: ID!`).
 */
export const liveKey = (typeName: string, id: string) => `${typeName}:${encodeGlobalID(typeName, id)}`;

/**
 * Re-runs, on every instance, the `@live` queries that selected any of these identifiers: a
 * record (`liveKey("APIKey", id)`) or a root field coordinate (`"Query.usageSummary"`). Call it
 * after the change has committed.
 */
export function invalidateLive(pubsub: AppPubSub, keys: readonly string[]): void {
  if (keys.length > 0) pubsub.publish("live:invalidate", { keys: [...new Set(keys)] });
}
