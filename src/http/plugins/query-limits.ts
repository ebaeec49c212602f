import { maxAliasesPlugin } from "@escape.tech/graphql-armor-max-aliases";
import { maxDepthPlugin } from "@escape.tech/graphql-armor-max-depth";
import { maxDirectivesPlugin } from "@escape.tech/graphql-armor-max-directives";
import type { GraphQLArmorCallbackConfiguration } from "@escape.tech/graphql-armor-types";
import {
  getNamedType,
  getNullableType,
  getOperationAST,
  getVariableValues,
  GraphQLError,
  isCompositeType,
  isListType,
  isObjectType,
  Kind,
  MaxIntrospectionDepthRule,
  parse,
  type ASTNode,
  type DocumentNode,
  type ExecutionArgs,
  type GraphQLNamedType,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
  visit,
} from "graphql";
import { getComplexity, type ComplexityEstimator } from "graphql-query-complexity";
import type { Plugin } from "graphql-yoga";

/**
 * Bounds on one operation, checked before it runs, so a single request cannot make the server
 * resolve an unbounded tree (deep relation cycles, thousands of aliases, nested pages). The
 * deepest real screen (user → partner → apiKeys → edges → node → usageLogs → edges → node →
 * field) is depth 9; the bounds leave room above what dashboards and GraphiQL need.
 */
export const QUERY_LIMITS = {
  depth: 12,
  aliases: 30,
  directives: 20,
  tokens: 5000,
  cost: 20_000,
} as const;

/** The server's connection pages (builder.ts, usage-log.ts): 20 items unless asked, at most 100. */
export const PAGE_SIZE = { default: 20, max: 100 } as const;

/** A list that is not a connection and takes no size argument is counted as this many items. */
const UNSIZED_LIST_ITEMS = 100;

/** Which bound an operation went over: `extensions.limit` of the error. */
export type QueryLimit = keyof typeof QUERY_LIMITS | "passwordChecks";

/** The error for an operation over a bound. Every such error answers HTTP 400 (see below). */
export function limitError(limit: QueryLimit, message: string, nodes?: ReadonlyArray<ASTNode> | ASTNode | null) {
  return new GraphQLError(message, { nodes, extensions: { code: "GRAPHQL_VALIDATION_FAILED", limit } });
}

const isLimitError = (error: unknown) =>
  error instanceof GraphQLError && typeof error.extensions?.limit === "string";

// Armor's rules report through the validation context instead of throwing, as our own error.
const reportAs = (limit: QueryLimit): GraphQLArmorCallbackConfiguration => ({
  propagateOnRejection: false,
  onReject: [(context, error) => context?.reportError(limitError(limit, error.message, error.nodes))],
});

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
      context.reportError(limitError("passwordChecks", "An operation may sign in or sign up only once", operation));
    }
  },
});

/**
 * Introspection is free of the cost bound (GraphiQL and codegen need the whole schema), but a
 * type's `fields { type { fields { … } } }` multiplies at each level: graphql's own rule caps
 * such lists at three deep, well above the standard introspection query. Wrapped so that its
 * error is a limit error like the others.
 */
export const introspectionDepth: ValidationRule = (context) =>
  MaxIntrospectionDepthRule(
    Object.create(context, {
      reportError: { value: (error: GraphQLError) => context.reportError(limitError("depth", error.message, error.nodes)) },
    }) as ValidationContext,
  );

/** graphql's own parser stops counting at the bound, so an oversized document is never built. */
function tokenLimit(): Plugin {
  // graphql 16 says "more that N tokens"; the pattern accepts the corrected wording too.
  const tooManyTokens = /^Syntax Error: Document contains more th(?:at|an) \d+ tokens/;
  return {
    onParse({ setParseFn }) {
      setParseFn((source, options) => {
        try {
          return parse(source, { ...options, maxTokens: QUERY_LIMITS.tokens });
        } catch (error) {
          if (error instanceof GraphQLError && tooManyTokens.test(error.message)) {
            throw limitError("tokens", `The operation has more than ${QUERY_LIMITS.tokens} tokens`);
          }
          throw error;
        }
      });
    },
  };
}

const isConnection = (type: GraphQLNamedType) => {
  if (!isObjectType(type)) return false;
  const fields = type.getFields();
  return "edges" in fields && "pageInfo" in fields;
};

/** Items a connection page can hold for these arguments, clamped as the server clamps them. */
function pageItems(args: Record<string, unknown>): number {
  const asked = [args.first, args.last].filter((value): value is number => typeof value === "number");
  if (asked.length === 0) return PAGE_SIZE.default;
  return Math.min(PAGE_SIZE.max, Math.max(1, ...asked));
}

/**
 * A field costs 1, plus its selection once per item it can return: a connection's page size (from
 * `first`/`last` with the variables' values), the number of ids given to `nodes`, or
 * UNSIZED_LIST_ITEMS for another list of records. Introspection is free (GraphiQL and codegen).
 */
const estimateField: ComplexityEstimator = ({ type, field, args, childComplexity }) => {
  if (type.name.startsWith("__") || field.name.startsWith("__")) return 0;
  const returned = getNamedType(field.type);
  let items = 1;
  if (isConnection(returned)) items = pageItems(args);
  else if (isConnection(type) && field.name === "edges") items = 1; // counted on the connection
  else if (field.name === "nodes" && Array.isArray(args.ids)) items = Math.max(1, args.ids.length);
  else if (isListType(getNullableType(field.type)) && isCompositeType(returned)) items = UNSIZED_LIST_ITEMS;
  return 1 + items * childComplexity;
};

