import { createHmac, hash, randomBytes, timingSafeEqual } from "node:crypto";
import { crc32 } from "node:zlib";

/**
 * Secret format, after GitHub's tokens: `<kind>_<environment>_<random><checksum>`.
 *   kind         `ppk` (partner API key), `pps` (service credential), `ppi` (invitation) or
 *                `ppr` (password reset)
 *   environment  `live` or `test`
 *   random       32 base62 characters from a CSPRNG (~190 bits)
 *   checksum     CRC32 of everything before it, 6 base62 characters
 * The fixed prefix lets secret scanners find leaked keys; the checksum rejects typos and
 * random strings without a database lookup.
 */
export type SecretKind = "ppk" | "pps" | "ppi" | "ppr";
export type SecretEnvironment = "live" | "test";

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const RANDOM_LENGTH = 32;
const CHECKSUM_LENGTH = 6;
/** How many characters of the random part `tokenPrefix` shows, enough to tell keys apart in a list. */
const VISIBLE_RANDOM_CHARS = 8;
const FORMAT = /^(ppk|pps|ppi|ppr)_(live|test)_([0-9A-Za-z]{38})$/;

function randomBase62(length: number): string {
  let out = "";
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      // 248 = 4 * 62: rejecting larger bytes keeps every character equally likely.
      if (byte < 248 && out.length < length) out += BASE62[byte % 62];
    }
  }
  return out;
}

function base62Checksum(body: string): string {
  let value = crc32(body);
  let out = "";
  for (let i = 0; i < CHECKSUM_LENGTH; i++) {
    out = BASE62[value % 62] + out;
    value = Math.floor(value / 62);
  }
  return out;
}

export interface GeneratedSecret {
  secret: string;
  tokenPrefix: string;
}

export function generateSecret(kind: SecretKind, environment: SecretEnvironment): GeneratedSecret {
  const body = `${kind}_${environment}_${randomBase62(RANDOM_LENGTH)}`;
  const secret = body + base62Checksum(body);
  return { secret, tokenPrefix: secret.slice(0, kind.length + environment.length + 2 + VISIBLE_RANDOM_CHARS) };
}

export interface ParsedSecret {
  kind: SecretKind;
  environment: SecretEnvironment;
}

/** The secret's kind and environment when its format and checksum hold, else null. */
export function parseSecret(secret: string): ParsedSecret | null {
  const match = FORMAT.exec(secret);
  if (!match) return null;
  const body = secret.slice(0, -CHECKSUM_LENGTH);
  const expected = Buffer.from(base62Checksum(body));
  if (!timingSafeEqual(expected, Buffer.from(secret.slice(-CHECKSUM_LENGTH)))) return null;
  return { kind: match[1] as SecretKind, environment: match[2] as SecretEnvironment };
}

/** Keyed SHA-256 of a secret: what is stored and looked up. A stolen table yields nothing usable. */
export function hashSecret(hashKey: Uint8Array, secret: string): string {
  return createHmac("sha256", hashKey).update(secret).digest("base64url");
}

/**
 * Plain SHA-256 of a secret, for keying caches in memory: never stored, and one call several
 * times cheaper than `hashSecret`, so a secret seen before costs no keyed hash (nor a parse).
 * The secrets are ~190 random bits, so the digest tells nothing of them.
 */
export function secretCacheKey(secret: string): string {
  return hash("sha256", secret, "base64url");
}
