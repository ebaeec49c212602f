import { errors, jwtVerify, SignJWT } from "jose";
import { LRUCache } from "lru-cache";

const ALGORITHM = "HS256";
/** Tokens verified recently, by their exact text: a signed-in request then costs no HMAC. */
const VERIFIED_TOKENS = 50_000;

export interface SessionTokenOptions {
  secret: Uint8Array;
  issuer: string;
  audience: string;
  /** The clock tokens are issued and checked by: the same as the sessions' (the real one in production). */
  now?: () => Date;
}

export interface SessionClaims {
  userId: string;
  sessionId: string;
}

export function createSessionTokens(options: SessionTokenOptions) {
  const now = options.now ?? (() => new Date());
  // Only tokens that verified are kept, with their expiry; the same text always verifies the same way.
  const verified = new LRUCache<string, SessionClaims & { expiresAtMs: number }>({ max: VERIFIED_TOKENS });
  return {
    sign(claims: SessionClaims, expiresAt: Date): Promise<string> {
      return new SignJWT({ sid: claims.sessionId })
        .setProtectedHeader({ alg: ALGORITHM, typ: "JWT" })
        .setSubject(claims.userId)
        .setIssuer(options.issuer)
        .setAudience(options.audience)
        .setIssuedAt(Math.floor(now().getTime() / 1000))
        .setExpirationTime(Math.floor(expiresAt.getTime() / 1000))
        .sign(options.secret);
    },

    /** The claims of a valid token, or null for any token that is forged, expired or malformed. */
    async verify(token: string): Promise<SessionClaims | null> {
      const known = verified.get(token);
      if (known) {
        if (known.expiresAtMs > now().getTime()) return { userId: known.userId, sessionId: known.sessionId };
        verified.delete(token);
        return null;
      }
      try {
        const { payload } = await jwtVerify(token, options.secret, {
          algorithms: [ALGORITHM],
          issuer: options.issuer,
          audience: options.audience,
          requiredClaims: ["sub", "sid", "exp", "iat"],
          currentDate: now(),
        });
        if (typeof payload.sub !== "string" || typeof payload.sid !== "string") return null;
        const claims = { userId: payload.sub, sessionId: payload.sid };
        verified.set(token, { ...claims, expiresAtMs: payload.exp! * 1000 });
        return claims;
      } catch (error) {
        if (error instanceof errors.JOSEError || error instanceof TypeError) return null;
        throw error;
      }
    },
  };
}

export type SessionTokens = ReturnType<typeof createSessionTokens>;
