import { PothosValidationError } from "@pothos/core";
import { GraphQLError } from "graphql";
import { handleStreamOrSingleExecutionResult, type Plugin } from "graphql-yoga";

/**
 * The client's mistakes, coded before Yoga's error masking sees them, so they are answered as
 * such and not logged as server errors:
 * - variable values that do not coerce (an unknown enum value, a string for an Int, a number out
 *   of Int range, a missing required variable): BAD_USER_INPUT;
 * - Pothos's own argument checks (a malformed global id, an id of the wrong type): BAD_USER_INPUT.
 */
export function codeClientErrors(): Plugin {
  const isVariableError = (error: GraphQLError) =>
    !error.path && !error.extensions?.code && error.message.startsWith('Variable "$');
  const isPothosValidation = (error: GraphQLError) => error.originalError instanceof PothosValidationError;
  const recode = (error: GraphQLError) =>
    isVariableError(error) || isPothosValidation(error)
      ? new GraphQLError(error.message, {
          nodes: error.nodes,
          path: error.path,
          extensions: { ...error.extensions, code: "BAD_USER_INPUT" },
        })
      : error;
  const onResult: Parameters<typeof handleStreamOrSingleExecutionResult>[1] = ({ result, setResult }) => {
    const errors = result.errors?.map(recode);
    if (errors?.some((error, i) => error !== result.errors![i])) setResult({ ...result, errors });
  };
  return {
    onExecute: () => ({ onExecuteDone: (payload) => handleStreamOrSingleExecutionResult(payload, onResult) }),
    onSubscribe: () => ({ onSubscribeResult: (payload) => handleStreamOrSingleExecutionResult(payload, onResult) }),
  };
}
