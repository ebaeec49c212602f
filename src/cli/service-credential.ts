import { GraphQLError } from "graphql";
import { loadSecrets } from "../auth/secrets.js";
import { ConfigError, loadConfig } from "../config.js";
import { openDatabase } from "../db/index.js";
import { createAppPubSub, reachState } from "../realtime/pubsub.js";
import { createServiceCredentials, serviceCredentialName } from "../domain/service-credentials.js";

/** How long a change waits for Redis to answer, so that running instances hear of it. */
const REDIS_WAIT_MS = 5_000;

const USAGE = `Usage:
  npm run service-credential -- create <name>   prints the new credential's secret (shown once)
  npm run service-credential -- revoke <name>   refused at once with REDIS_URL, else within 30 s
  npm run service-credential -- list

Uses the same DATABASE_URL / DATA_DIR and API_KEY_HASH_SECRET as the server. With the embedded
database, stop the server first: one process owns its data folder.`;

/**
 * `npm run service-credential`: manages the API gateway's credentials from the command line, so
 * the first one can exist before any admin has signed in. Admins can also use the GraphQL
 * mutations createServiceCredential / revokeServiceCredential.
 */
async function main(): Promise<number> {
  const [command, rawName] = process.argv.slice(2);
  if (!command || !["create", "revoke", "list"].includes(command) || (command !== "list" && !rawName)) {
    console.error(USAGE);
    return 2;
  }
  const config = loadConfig();
  const secrets = await loadSecrets(config);
  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 2 });
  // With REDIS_URL, running instances hear of a revocation at once; without it, within 30 s.
  const events = createAppPubSub({ redisUrl: config.redisUrl, channelPrefix: config.redisChannelPrefix });
  if (config.redisUrl && command !== "list" && !(await reachState(events.connection, "connected", REDIS_WAIT_MS))) {
    console.error("Redis did not answer: running instances see this change only as their caches expire (a revocation within 30 s).");
  }
  try {
    const { prisma } = database;
    if (command === "list") {
      const credentials = await prisma.serviceCredential.findMany({ orderBy: { createdAt: "asc" } });
      for (const c of credentials) {
        const state = c.revokedAt ? `revoked ${c.revokedAt.toISOString()}` : "active";
        console.log(`${c.name}\t${c.tokenPrefix}…\t${state}\tcreated ${c.createdAt.toISOString()}`);
      }
      return 0;
    }
    const parsed = serviceCredentialName.safeParse(rawName);
    if (!parsed.success) {
      console.error(parsed.error.issues[0]?.message ?? "Invalid name");
      return 2;
    }
    const name = parsed.data;
    const credentials = createServiceCredentials({
      prisma,
      pubsub: events.pubsub,
      hashKey: secrets.apiKeyHashSecret,
      environment: config.apiKeys.environment,
      now: () => new Date(),
    });
    // Running instances (with REDIS_URL) drop the query answers they cached, which may list
    // the credentials, before this command ends.
    const tellInstances = async () => {
      events.pubsub.publish("responses:changed", { partnerIds: null });
      if (events.connection.state === "connected") await events.connection.delivered();
    };
    if (command === "create") {
      try {
        const { secret } = await credentials.issue({ name, actorUserId: null });
        await tellInstances();
        console.error(`Created service credential "${name}". Its secret follows; it is not stored and will not be shown again.`);
        console.log(secret);
        return 0;
      } catch (error) {
        if (error instanceof GraphQLError && error.extensions.code === "CONFLICT") {
          console.error(error.message);
          return 1;
        }
        throw error;
      }
    }
    const credential = await prisma.serviceCredential.findUnique({ where: { name }, select: { id: true } });
    if (!credential) {
      console.error(`No service credential named "${name}"`);
      return 1;
    }
    const revoked = await credentials.revoke({ id: credential.id, actorUserId: null });
    if (revoked) await tellInstances();
    console.error(revoked ? `Revoked "${name}".` : `"${name}" was already revoked.`);
    return 0;
  } finally {
    await events.close();
    await database.close();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof ConfigError ? error.message : error);
    process.exit(1);
  },
);
