import { createApp } from "../app.js";
import { describeDemo } from "../bootstrap.js";
import { ConfigError, loadConfig } from "../config.js";
import { seedDemoData } from "../seed.js";

/**
 * `npm run seed`: replaces every row with fresh demo data. On a PostgreSQL server
 * (DATABASE_URL) it asks for `-- --force`, since it deletes everything there.
 * Stop the server first when using the embedded database: one process owns its data folder.
 */
async function main() {
  const config = loadConfig();
  if (config.databaseUrl && !process.argv.includes("--force")) {
    console.error("DATABASE_URL is set: `npm run seed -- --force` deletes every row there and re-seeds.");
    process.exit(2);
  }
  const app = await createApp({ ...config, logLevel: "error" });
  try {
    const { prisma } = app.services;
    await prisma.$transaction([
      prisma.auditEvent.deleteMany(),
      prisma.usageLog.deleteMany(),
      prisma.usageBatch.deleteMany(),
      prisma.apiKey.deleteMany(),
      prisma.developerDoc.deleteMany(),
      prisma.session.deleteMany(),
      prisma.serviceCredential.deleteMany(),
      prisma.partnerOrganization.updateMany({ data: { primaryContactId: null } }),
      prisma.user.deleteMany(),
      prisma.partnerOrganization.deleteMany(),
    ]);
    const demo = await seedDemoData(app.services, { password: config.demoPassword });
    console.log(describeDemo(demo));
  } finally {
    await app.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof ConfigError ? error.message : error);
  process.exit(1);
});
