import { getOperationAST, GraphQLError, Kind, type DocumentNode, type ExecutionResult, type FieldNode } from "graphql";
import { compileQuery, isCompiledQuery, type CompiledQuery } from "graphql-jit";
import type { Plugin } from "graphql-yoga";

/**
 * The gateway's two hot operations: an operation of this type whose one root field is this one.
 * A verification compiles only while it asks for its own scalars: its `apiKey` and `partner` are
 * records the Prisma plugin loads from the executor's resolve info, which graphql-jit does not
 * give in full.
 */
const COMPILED_ROOT_FIELDS = {
  mutation: { name: "recordUsage", scalarsOnly: false },
  query: { name: "verifyApiKey", scalarsOnly: true },
} as const;

/** The root field of an operation that runs compiled, else null. */
function compiledField(document: DocumentNode, operationName?: string | null): FieldNode | null {
  const operation = getOperationAST(document, operationName);
  // A directive on the operation (`@live`) means another executor runs it.
  if (!operation || operation.operation === "subscription" || operation.directives?.length) return null;
  const wanted = COMPILED_ROOT_FIELDS[operation.operation];
  const selections = operation.selectionSet.selections;
  const [only] = selections;
  if (selections.length !== 1 || only!.kind !== Kind.FIELD || only!.name.value !== wanted.name) return null;
  const scalars = only!.selectionSet?.selections.every((selection) => selection.kind === Kind.FIELD && !selection.selectionSet);
  return !wanted.scalarsOnly || scalars ? only! : null;
}

export const isRecordUsageOnly = (document: DocumentNode, operationName?: string | null) =>
  compiledField(document, operationName)?.name.value === COMPILED_ROOT_FIELDS.mutation.name;

/**
 * The gateway's hot operations executed by graphql-jit, whatever the operation's name and over
 * every transport (HTTP, WebSockets, REST): usage batches (`recordUsage`) and key verifications
 * (`verifyApiKey`, its scalars). A batch is up to 5,000 `UsageEventInput` objects, and
 * graphql-js's generic coercion of them (with the executor's copy of the variables) was the
 * largest part of what GraphQL added to ingest: about 6 ms of a 1,000-event batch of about 55. A
 * verification is small but frequent; compiled, it answered a quarter more a second in
 * alternating A/B runs (the http benchmark's row moved less than its noise).
 * graphql-jit compiles the operation, its variables' coercion included, once per parsed document;
 * the same resolvers run, with the same scopes, and the same plugins see the operation and its
 * result. Answers stay those of Yoga's executor, which every other operation keeps:
 * - variables that do not coerce (nothing has run then) are answered by that executor, with
 *   graphql-js's messages and a request error's HTTP status;
 * - an error from the field carries the field's node, as graphql-js gives it.
 * `test/compiled-gateway.test.ts` sends every kind of request both ways and compares the answers.
 */
export function compiledGatewayOperations(): Plugin {
  const compiled = new WeakMap<DocumentNode, CompiledQuery | null>();
  return {
    onExecute({ args, executeFn, setExecuteFn }) {
      const field = compiledField(args.document, args.operationName);
      if (!field) return;
      let query = compiled.get(args.document);
      if (query === undefined) {
        const compilation = compileQuery(args.schema, args.document, args.operationName ?? undefined);
        query = isCompiledQuery(compilation) ? compilation : null;
        compiled.set(args.document, query);
      }
      if (!query) return;
      const run = query;
      setExecuteFn(async (executionArgs) => {
        const result = await run.query(executionArgs.rootValue, executionArgs.contextValue, executionArgs.variableValues);
        if (!("data" in result)) return executeFn(executionArgs);
        return withLocation(result, field);
      });
    },
  };
}

/**
 * graphql-jit gives a field's errors their location but not their AST node, which the plugins
 * after it (and error masking) rebuild errors from; graphql-js gives both.
 */
function withLocation(result: ExecutionResult, field: FieldNode): ExecutionResult {
  if (!result.errors?.some((error) => !error.nodes)) return result;
  const errors = result.errors.map((error) =>
    error.nodes
      ? error
      : new GraphQLError(error.message, {
          nodes: [field],
          path: error.path,
          originalError: error.originalError ?? undefined,
          extensions: error.extensions,
        }),
  );
  return { ...result, errors };
}
