import { costLimitPlugin } from "@escape.tech/graphql-armor-cost-limit";
import { maxAliasesPlugin } from "@escape.tech/graphql-armor-max-aliases";
import { maxDepthPlugin } from "@escape.tech/graphql-armor-max-depth";
import { maxDirectivesPlugin } from "@escape.tech/graphql-armor-max-directives";
import { maxTokensPlugin } from "@escape.tech/graphql-armor-max-tokens";
import type { GraphQLArmorCallbackConfiguration } from "@escape.tech/graphql-armor-types";
import { GraphQLError, Kind, type SelectionSetNode, type ValidationContext, type ValidationRule } from "graphql";
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

/**
 * Root fields that check a password. Each costs ~19 MiB of argon2 work, and many aliases of one
 * in a request would let a caller try many passwords at once, so an operation may hold only one.
 */
const PASSWORD_FIELDS = new Set(["login", "signUp"]);

function countRootFields(context: ValidationContext, selectionSet: SelectionSetNode, seen = new Set<string>()): number {
  let count = 0;
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) {
      if (PASSWORD_FIELDS.has(selection.name.value)) count++;
    } else if (selection.kind === Kind.INLINE_FRAGMENT) {
      count += countRootFields(context, selection.selectionSet, seen);
    } else if (!seen.has(selection.name.value)) {
      seen.add(selection.name.value);
      const fragment = context.getFragment(selection.name.value);
      if (fragment) count += countRootFields(context, fragment.selectionSet, seen);
    }
  }
  return count;
}

export const onePasswordCheckPerOperation: ValidationRule = (context) => ({
  OperationDefinition(operation) {
    if (operation.operation !== "mutation") return;
    if (countRootFields(context, operation.selectionSet) > 1) {
      context.reportError(
        new GraphQLError("An operation may sign in or sign up only once", { nodes: [operation] }),
      );
    }
  },
});

export function queryLimitPlugins(): Plugin[] {
  return [
    { onValidate: ({ addValidationRule }) => addValidationRule(onePasswordCheckPerOperation) },
    maxTokensPlugin({ n: QUERY_LIMITS.tokens }),
    maxDepthPlugin({ n: QUERY_LIMITS.depth, ignoreIntrospection: true, flattenFragments: true, ...asValidationError }),
    maxAliasesPlugin({ n: QUERY_LIMITS.aliases, ...asValidationError }),
    maxDirectivesPlugin({ n: QUERY_LIMITS.directives, ...asValidationError }),
    costLimitPlugin({ maxCost: QUERY_LIMITS.cost, ignoreIntrospection: true, flattenFragments: true, ...asValidationError }),
  ] as Plugin[];
}
