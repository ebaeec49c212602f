import module from "node:module";
import { ConfigError, loadConfig } from "./config.js";
import type { EmbeddedPostgres } from "./db/embedded.js";
import { createLogger } from "./logger.js";

async function main() {
  // Production mode unless NODE_ENV says otherwise: graphql-js then skips its development-only
  // checks (a large share of coercing a big batch of input), and graphql-ws answers a failed
  // WebSocket with a generic reason. Set before the server's code (and graphql-js) loads.
  process.env.NODE_ENV ??= "production";
  // Node 22.1 and later keep the compiled code of the modules loaded below on disk, so later
  // starts skip compiling it (NODE_COMPILE_CACHE chooses the folder; the OS's temp one otherwise).
  module.enableCompileCache?.();
  const config = loadConfig();
  const logger = createLogger({ level: config.logLevel, format: config.logFormat });
  // Timed from the start of the process, so the first line also says how long loading took.
  const progress = (step: string) => logger.info({ elapsedSeconds: Number((performance.now() / 1000).toFixed(1)) }, step);
  progress(`Partner Portal: loading the server on Node ${process.version}`);
  // The embedded database starts while the server's code loads (each takes seconds), so that
  // neither waits for the other. Loaded after the configuration is checked and the first line is out.
  let embeddedDatabase: Promise<EmbeddedPostgres> | undefined;
  if (!config.databaseUrl) {
    progress(`Database: starting embedded PostgreSQL in ${config.dataDir}`);
    embeddedDatabase = import("./db/embedded.js").then(({ startEmbeddedPostgres }) => startEmbeddedPostgres(config.dataDir));
    // Awaited by createApp; a failure before then is reported there, not as an unhandled rejection.
    embeddedDatabase.catch(() => {});
  }
  const [{ createApp }, { bootstrapData, describeDemo }] = await Promise.all([import("./app.js"), import("./bootstrap.js")]);
  const app = await createApp(config, { progress, logger, embeddedDatabase });
  const { demo, admin } = await bootstrapData(app, progress);
  const url = await app.start();

  const lines = [
    `Partner Portal is running on ${app.database.embedded ? `embedded PostgreSQL (${config.dataDir})` : "PostgreSQL"}${config.redisUrl ? " with Redis" : ""}.`,
    `  GraphiQL:  ${url}`,
    `  REST:      ${url.replace(/\/graphql$/, "/api")}  Swagger UI: ${url.replace(/\/graphql$/, "/api/docs")}`,
    `  Health:    ${url.replace(/\/graphql$/, "/healthz")}  Ready: ${url.replace(/\/graphql$/, "/readyz")}`,
    `  Metrics:   ${app.metricsUrl ?? url.replace(/\/graphql$/, "/metrics")}${config.metrics.token ? " (bearer METRICS_TOKEN)" : ""}`,
  ];
  if (demo) lines.push("", describeDemo(demo));
  else if (config.seedDemo) lines.push("  Demo data: already present (run `npm run seed` to reset it).");
  if (admin === "created") lines.push(`  Admin ${config.admin!.email} created from ADMIN_EMAIL/ADMIN_PASSWORD.`);
  logger.info({ url }, lines.join("\n"));

  let stopping = false;
  const shutdown = async (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info(`${signal}: finishing in-flight requests and shutting down`);
    try {
      await app.stop();
      process.exit(0);
    } catch (error) {
      logger.error({ err: error }, "Shutdown failed");
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
