import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import type { Plugin } from "graphql-yoga";

const ASSETS: Readonly<Record<string, string>> = {
  "swagger-ui.css": "text/css; charset=utf-8",
  "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
  "swagger-ui-standalone-preset.js": "text/javascript; charset=utf-8",
  "favicon-32x32.png": "image/png",
};

const page = (base: string) => `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>Partner Portal REST API</title>
    <link rel="stylesheet" href="${base}/swagger-ui.css">
    <link rel="icon" type="image/png" href="${base}/favicon-32x32.png">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="${base}/swagger-ui-bundle.js"></script>
    <script src="${base}/swagger-ui-standalone-preset.js"></script>
    <script src="${base}/init.js"></script>
  </body>
</html>
`;

const init = (openApiPath: string) => `window.onload = () => {
  window.ui = SwaggerUIBundle({
    url: ${JSON.stringify(openApiPath)},
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout",
  });
};
`;

/**
 * Swagger UI for the REST API at `endpoint`, its assets read from the swagger-ui-dist package (no
 * CDN, so the page works on a closed network too).
 */
export function swaggerUi(options: { endpoint: string; openApiPath: string }): Plugin {
  const { endpoint, openApiPath } = options;
  const folder = path.dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
  const files = new Map<string, Promise<Uint8Array<ArrayBuffer>>>();
  const asset = (name: string) => {
    let file = files.get(name);
    if (!file) {
      file = readFile(path.join(folder, name)).then((buffer) => new Uint8Array(buffer));
      files.set(name, file);
    }
    return file;
  };

  return {
    async onRequest({ request, url, endResponse, fetchAPI }) {
      if (request.method !== "GET" && request.method !== "HEAD") return;
      if (url.pathname === endpoint) {
        endResponse(new fetchAPI.Response(page(endpoint), { headers: { "content-type": "text/html; charset=utf-8" } }));
        return;
      }
      if (!url.pathname.startsWith(`${endpoint}/`)) return;
      const name = url.pathname.slice(endpoint.length + 1);
      if (name === "init.js") {
        endResponse(new fetchAPI.Response(init(openApiPath), { headers: { "content-type": ASSETS["swagger-ui-bundle.js"]! } }));
      } else if (Object.hasOwn(ASSETS, name)) {
        endResponse(
          new fetchAPI.Response(await asset(name), {
            headers: { "content-type": ASSETS[name]!, "cache-control": "public, max-age=86400" },
          }),
        );
      }
    },
  };
}
