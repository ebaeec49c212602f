import { errors, jwtVerify, SignJWT } from "jose";

const ALGORITHM = "HS256";

export interface SessionTokenOptions {
  secret: Uint8Array;
  issuer: string;
  audience: string;
}

export interface SessionClaims {
  userId: string;
  sessionId: string;
}

export function createSessionTokens(options: SessionTokenOptions) {
  return {
    sign(claims: SessionClaims, expiresAt: Date): Promise<string> {
      return new SignJWT({ sid: claims.sessionId })
        .setProtectedHeader({ alg: ALGORITHM, typ: "JWT" })
        .setSubject(claims.userId)
        .setIssuer(options.issuer)
        .setAudience(options.audience)
        .setIssuedAt()
        .setExpirationTime(Math.floor(expiresAt.getTime() / 1000))
        .sign(options.secret);
    },

    /** The claims of a valid token, or null for any token that is forged, expired or malformed. */
    async verify(token: string): Promise<SessionClaims | null> {
      try {
        const { payload } = await jwtVerify(token, options.secret, {
          algorithms: [ALGORITHM],
          issuer: options.issuer,
          audience: options.audience,
          requiredClaims: ["sub", "sid", "exp", "iat"],
        });
        if (typeof payload.sub !== "string" || typeof payload.sid !== "string") return null;
        return { userId: payload.sub, sessionId: payload.sid };
      } catch (error) {
        if (error instanceof errors.JOSEError || error instanceof TypeError) return null;
        throw error;
      }
    },
  };
}

export type SessionTokens = ReturnType<typeof createSessionTokens>;
