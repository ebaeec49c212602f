import { BREAK, Kind, visit, type DocumentNode, type GraphQLError } from "graphql";
import type { Plugin } from "graphql-yoga";
import { badInput } from "../../errors.js";

/**
 * Deepest nesting accepted in client input (variables). No input type of the API is deeper than
 * a few levels; anything far deeper is an attack on recursive code, refused before it runs.
 */
export const MAX_INPUT_DEPTH = 32;

/** What is wrong with a piece of client input, or null when nothing is. */
export type InputProblem = "nul" | "surrogate" | "depth";

const inputProblemMessages: Record<InputProblem, string> = {
  // PostgreSQL text cannot hold U+0000; it would fail deep in the database as an unexpected error.
  nul: "Text may not contain the NUL character (U+0000)",
  // A lone UTF-16 surrogate is not a character: no database or encoder can store it.
  surrogate: "Text may not contain a lone surrogate (U+D800 to U+DFFF without its pair)",
  depth: `Input may not be nested more than ${MAX_INPUT_DEPTH} levels deep`,
};

const inputProblemError = (problem: InputProblem) => badInput(inputProblemMessages[problem]);

// With the `u` flag a surrogate pair reads as one code point, so only a lone surrogate matches.
const LONE_SURROGATE = /\p{Surrogate}/u;

function textProblem(text: string): InputProblem | null {
  if (text.includes("\u0000")) return "nul";
  if (LONE_SURROGATE.test(text)) return "surrogate";
  return null;
}

/**
 * The first problem in a client's input value (strings, arrays, objects and their keys), walked
 * with an explicit stack so that input nested 50,000 levels deep costs a loop, not the call stack.
 */
function findInputProblem(value: unknown): InputProblem | null {
  const pending: Array<{ value: unknown; depth: number }> = [{ value, depth: 0 }];
  for (let next = pending.pop(); next; next = pending.pop()) {
    const current = next.value;
    if (typeof current === "string") {
      const problem = textProblem(current);
      if (problem) return problem;
    } else if (current !== null && typeof current === "object") {
      if (next.depth >= MAX_INPUT_DEPTH) return "depth";
      if (Array.isArray(current)) {
        for (const item of current) pending.push({ value: item, depth: next.depth + 1 });
      } else {
        for (const [key, item] of Object.entries(current)) {
          const problem = textProblem(key);
          if (problem) return problem;
          pending.push({ value: item, depth: next.depth + 1 });
        }
      }
    }
  }
  return null;
}

/** The first problem in a parsed operation's string literals or in its variables, if any. */
function findOperationInputProblem(document: DocumentNode, variables: unknown): InputProblem | null {
  return findInputProblem(variables) ?? literalProblem(document);
}

// Parsed documents are cached and shared by every request that sends the same text, so their
// literals are looked at once.
const literalProblems = new WeakMap<DocumentNode, InputProblem | null>();

function literalProblem(document: DocumentNode): InputProblem | null {
  let found = literalProblems.get(document);
  if (found === undefined) {
    found = null;
    visit(document, {
      [Kind.STRING]: (node) => {
        found = textProblem(node.value);
        if (found) return BREAK;
      },
    });
    literalProblems.set(document, found);
  }
  return found;
}

/**
 * Refuses operations whose string literals or variables carry U+0000 or a lone surrogate, or
 * whose variables are nested deeper than any input of the API, over every transport, before any
 * other code walks them.
 */
export function refuseMalformedInput(): Plugin {
  const check = (args: { document: DocumentNode; variableValues?: unknown }, stop: (result: { errors: GraphQLError[] }) => void) => {
    const problem = findOperationInputProblem(args.document, args.variableValues);
    if (problem) stop({ errors: [inputProblemError(problem)] });
  };
  return {
    onExecute: ({ args, setResultAndStopExecution }) => check(args, setResultAndStopExecution),
    onSubscribe: ({ args, setResultAndStopExecution }) => check(args, setResultAndStopExecution),
  };
}
