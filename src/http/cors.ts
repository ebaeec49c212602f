import type { Config } from "../config.js";

const CORS_METHODS = ["GET", "POST", "OPTIONS"];
const CORS_HEADERS = ["authorization", "content-type", "accept"];

/**
 * Which web pages may call the API from a browser. Never with credentials: sign-in is by bearer
 * token, so no cookie should ride along. An origin that is not allowed gets no CORS headers at all
 * (not `null`, which sandboxed pages would match), so the browser keeps the answer from it.
 */
export function corsOptions(origins: Config["corsOrigins"]) {
  const common = { methods: CORS_METHODS, allowedHeaders: CORS_HEADERS, credentials: false, maxAge: 600 };
  return (request: Request) => {
    const origin = request.headers.get("origin");
    if (!origin) return false as const;
    if (origins === "*" || origins.includes(origin)) return { ...common, origin: [origin] };
    return false as const;
  };
}
