import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { ConfigError, SECRET_REQUIRED, type Config } from "../config.js";
import { IN_MEMORY } from "../db/embedded.js";

export interface ServerSecrets {
  /** HMAC key for session tokens (HS256). */
  jwtSecret: Uint8Array;
  /** HMAC key for hashing API-key and service-credential secrets before they are stored. */
  apiKeyHashSecret: Uint8Array;
}

const storedSecretsSchema = z.object({ jwtSecret: z.string().min(43), apiKeyHashSecret: z.string().min(43) });

const encode = (value: string) => new TextEncoder().encode(value);

/**
 * Keys come from the environment. Only the embedded database may go without: its keys are
 * generated once and kept (mode 0600) in the data folder beside the database they protect, so
 * sessions and API keys survive a restart. A server shared by several instances must be given
 * its keys, or each instance would refuse the others' tokens.
 */
export async function loadSecrets(config: Config): Promise<ServerSecrets> {
  if (config.jwt.secret && config.apiKeys.hashSecret) {
    return { jwtSecret: encode(config.jwt.secret), apiKeyHashSecret: encode(config.apiKeys.hashSecret) };
  }
  if (config.databaseUrl) {
    // loadConfig refuses this already; a config assembled by hand gets the same answer.
    const missing = [...(config.jwt.secret ? [] : ["JWT_SECRET"]), ...(config.apiKeys.hashSecret ? [] : ["API_KEY_HASH_SECRET"])];
    throw new ConfigError(missing.map((name) => `${name}: ${SECRET_REQUIRED}`));
  }
  const generated = () => randomBytes(32).toString("base64url");
  let stored = { jwtSecret: generated(), apiKeyHashSecret: generated() };
  if (config.dataDir !== IN_MEMORY) {
    const file = path.resolve(config.dataDir, "secrets.json");
    try {
      stored = storedSecretsSchema.parse(JSON.parse(await readFile(file, "utf8")));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      await mkdir(config.dataDir, { recursive: true });
      await writeFile(file, JSON.stringify(stored), { mode: 0o600, flag: "wx" });
    }
  }
  return {
    jwtSecret: encode(config.jwt.secret ?? stored.jwtSecret),
    apiKeyHashSecret: encode(config.apiKeys.hashSecret ?? stored.apiKeyHashSecret),
  };
}
