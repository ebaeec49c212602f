import { randomBytes } from "node:crypto";
import pg from "pg";

/**
 * A fresh database for one test file: a uniquely named database on TEST_DATABASE_URL's server
 * when that is set (dropped by `drop()`), otherwise the embedded PGlite one in memory.
 */
export interface TestDatabase {
  /** The DATABASE_URL to give the app, or undefined for the embedded database. */
  url: string | undefined;
  drop(): Promise<void>;
}

export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL || undefined;
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL || undefined;

export async function createTestDatabase(options: { embedded?: boolean } = {}): Promise<TestDatabase> {
  if (!TEST_DATABASE_URL || options.embedded) return { url: undefined, drop: async () => {} };
  const name = `pp_test_${Date.now().toString(36)}_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}