/**
 * The cost of the operation that will run, computed with its variables' values. Null when the
 * operation or its variables are invalid: execution then refuses it with its own error.
 */
export function operationCost(args: Pick<ExecutionArgs, "schema" | "document" | "operationName" | "variableValues">) {
  const operation = getOperationAST(args.document, args.operationName);
  if (!operation) return null;
  const variables = args.variableValues ?? {};
  const coerced = getVariableValues(args.schema, operation.variableDefinitions ?? [], variables);
  if (coerced.errors) return null;
  const query: DocumentNode = {
    kind: Kind.DOCUMENT,
    definitions: args.document.definitions.filter(
      (definition) => definition === operation || definition.kind === Kind.FRAGMENT_DEFINITION,
    ),
  };
  try {
    return getComplexity({ schema: args.schema, query, variables, estimators: [estimateField] });
  } catch {
    // Only the library's own bound on visited nodes (fragments spread into each other) gets here.
    return Infinity;
  }
}

/** Arguments whose values size what a field returns, and so its cost. */
const SIZING_ARGUMENTS = new Set(["first", "last", "ids"]);

interface DocumentCosts {
  /** The variables any sizing argument takes its value from: only they can change the cost. */
  sizingVariables: string[];
  byValues: Map<string, number | null>;
}
const documentCosts = new WeakMap<DocumentNode, DocumentCosts>();
const COSTS_PER_DOCUMENT = 64;

/**
 * `operationCost`, remembered per parsed document (shared by every request that sends the same
 * text) and the values of the variables that size its lists, so a request that repeats an
 * operation costs a map lookup rather than a walk of its document.
 */
function memoisedCost(args: ExecutionArgs): number | null {
  let costs = documentCosts.get(args.document);
  if (!costs) {
    const sizingVariables = new Set<string>();
    visit(args.document, {
      [Kind.ARGUMENT]: (node) => {
        if (!SIZING_ARGUMENTS.has(node.name.value)) return;
        visit(node.value, { [Kind.VARIABLE]: (variable) => void sizingVariables.add(variable.name.value) });
      },
    });
    costs = { sizingVariables: [...sizingVariables], byValues: new Map() };
    documentCosts.set(args.document, costs);
  }
  const variables = (args.variableValues ?? {}) as Record<string, unknown>;
  const key = JSON.stringify([args.operationName ?? null, ...costs.sizingVariables.map((name) => variables[name] ?? null)]);
  let cost = costs.byValues.get(key);
  if (cost === undefined) {
    cost = operationCost(args);
    if (costs.byValues.size >= COSTS_PER_DOCUMENT) costs.byValues.clear();
    costs.byValues.set(key, cost);
  }
  return cost;
}

function costError(cost: number) {
  return limitError(
    "cost",
    Number.isFinite(cost)
      ? `The operation's cost of ${cost} is over the limit of ${QUERY_LIMITS.cost}`
      : `The operation's cost is over the limit of ${QUERY_LIMITS.cost}`,
  );
}

/**
 * Refuses an operation over the cost bound before it runs. It runs where the variables are known
 * (a validation rule sees only the document, so `first: $n` would pass whatever $n is), over
 * HTTP, SSE and graphql-ws alike, for queries, mutations, subscriptions and `@live` queries.
 */
function costLimit(): Plugin {
  const check = (args: ExecutionArgs, stop: (result: { errors: GraphQLError[] }) => void) => {
    const cost = memoisedCost(args);
    if (cost !== null && cost > QUERY_LIMITS.cost) stop({ errors: [costError(cost)] });
  };
  return {
    onExecute: ({ args, setResultAndStopExecution }) => check(args, setResultAndStopExecution),
    onSubscribe: ({ args, setResultAndStopExecution }) => check(args, setResultAndStopExecution),
  };
}

/**
 * An operation over a bound answers HTTP 400 whatever the Accept header. (Under the legacy
 * `application/json` rules a validation failure would answer 200; a client that went over a
 * bound should not be told its request was fine.)
 */
function limitViolationsAnswer400(): Plugin {
  return {
    onResultProcess({ result, setResult }) {
      if (Array.isArray(result) || Symbol.asyncIterator in result) return;
      if (!result.errors?.some(isLimitError)) return;
      const http = { ...(result.extensions?.http as Record<string, unknown> | undefined), status: 400 };
      setResult({ ...result, extensions: { ...result.extensions, http } });
    },
  };
}

export function queryLimitPlugins(): Plugin[] {
  return [
    limitViolationsAnswer400(),
    tokenLimit(),
    {
      onValidate: ({ params, addValidationRule }) => {
        addValidationRule(onePasswordCheckPerOperation);
        // graphql's recommended rules already hold MaxIntrospectionDepthRule: ours replaces it.
        const rules = params.rules as ValidationRule[] | undefined;
        const index = rules?.indexOf(MaxIntrospectionDepthRule) ?? -1;
        if (rules && index >= 0) rules[index] = introspectionDepth;
        else addValidationRule(introspectionDepth);
      },
    },
    maxDepthPlugin({ n: QUERY_LIMITS.depth, ignoreIntrospection: true, flattenFragments: true, ...reportAs("depth") }),
    maxAliasesPlugin({ n: QUERY_LIMITS.aliases, ...reportAs("aliases") }),
    maxDirectivesPlugin({ n: QUERY_LIMITS.directives, ...reportAs("directives") }),
    costLimit(),
  ] as Plugin[];
}
