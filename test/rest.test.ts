// The REST API under /api, spoken to with plain fetch as a gateway or a shell script would.
import { compileErrors, validate } from "@readme/openapi-parser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REST_ROUTES } from "../src/http/rest/routes.js";
import { buildSchema } from "../src/schema/index.js";
import { seedDemoData } from "../src/seed.js";
import { startTestServer, type TestServer } from "./support/server.js";

let server: TestServer;
let api: string;
let password: string;
beforeAll(async () => {
  server = await startTestServer();
  api = server.url.replace(/\/graphql$/, "/api");
  ({ password } = await seedDemoData(server.app.services));
});
afterAll(async () => {
  await server?.close();
});

interface Answer<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

/** One REST call: JSON in, JSON out. */
async function call<T = any>(method: string, path: string, options: { token?: string; body?: unknown } = {}): Promise<Answer<T>> {
  const response = await fetch(`${api}${path}`, {
    method,
    headers: {
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      ...(options.body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: options.body === undefined ? undefined : typeof options.body === "string" ? options.body : JSON.stringify(options.body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
}

const id = (globalId: string) => encodeURIComponent(globalId);

async function login(username: string): Promise<string> {
  const answer = await call<{ token: string }>("POST", "/login", { body: { input: { login: username, password } } });
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  return answer.body.token;
}

async function partnerId(token: string, name: string): Promise<string> {
  const partners = await call("GET", `/partners?search=${encodeURIComponent(name)}`, { token });
  expect(partners.status).toBe(200);
  return partners.body.edges[0].node.id;
}

async function gatewaySecret(): Promise<string> {
  const admin = await login("admin");
  const created = await call("POST", "/service-credentials", { token: admin, body: { name: `gateway-${Date.now()}` } });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return created.body.secret;
}

describe("the OpenAPI document", () => {
  it("is valid OpenAPI 3, with the bearer scheme and every route described", async () => {
    const answer = await call("GET", "/openapi.json");
    expect(answer.status).toBe(200);
    const document = answer.body;
    const result = await validate(structuredClone(document));
    expect(result.valid ? [] : compileErrors(result)).toEqual([]);
    expect(result.warnings).toEqual([]);
    expect(document.openapi).toMatch(/^3\./);
    expect(document.components.securitySchemes.bearerAuth).toMatchObject({ type: "http", scheme: "bearer" });
    const schema = buildSchema();
    for (const [field, route] of Object.entries(REST_ROUTES)) {
      const path = route.path.replace(/:([^/]+)/g, "{$1}");
      const operation = document.paths[path]?.[route.method.toLowerCase()];
      expect(operation, `${route.method} ${path}`).toBeDefined();
      const [typeName, fieldName] = field.split(".") as ["Query" | "Mutation", string];
      const description = (typeName === "Query" ? schema.getQueryType() : schema.getMutationType())!.getFields()[fieldName]!
        .description;
      if (description) expect(operation.description).toBe(description);
      expect(operation.operationId).toBe(fieldName);
    }
    expect(document.components.schemas.APIKey.description).toMatch(/secret is shown once/);
  });

  it("names a route for every query and mutation (none left at SOFA's default path)", () => {
    const schema = buildSchema();
    const fields = [schema.getQueryType()!, schema.getMutationType()!].flatMap((type) =>
      Object.keys(type.getFields()).map((field) => `${type.name}.${field}`),
    );
    expect(fields.filter((field) => !(field in REST_ROUTES))).toEqual([]);
  });

  it("is browsable in Swagger UI served by the server itself (no CDN)", async () => {
    const page = await fetch(`${api}/docs`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('id="swagger-ui"');
    expect(html).not.toMatch(/(src|href)="https?:/);
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1]!);
    expect(assets).toContain("/api/docs/swagger-ui-bundle.js");
    for (const asset of assets) {
      const response = await fetch(new URL(asset, api));
      expect(response.status, asset).toBe(200);
      expect((await response.arrayBuffer()).byteLength, asset).toBeGreaterThan(0);
    }
    const init = await (await fetch(`${api}/docs/init.js`)).text();
    expect(init).toContain('"/api/openapi.json"');
  });
});

describe("the seed's flows end to end", () => {
  it("a partnerAdmin creates, lists, rotates and revokes a key; the gateway verifies it and reports usage", async () => {
    const acmeAdmin = await login("acme-admin");
    const acme = await partnerId(acmeAdmin, "Acme");

    const created = await call("POST", "/api-keys", {
      token: acmeAdmin,
      body: { input: { partnerId: acme, keyName: "rest-flow", scopes: ["USAGE_WRITE", "API_READ"] } },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const keyId: string = created.body.apiKey.id;
    // The new key is shown whole, not as a bare id.
    expect(created.body.apiKey).toMatchObject({ keyName: "rest-flow", isActive: true, partner: { id: acme } });
    const firstSecret: string = created.body.secret;
    expect(firstSecret).toMatch(/^ppk_/);

    const listed = await call("GET", `/api-keys?partnerId=${id(acme)}&first=100`, { token: acmeAdmin });
    expect(listed.status).toBe(200);
    const row = listed.body.edges.map((edge: { node: { id: string } }) => edge.node).find((key: { id: string }) => key.id === keyId);
    expect(row).toMatchObject({ keyName: "rest-flow", isActive: true });
    expect(row.scopes.sort()).toEqual(["API_READ", "USAGE_WRITE"]);
    expect(JSON.stringify(listed.body)).not.toContain(firstSecret);

    const read = await call("GET", `/api-keys/${id(keyId)}`, { token: acmeAdmin });
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ id: keyId, keyName: "rest-flow", partner: { id: acme } });

    const gateway = await gatewaySecret();
    const verified = await call("POST", "/api-keys/verify", {
      token: gateway,
      body: { secret: firstSecret, requiredScopes: ["USAGE_WRITE"] },
    });
    expect(verified.status, JSON.stringify(verified.body)).toBe(200);
    expect(verified.body).toMatchObject({ valid: true, code: "VALID", apiKeyId: keyId, partnerId: acme });
    // Answered from the verification cache: the fields that would read the database are left out.
    expect(verified.body).not.toHaveProperty("apiKey");
    expect(verified.body).not.toHaveProperty("partner");

    const reported = await call("POST", "/usage-logs", {
      token: gateway,
      body: {
        idempotencyKey: "rest-flow-1",
        events: [{ apiKeySecret: firstSecret, endpoint: "/v1/rest-flow", method: "GET", statusCode: 200, requestCount: 3 }],
      },
    });
    expect(reported.status, JSON.stringify(reported.body)).toBe(200);
    expect(reported.body).toEqual({ accepted: 1, rejected: [] });
    const usage = await call("GET", `/usage-logs?filter=${encodeURIComponent(JSON.stringify({ apiKeyId: keyId }))}`, { token: acmeAdmin });
    expect(usage.status, JSON.stringify(usage.body)).toBe(200);
    expect(usage.body.edges.map((edge: { node: unknown }) => edge.node)).toEqual([
      expect.objectContaining({ endpoint: "/v1/rest-flow", method: "GET", statusCode: 200, requestCount: 3, apiKey: { id: keyId } }),
    ]);

    const rotated = await call("POST", `/api-keys/${id(keyId)}/rotate`, { token: acmeAdmin, body: { gracePeriodSeconds: 0 } });
    expect(rotated.status, JSON.stringify(rotated.body)).toBe(200);
    const secondSecret: string = rotated.body.secret;
    expect(secondSecret).not.toBe(firstSecret);
    const verifyOld = await call("POST", "/api-keys/verify", { token: gateway, body: { secret: firstSecret } });
    expect(verifyOld.body).toMatchObject({ valid: false });
    const verifyNew = await call("POST", "/api-keys/verify", { token: gateway, body: { secret: secondSecret } });
    expect(verifyNew.body).toMatchObject({ valid: true, code: "VALID" });

    const revoked = await call("POST", `/api-keys/${id(keyId)}/revoke`, { token: acmeAdmin });
    expect(revoked.status, JSON.stringify(revoked.body)).toBe(200);
    expect(revoked.body).toMatchObject({ id: keyId, isActive: false });
    const verifyRevoked = await call("POST", "/api-keys/verify", { token: gateway, body: { secret: secondSecret } });
    expect(verifyRevoked.body).toMatchObject({ valid: false, code: "REVOKED" });
  });

  it("a developer of another partner gets 404 or 403 for every one of those records, and sees none listed", async () => {
    const acmeAdmin = await login("acme-admin");
    const acme = await partnerId(acmeAdmin, "Acme");
    const created = await call("POST", "/api-keys", {
      token: acmeAdmin,
      body: { input: { partnerId: acme, keyName: "not-for-globex", scopes: ["API_READ"] } },
    });
    expect(created.status).toBe(201);
    const keyId: string = created.body.apiKey.id;
    const globexDev = await login("globex-dev");

    const denied = [
      await call("GET", `/partners/${id(acme)}`, { token: globexDev }),
      await call("GET", `/api-keys/${id(keyId)}`, { token: globexDev }),
      await call("GET", `/nodes/${id(keyId)}`, { token: globexDev }),
      await call("POST", "/api-keys", {
        token: globexDev,
        body: { input: { partnerId: acme, keyName: "intruder", scopes: ["API_READ"] } },
      }),
      await call("POST", `/api-keys/${id(keyId)}/rotate`, { token: globexDev, body: { gracePeriodSeconds: 0 } }),
      await call("POST", `/api-keys/${id(keyId)}/revoke`, { token: globexDev }),
      await call("POST", "/api-keys/verify", { token: globexDev, body: { secret: created.body.secret } }),
      await call("POST", "/usage-logs", {
        token: globexDev,
        body: { events: [{ apiKeyId: keyId, endpoint: "/v1/x", method: "GET", statusCode: 200 }] },
      }),
    ];
    for (const answer of denied) {
      expect([403, 404], JSON.stringify(answer.body)).toContain(answer.status);
      expect(["FORBIDDEN", "NOT_FOUND"]).toContain(answer.body.code);
      expect(JSON.stringify(answer.body)).not.toContain("not-for-globex");
    }

    const lists = [
      await call("GET", "/partners", { token: globexDev }),
      await call("GET", `/api-keys?partnerId=${id(acme)}`, { token: globexDev }),
      await call("GET", "/api-keys?first=100", { token: globexDev }),
      await call("GET", `/usage-logs?filter=${encodeURIComponent(JSON.stringify({ apiKeyId: keyId }))}`, { token: globexDev }),
    ];
    for (const answer of lists) {
      expect(answer.status).toBe(200);
      expect(JSON.stringify(answer.body)).not.toContain(keyId);
      expect(JSON.stringify(answer.body)).not.toContain(acme);
    }
    // The key is untouched.
    const read = await call("GET", `/api-keys/${id(keyId)}`, { token: acmeAdmin });
    expect(read.body).toMatchObject({ isActive: true, rotatedAt: null });
  });

  it("a signed-out client gets 401 for each of them", async () => {
    const acmeAdmin = await login("acme-admin");
    const acme = await partnerId(acmeAdmin, "Acme");
    const created = await call("POST", "/api-keys", {
      token: acmeAdmin,
      body: { input: { partnerId: acme, keyName: "signed-out-probe", scopes: ["API_READ"] } },
    });
    const keyId: string = created.body.apiKey.id;
    const answers = [
      await call("GET", "/partners"),
      await call("GET", `/partners/${id(acme)}`),
      await call("GET", "/api-keys"),
      await call("GET", `/api-keys/${id(keyId)}`),
      await call("POST", "/api-keys", { body: { input: { partnerId: acme, keyName: "x", scopes: ["API_READ"] } } }),
      await call("POST", `/api-keys/${id(keyId)}/rotate`, { body: { gracePeriodSeconds: 0 } }),
      await call("POST", `/api-keys/${id(keyId)}/revoke`),
      await call("POST", "/api-keys/verify", { body: { secret: created.body.secret } }),
      await call("POST", "/usage-logs", { body: { events: [{ apiKeyId: keyId, endpoint: "/v1/x", method: "GET", statusCode: 200 }] } }),
      await call("GET", "/usage-logs"),
      await call("GET", "/usage-summary"),
    ];
    for (const answer of answers) {
      expect(answer.status, JSON.stringify(answer.body)).toBe(401);
      expect(answer.body.code).toBe("UNAUTHENTICATED");
      expect(answer.headers.get("www-authenticate")).toBe("Bearer");
    }
    // Public docs need no token.
    const docs = await call("GET", "/developer-docs/v1/getting-started");
    expect(docs.status).toBe(200);
    expect(docs.body).toMatchObject({ slug: "getting-started", apiVersion: "v1" });
  });

  it("signs up, reads itself and logs out, after which the token answers 401", async () => {
    const signUp = await call("POST", "/sign-up", {
      body: { input: { username: "rest-newcomer", email: "rest-newcomer@example.test", password: "a long enough password" } },
    });
    expect(signUp.status, JSON.stringify(signUp.body)).toBe(201);
    const token: string = signUp.body.token;
    const me = await call("GET", "/me", { token });
    expect(me.body).toMatchObject({ username: "rest-newcomer", role: "developer", partner: null });
    const logout = await call("POST", "/logout", { token });
    expect(logout).toMatchObject({ status: 200, body: true });
    const after = await call("GET", "/me", { token });
    expect(after.status).toBe(401);
    expect(after.body.code).toBe("UNAUTHENTICATED");
  });
});

describe("errors answer their code's HTTP status, with the code in a JSON body", () => {
  it("UNAUTHENTICATED: 401 for a token that is not valid", async () => {
    const answer = await call("GET", "/partners", { token: "not-a-token" });
    expect(answer.status).toBe(401);
    expect(answer.headers.get("content-type")).toMatch(/^application\/json/);
    expect(answer.body).toMatchObject({ code: "UNAUTHENTICATED", errors: [{ extensions: { code: "UNAUTHENTICATED" } }] });
    expect(answer.body.errors[0].extensions).not.toHaveProperty("http");
  });

  it("FORBIDDEN: 403 when a developer creates a key", async () => {
    const acmeDev = await login("acme-dev");
    const acme = await partnerId(acmeDev, "Acme");
    const answer = await call("POST", "/api-keys", {
      token: acmeDev,
      body: { input: { partnerId: acme, keyName: "dev-key", scopes: ["API_READ"] } },
    });
    expect(answer.status).toBe(403);
    expect(answer.body.code).toBe("FORBIDDEN");
  });

  it("NOT_FOUND: 404 for a record that does not exist", async () => {
    const admin = await login("admin");
    const missing = Buffer.from("APIKey:01900000-0000-7000-8000-000000000000").toString("base64");
    const answer = await call("GET", `/api-keys/${id(missing)}`, { token: admin });
    expect(answer.status).toBe(404);
    expect(answer.body.code).toBe("NOT_FOUND");
    const doc = await call("GET", "/developer-docs/v1/no-such-doc");
    expect(doc.status).toBe(404);
    const route = await call("GET", "/no-such-route", { token: admin });
    expect(route.status).toBe(404);
    expect(route.body.code).toBe("NOT_FOUND");
  });

  it("offers no webhook subscriptions (the server would POST events to any URL named)", async () => {
    const admin = await login("admin");
    const answer = await call("POST", "/webhook", {
      token: admin,
      body: { subscription: "usageLogCreated", variables: {}, url: "http://127.0.0.1:9/internal" },
    });
    expect(answer.status).toBe(404);
    expect(answer.body.code).toBe("NOT_FOUND");
  });

  it("BAD_USER_INPUT: 400 for a request that does not parse", async () => {
    const admin = await login("admin");
    const notJson = await call("POST", "/partners", { token: admin, body: "{not json" });
    expect(notJson.status).toBe(400);
    expect(notJson.body.code).toBe("BAD_USER_INPUT");
    const notInt = await call("GET", "/partners?first=many", { token: admin });
    expect(notInt.status).toBe(400);
    expect(notInt.body.code).toBe("BAD_USER_INPUT");
    // The malformed-input check runs here too: a NUL PostgreSQL cannot store never reaches it.
    const nul = await call("POST", "/partners", { token: admin, body: { input: { name: "Nul\u0000Corp" } } });
    expect(nul.status, JSON.stringify(nul.body)).toBe(400);
    expect(nul.body.code).toBe("BAD_USER_INPUT");
  });

  it("BAD_USER_INPUT: 422 for values the field refuses", async () => {
    const acmeAdmin = await login("acme-admin");
    const acme = await partnerId(acmeAdmin, "Acme");
    const answer = await call("POST", "/api-keys", {
      token: acmeAdmin,
      body: { input: { partnerId: acme, keyName: "   ", scopes: ["API_READ"] } },
    });
    expect(answer.status, JSON.stringify(answer.body)).toBe(422);
    expect(answer.body.code).toBe("BAD_USER_INPUT");
  });

  it("CONFLICT: 409 for a key name the partner already uses", async () => {
    const acmeAdmin = await login("acme-admin");
    const acme = await partnerId(acmeAdmin, "Acme");
    const body = { input: { partnerId: acme, keyName: "twice", scopes: ["API_READ"] } };
    expect((await call("POST", "/api-keys", { token: acmeAdmin, body })).status).toBe(201);
    const again = await call("POST", "/api-keys", { token: acmeAdmin, body });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe("CONFLICT");
  });

  it("RATE_LIMITED: 429 with Retry-After once sign-in failures pass the bound", async () => {
    const attempt = () => call("POST", "/login", { body: { input: { login: "globex-admin", password: "wrong password!" } } });
    for (let i = 0; i < 10; i++) expect((await attempt()).status).toBe(401);
    const limited = await attempt();
    expect(limited.status).toBe(429);
    expect(limited.body.code).toBe("RATE_LIMITED");
    const retryAfter = Number(limited.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThan(0);
    expect(limited.body.errors[0].extensions.retryAfterSeconds).toBe(retryAfter);
  });

  it("runs through the GraphQL server's plugins: Pothos's id checks are coded, pages are bounded by cost", async () => {
    const admin = await login("admin");
    // codeClientErrors codes Pothos's validation of a global id; unplugged it would be a masked 500.
    const badId = await call("GET", "/nodes?ids=not-a-global-id", { token: admin });
    expect(badId.status).toBe(422);
    expect(badId.body).toMatchObject({ code: "BAD_USER_INPUT", message: expect.stringMatching(/global ID/i) });
    // With each partner's own connections selected, a page of 100 is over the cost bound; REST
    // records leave them out, so the page is served.
    const page = await call("GET", "/partners?first=100", { token: admin });
    expect(page.status, JSON.stringify(page.body).slice(0, 300)).toBe(200);
    expect(page.body.edges.length).toBeGreaterThan(0);
    expect(page.body.edges[0].node).not.toHaveProperty("apiKeys");
  });
});
