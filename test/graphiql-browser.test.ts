import { existsSync } from "node:fs";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "./support/server.js";
import { createGatewayCredential, createKey, createPartner, event, RECORD_USAGE, type TestKey } from "./support/usage.js";
import { createUser, TEST_PASSWORD } from "./support/users.js";

// Debian's `chromium` package (.ci/run installs it); the test needs a real browser and says so.
const CHROMIUM = ["/usr/bin/chromium", "/usr/lib/chromium/chromium"].find((path) => existsSync(path));
if (!CHROMIUM) console.warn("graphiql-browser.test.ts skipped: no chromium binary (apt-get install -y chromium)");

let server: TestServer;
let browser: Browser;
let gateway: string;
let key: TestKey;

beforeAll(async () => {
  if (!CHROMIUM) return;
  server = await startTestServer();
  gateway = await createGatewayCredential(server);
  const partner = await createPartner(server, "Browser Partner");
  key = await createKey(server, partner.id, partner.ownerId);
  await createUser(server, "browser-dev", "developer", partner.id);
  // Root has no user namespace for the sandbox.
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

/** Replaces the text of a Monaco editor in the page (typing, as a user would paste). */
async function setEditor(page: Page, selector: string, text: string) {
  const editor = page.locator(`${selector} .monaco-editor`).first();
  await editor.click();
  await page.keyboard.press("ControlOrMeta+A");
  await page.keyboard.press("Delete");
  // insertText goes in as one input, so the editor's bracket auto-closing adds nothing.
  await page.keyboard.insertText(text);
}

const responseText = (page: Page) => page.locator(".graphiql-response").innerText();

/**
 * Sets the operation and runs it once GraphiQL has taken it in: the tab bears its name, and
 * GraphiQL has stored the text in its own state (what the run button executes).
 */
async function run(page: Page, operationName: string, document: string) {
  await setEditor(page, ".graphiql-query-editor", document);
  await expect.poll(() => page.locator(".graphiql-tab").first().innerText(), { timeout: 30_000 }).toContain(operationName);
  await expect.poll(() => page.evaluate(() => localStorage.getItem("graphiql:query")), { timeout: 30_000 }).toBe(document);
  await page.locator(".graphiql-execute-button").click();
}

describe.skipIf(!CHROMIUM)("GraphiQL in a headless browser", () => {
  it("signs in, runs a query, and receives a subscription's events and a @live query's updates with the token in the Headers tab", async () => {
    const page = await browser.newPage();
    const socketFrames: string[] = [];
    page.on("websocket", (socket) => socket.on("framesent", (frame) => socketFrames.push(String(frame.payload))));
    await page.goto(server.url);
    await page.locator(".graphiql-query-editor .monaco-editor").first().waitFor();

    // Sign in with the login mutation, as the default query suggests.
    const loginAnswer = page.waitForResponse(
      (response) => response.url() === server.url && (response.request().postData() ?? "").includes("mutation Login"),
    );
    await run(page, "Login", `mutation Login { login(input: { login: "browser-dev", password: "${TEST_PASSWORD}" }) { token } }`);
    const login = (await (await loginAnswer).json()) as { data: { login: { token: string } } };
    const token = login.data.login.token;
    expect(token).toBeTruthy();

    // The token goes in the Headers tab.
    await page.locator(".graphiql-editor-tools button", { hasText: "Headers" }).click();
    await setEditor(page, ".graphiql-editor-tool .graphiql-editor:visible", `{ "Authorization": "Bearer ${token}" }`);

    await run(page, "Me", `query Me { viewer { username role } }`);
    await expect.poll(() => responseText(page), { timeout: 30_000 }).toContain("browser-dev");

    // A subscription over graphql-ws: GraphiQL sends the Headers tab in the subscribe message.
    await run(page, "Usage", `subscription Usage { usageLogCreated { endpoint statusCode } }`);
    const endpoint = `/from-the-browser-${Date.now()}`;
    await expect
      .poll(
        async () => {
          await server.gql(RECORD_USAGE, { events: [event(key, { endpoint })] }, gateway);
          return responseText(page);
        },
        { timeout: 30_000 },
      )
      .toContain(endpoint);
    expect(await responseText(page)).not.toContain("UNAUTHENTICATED");
    // Stop it (the run button stops a running operation), then a `@live` query, which GraphiQL
    // also streams: it updates when usage is recorded.
    await page.locator(".graphiql-execute-button").click();
    await run(page, "Live", `query Live @live { usageSummary { totalRequests } }`);
    const total = async () => Number(/"totalRequests":\s*(\d+)/.exec(await responseText(page))?.[1] ?? NaN);
    await expect.poll(total, { timeout: 30_000 }).toBeGreaterThan(0);
    const before = await total();
    await server.gql(RECORD_USAGE, { events: [event(key, { endpoint: "/live" })] }, gateway);
    await expect.poll(total, { timeout: 30_000 }).toBeGreaterThan(before);
    expect(await responseText(page)).not.toContain("UNAUTHENTICATED");

    const subscribe = socketFrames.map((frame) => JSON.parse(frame) as { type: string; payload?: Record<string, any> }).find((m) => m.type === "subscribe");
    expect(subscribe?.payload?.extensions?.headers?.Authorization).toBe(`Bearer ${token}`);
    await page.close();
  });
});
