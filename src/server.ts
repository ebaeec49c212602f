import { createApp } from "./app.js";
import { bootstrapData, describeDemo } from "./bootstrap.js";
import { ConfigError, loadConfig } from "./config.js";

async function main() {
  const config = loadConfig();
  const started = performance.now();
  const progress = (step: string) => console.log(`${((performance.now() - started) / 1000).toFixed(1).padStart(5)} s  ${step}`);
  const app = await createApp(config, { progress });
  const { demo, admin } = await bootstrapData(app, progress);
  const url = await app.start();

  const lines = [
    `Partner Portal is running on ${app.database.embedded ? `embedded PostgreSQL (${config.dataDir})` : "PostgreSQL"}${config.redisUrl ? " with Redis" : ""}.`,
    `  GraphiQL:  ${url}`,
    `  REST:      ${url.replace(/\/graphql$/, "/api")}  Swagger UI: ${url.replace(/\/graphql$/, "/api/docs")}`,
    `  Health:    ${url.replace(/\/graphql$/, "/healthz")}  Ready: ${url.replace(/\/graphql$/, "/readyz")}`,
  ];
  if (demo) lines.push("", describeDemo(demo));
  else if (config.seedDemo) lines.push("  Demo data: already present (run `npm run seed` to reset it).");
  if (admin === "created") lines.push(`  Admin ${config.admin!.email} created from ADMIN_EMAIL/ADMIN_PASSWORD.`);
  console.log(lines.join("\n"));

  let stopping = false;
  const shutdown = async (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: finishing in-flight requests and shutting down`);
    try {
      await app.stop();
      process.exit(0);
    } catch (error) {
      console.error("Shutdown failed:", error);
      process.exit(1);
    }
  };
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
}

main().catch((error: unknown) => {
  console.error(error instanceof ConfigError ? error.message : error);
  process.exit(1);
});
