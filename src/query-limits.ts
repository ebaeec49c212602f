import { costLimitPlugin } from "@escape.tech/graphql-armor-cost-limit";
import { maxAliasesPlugin } from "@escape.tech/graphql-armor-max-aliases";
import { maxDepthPlugin } from "@escape.tech/graphql-armor-max-depth";
import { maxDirectivesPlugin } from "@escape.tech/graphql-armor-max-directives";
import { maxTokensPlugin } from "@escape.tech/graphql-armor-max-tokens";
import type { GraphQLArmorCallbackConfiguration } from "@escape.tech/graphql-armor-types";
import type { Plugin } from "graphql-yoga";

/**
 * Bounds on one operation's shape, checked before it runs, so a single request cannot make the
 * server resolve an unbounded tree (deep relation cycles, thousands of aliases). The deepest
 * real screen (user → partner → apiKeys → edges → node → usageLogs → edges → node → field) is
 * depth 9; the bounds leave room above what dashboards and GraphiQL need.
 */
export const QUERY_LIMITS = {
  depth: 12,
  aliases: 30,
  directives: 20,
  tokens: 5000,
  cost: 20_000,
} as const;

// Reported as ordinary validation errors (GRAPHQL_VALIDATION_FAILED, HTTP 400) instead of thrown.
const asValidationError: GraphQLArmorCallbackConfiguration = {
  propagateOnRejection: false,
  onReject: [(context, error) => context?.reportError(error)],
};

export function queryLimitPlugins(): Plugin[] {
  return [
    maxTokensPlugin({ n: QUERY_LIMITS.tokens }),
    maxDepthPlugin({ n: QUERY_LIMITS.depth, ignoreIntrospection: true, flattenFragments: true, ...asValidationError }),
    maxAliasesPlugin({ n: QUERY_LIMITS.aliases, ...asValidationError }),
    maxDirectivesPlugin({ n: QUERY_LIMITS.directives, ...asValidationError }),
    costLimitPlugin({ maxCost: QUERY_LIMITS.cost, ignoreIntrospection: true, flattenFragments: true, ...asValidationError }),
  ] as Plugin[];
}
