/// <reference types="vite/client" />
// The authorization matrix (test/matrix/*.ts) run again through the REST API: each row on a root
// field is sent to that field's route, with the same arguments and the same actor, so a route can
// never allow more than its field (nor, but for signed-out callers, less).
import { Kind, parse, valueFromASTUntyped, type FieldNode, type OperationDefinitionNode } from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REST_ROUTES } from "../src/http/rest/routes.js";
import { ACTORS, createWorld, defaultAllowed, type MatrixOperation, type MatrixRow, type World } from "./support/matrix.js";
import { startTestServer, type GraphQLResponse, type TestServer } from "./support/server.js";

const modules = import.meta.glob<{ default: MatrixRow[] }>("./matrix/*.ts", { eager: true });
const rows = Object.values(modules)
  .flatMap((module) => module.default)
  .filter((row) => row.field in REST_ROUTES);

let server: TestServer;
let world: World;
let api: string;
beforeAll(async () => {
  server = await startTestServer();
  world = await createWorld(server);
  api = server.url.replace(/\/graphql$/, "/api");
});
afterAll(async () => {
  await server?.close();
});

interface RestCall {
  field: string;
  responseKey: string;
  method: string;
  path: string;
  body?: string;
}

/** The REST call that asks what the row's GraphQL operation asks: its root field's route and arguments. */
function restCall(operation: MatrixOperation): RestCall {
  const definition = parse(operation.query).definitions.find(
    (node): node is OperationDefinitionNode => node.kind === Kind.OPERATION_DEFINITION,
  )!;
  const root = definition.selectionSet.selections.find((node): node is FieldNode => node.kind === Kind.FIELD)!;
  const variables: Record<string, unknown> = {};
  for (const variable of definition.variableDefinitions ?? []) {
    if (variable.defaultValue) variables[variable.variable.name.value] = valueFromASTUntyped(variable.defaultValue);
  }
  Object.assign(variables, operation.variables);
  const args = Object.fromEntries(
    (root.arguments ?? []).map((argument) => [argument.name.value, valueFromASTUntyped(argument.value, variables)]),
  );
  const field = `${definition.operation === "query" ? "Query" : "Mutation"}.${root.name.value}`;
  const route = REST_ROUTES[field];
  if (!route) throw new Error(`no route for ${field}`);
  const path = route.path.replace(/:([^/]+)/g, (_match, name: string) => {
    const value = args[name];
    delete args[name];
    return encodeURIComponent(String(value));
  });
  const defined = Object.entries(args).filter(([, value]) => value !== undefined && value !== null);
  if (route.method === "GET") {
    const query = new URLSearchParams();
    for (const [name, value] of defined) {
      for (const item of Array.isArray(value) ? value : [value]) {
        query.append(name, typeof item === "object" ? JSON.stringify(item) : String(item));
      }
    }
    const search = query.toString();
    return { field, responseKey: root.alias?.value ?? root.name.value, method: "GET", path: search ? `${path}?${search}` : path };
  }
  return {
    field,
    responseKey: root.alias?.value ?? root.name.value,
    method: route.method,
    path,
    body: JSON.stringify(Object.fromEntries(defined)),
  };
}

/** The REST answer as the GraphQL response the row's judgement reads. */
async function send(call: RestCall, token: string | undefined): Promise<{ status: number; response: GraphQLResponse }> {
  const answer = await fetch(`${api}${call.path}`, {
    method: call.method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(call.body ? { "content-type": "application/json" } : {}),
    },
    body: call.body,
  });
  const body = await answer.json();
  const response: GraphQLResponse = answer.ok
    ? { data: { [call.responseKey]: body } }
    : { data: null, errors: (body as { errors: GraphQLResponse["errors"] }).errors };
  return { status: answer.status, response };
}

describe("the matrix has REST rows", () => {
  it("covers the routes' fields", () => {
    expect(rows.length).toBeGreaterThan(20);
  });
});

describe.each(rows.map((row) => [`${row.field}: ${row.case}`, row] as const))("%s", (_name, row) => {
  it.each(ACTORS.map((actor) => [actor, row.allow.includes(actor)] as const))(
    "%s allowed=%s",
    async (actor, expected) => {
      const operation = await row.operation(world, actor);
      const token = "token" in operation ? operation.token : world.token(actor);
      const call = restCall(operation);
      const { status, response } = await send(call, token);
      const allowed = (row.allowed ?? defaultAllowed)(response, world, actor);
      const signInRequired = !token && !REST_ROUTES[call.field]!.anyone;
      if (signInRequired) {
        // REST asks for a token where GraphQL answers a signed-out caller an empty list.
        expect(status, JSON.stringify(response)).toBe(401);
      } else {
        expect(allowed, `${call.method} ${call.path} → ${status} ${JSON.stringify(response)}`).toBe(expected);
      }
      if (!allowed) expect([200, 401, 403, 404]).toContain(status);
    },
  );
});
