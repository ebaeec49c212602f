/**
 * The REST routes under /api, one per root field (SOFA answers every root field; without a line
 * here a field would get SOFA's default, e.g. `POST /api/create-api-key`). A path's `:name` is
 * the field's argument of that name; other arguments come from the query string (GET) or the
 * JSON body. Each route runs the field's own GraphQL operation, so its rules are the field's.
 */
export type RestMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

export interface RestRoute {
  method: RestMethod;
  path: string;
  tag: string;
  /** 201 for routes that create a record. */
  status?: 200 | 201;
  /** Callable without a token; every other route answers 401 without one. */
  anyone?: boolean;
}

const route = (method: RestMethod, path: string, tag: string, extra: Partial<RestRoute> = {}): RestRoute => ({
  method,
  path,
  tag,
  ...extra,
});
const created = { status: 201 } as const;
const anyone = { anyone: true } as const;

export const REST_ROUTES: Readonly<Record<string, RestRoute>> = {
  "Mutation.signUp": route("POST", "/sign-up", "Sessions", { ...created, ...anyone }),
  "Mutation.login": route("POST", "/login", "Sessions", anyone),
  "Mutation.logout": route("POST", "/logout", "Sessions"),
  "Query.viewer": route("GET", "/me", "Sessions", anyone),

  "Query.partners": route("GET", "/partners", "Partners"),
  "Query.partner": route("GET", "/partners/:id", "Partners"),
  "Mutation.createPartner": route("POST", "/partners", "Partners", created),
  "Mutation.updatePartner": route("PATCH", "/partners/:id", "Partners"),

  "Query.users": route("GET", "/users", "Users"),
  "Mutation.setUserRole": route("PUT", "/users/:userId/role", "Users"),
  "Mutation.setUserPartner": route("PUT", "/users/:userId/partner", "Users"),
  "Mutation.inviteUser": route("POST", "/invitations", "Users", created),
  "Mutation.acceptInvitation": route("POST", "/invitations/accept", "Users", { ...created, ...anyone }),
  "Mutation.createPasswordReset": route("POST", "/users/:userId/password-resets", "Users", created),
  "Mutation.resetPassword": route("POST", "/password-resets/accept", "Users", anyone),

  "Query.apiKeys": route("GET", "/api-keys", "API keys"),
  "Query.apiKey": route("GET", "/api-keys/:id", "API keys"),
  "Mutation.createApiKey": route("POST", "/api-keys", "API keys", created),
  "Mutation.rotateApiKey": route("POST", "/api-keys/:id/rotate", "API keys"),
  "Mutation.revokeApiKey": route("POST", "/api-keys/:id/revoke", "API keys"),
  "Mutation.updateApiKey": route("PATCH", "/api-keys/:id", "API keys"),
  "Mutation.disableApiKey": route("POST", "/api-keys/:id/disable", "API keys"),
  "Mutation.enableApiKey": route("POST", "/api-keys/:id/enable", "API keys"),

  // The secret travels in the body: query strings end up in access logs.
  "Query.verifyApiKey": route("POST", "/api-keys/verify", "Gateway"),
  "Mutation.recordUsage": route("POST", "/usage-logs", "Gateway"),
  "Query.serviceCredentials": route("GET", "/service-credentials", "Gateway"),
  "Mutation.createServiceCredential": route("POST", "/service-credentials", "Gateway", created),
  "Mutation.revokeServiceCredential": route("POST", "/service-credentials/:id/revoke", "Gateway"),

  "Query.usageLogs": route("GET", "/usage-logs", "Usage"),
  "Query.usageSummary": route("GET", "/usage-summary", "Usage"),

  "Query.developerDocs": route("GET", "/developer-docs", "Developer docs", anyone),
  "Query.developerDoc": route("GET", "/developer-docs/:apiVersion/:slug", "Developer docs", anyone),
  "Query.apiVersions": route("GET", "/api-versions", "Developer docs", anyone),
  "Mutation.createDeveloperDoc": route("POST", "/developer-docs", "Developer docs", created),
  "Mutation.updateDeveloperDoc": route("PATCH", "/developer-docs/:id", "Developer docs"),
  "Mutation.deleteDeveloperDoc": route("DELETE", "/developer-docs/:id", "Developer docs"),
  "Mutation.publishDeveloperDoc": route("POST", "/developer-docs/:id/publish", "Developer docs"),
  "Mutation.unpublishDeveloperDoc": route("POST", "/developer-docs/:id/unpublish", "Developer docs"),
  "Query.changelog": route("GET", "/changelog", "Developer docs", anyone),

  "Query.auditEvents": route("GET", "/audit-events", "Audit log"),

  "Query.node": route("GET", "/nodes/:id", "Nodes"),
  "Query.nodes": route("GET", "/nodes", "Nodes"),
};

/**
 * How REST records show what they reference. A referenced record is `{ id }`, and a record's own
 * connections are left out (each has its own route), except:
 */
export const REST_SELECTION = {
  /** References shown whole: what a REST client needs from the answer without a second call. */
  expand: [
    "AuthPayload.user",
    "CreatePartnerPayload.partner",
    "CreateApiKeyPayload.apiKey",
    "RotateApiKeyPayload.apiKey",
    "CreateServiceCredentialPayload.serviceCredential",
  ],
  /** Fields left out: verification answers from its cache; these two would read the database. */
  omit: ["ApiKeyVerification.apiKey", "ApiKeyVerification.partner"],
};

const patterns = Object.entries(REST_ROUTES).map(([field, entry]) => ({
  field,
  entry,
  pattern: new RegExp(`^${entry.path.replace(/:[^/]+/g, "[^/]+")}$`),
}));

/** The route a request names (its path below /api), and the root field it runs. */
export function matchRoute(method: string, path: string): { field: string; route: RestRoute } | undefined {
  const match = patterns.find(({ entry, pattern }) => entry.method === method && pattern.test(path));
  return match && { field: match.field, route: match.entry };
}
