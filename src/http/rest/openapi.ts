import type { GraphQLSchema } from "graphql";
import { REST_ROUTES, REST_SELECTION } from "./routes.js";

export const OPENAPI_INFO = {
  title: "Partner Portal REST API",
  version: "1.0.0",
  description:
    "The Partner Portal's GraphQL schema as REST routes: each route runs one root field, with the same " +
    "authentication, rules and limits. Send `Authorization: Bearer <token>` with a session token (from " +
    "`POST /api/login`) or a service credential. Errors answer a JSON body `{ code, message, errors }` " +
    "with the status of their code: UNAUTHENTICATED 401, FORBIDDEN 403, NOT_FOUND 404, BAD_USER_INPUT 400 " +
    "(the request did not parse) or 422 (the values were refused), CONFLICT 409, RATE_LIMITED 429 " +
    "(with Retry-After).",
};

/** How the schema's custom scalars look in JSON. */
export const CUSTOM_SCALARS = {
  DateTime: { type: "string", format: "date-time" },
  EmailAddress: { type: "string", format: "email" },
  SafeInt: { type: "integer", format: "int64" },
  JSON: {},
};


const ERROR_SCHEMA = {
  type: "object",
  description: "Every error answer: the first error's code and message, then every error as GraphQL reports it.",
  required: ["code", "message", "errors"],
  properties: {
    code: {
      type: "string",
      description: "UNAUTHENTICATED, FORBIDDEN, NOT_FOUND, BAD_USER_INPUT, CONFLICT, RATE_LIMITED, GRAPHQL_VALIDATION_FAILED, …",
    },
    message: { type: "string" },
    errors: {
      type: "array",
      items: {
        type: "object",
        required: ["message", "extensions"],
        properties: {
          message: { type: "string" },
          path: { type: "array", items: { oneOf: [{ type: "string" }, { type: "integer" }] } },
          extensions: { type: "object", additionalProperties: true },
        },
      },
    },
  },
};

const errorResponse = (description: string) => ({
  description,
  content: { "application/json": { schema: { $ref: "#/components/schemas/RestError" } } },
});

interface Operation {
  operationId?: string;
  summary?: string;
  description?: string;
  tags?: string[];
  security?: unknown[];
  parameters?: Array<{ name: string }>;
  requestBody?: { content?: Record<string, { schema?: { properties?: Record<string, unknown>; required?: string[] } }> };
  responses?: Record<string, unknown>;
}
interface OpenApiDocument {
  info?: unknown;
  paths?: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, unknown>; securitySchemes?: Record<string, unknown> };
  security?: unknown[];
}

/**
 * SOFA's document, completed: the bearer scheme, each operation named after its field and
 * described by the field's description (SOFA leaves queries without one), and the error answers.
 */
export function completeOpenApi(document: OpenApiDocument, schema: GraphQLSchema): OpenApiDocument {
  const fieldOf = new Map(
    Object.entries(REST_ROUTES).map(([field, route]) => [`${route.method.toLowerCase()} ${route.path.replace(/:([^/]+)/g, "{$1}")}`, field]),
  );
  for (const [path, operations] of Object.entries(document.paths ?? {})) {
    for (const [method, operation] of Object.entries(operations)) {
      const field = fieldOf.get(`${method} ${path}`);
      if (!field) continue;
      const [typeName, fieldName] = field.split(".") as [string, string];
      const type = typeName === "Query" ? schema.getQueryType() : schema.getMutationType();
      const description = type?.getFields()[fieldName]?.description ?? undefined;
      operation.operationId = fieldName;
      operation.summary = `${typeName === "Query" ? "Query" : "Mutation"}.${fieldName}`;
      if (description) operation.description = description;
      // Arguments of a record's own connections, which REST records leave out (rest-selection.ts).
      operation.parameters = operation.parameters?.filter((parameter) => !parameter.name.includes("_"));
      const body = operation.requestBody?.content?.["application/json"]?.schema;
      if (body?.properties) {
        for (const name of Object.keys(body.properties)) if (name.includes("_")) delete body.properties[name];
        if (body.required) body.required = body.required.filter((name) => !name.includes("_"));
      }
      // Routes anyone may call: the token is optional there.
      if (REST_ROUTES[field]?.anyone) operation.security = [{}, { bearerAuth: [] }];
      else delete operation.security;
      operation.responses = {
        ...operation.responses,
        "400": errorResponse("The request did not parse (BAD_USER_INPUT), or went over a query limit"),
        "401": errorResponse("No valid token where one is needed (UNAUTHENTICATED)"),
        "403": errorResponse("The caller may not do this (FORBIDDEN)"),
        ...(method === "get" && path.includes("{") ? { "404": errorResponse("No such record, or the caller may not read it (NOT_FOUND)") } : {}),
        "422": errorResponse("The values were refused (BAD_USER_INPUT)"),
        ...(typeName === "Mutation" ? { "409": errorResponse("The change clashes with the current state (CONFLICT)") } : {}),
        "429": errorResponse("Too many attempts (RATE_LIMITED); see Retry-After"),
      };
    }
  }
  // The fields REST records leave out (rest-selection.ts): connections and the omitted ones.
  for (const [typeName, typeSchema] of Object.entries(document.components?.schemas ?? {})) {
    const properties = (typeSchema as { properties?: Record<string, { $ref?: string }> }).properties ?? {};
    for (const [name, property] of Object.entries(properties)) {
      if (property.$ref?.endsWith("Connection") || REST_SELECTION.omit.includes(`${typeName}.${name}`)) {
        delete properties[name];
        const required = (typeSchema as { required?: string[] }).required;
        if (required?.includes(name)) required.splice(required.indexOf(name), 1);
      }
    }
  }
  return {
    ...document,
    info: OPENAPI_INFO,
    security: [{ bearerAuth: [] }],
    components: {
      ...document.components,
      schemas: { ...document.components?.schemas, RestError: ERROR_SCHEMA },
      securitySchemes: {
        ...document.components?.securitySchemes,
        bearerAuth: {
          type: "http",
          scheme: "bearer",
          description: "A session token from POST /api/login or /api/sign-up, or a service credential's secret.",
        },
      },
    },
  };
}
