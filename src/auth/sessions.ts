import type { ServiceCaller, Services, Viewer } from "../context.js";

export interface StartedSession {
  token: string;
  expiresAt: Date;
}

export async function startSession(
  services: Services,
  userId: string,
  userAgent: string | null,
): Promise<StartedSession> {
  const expiresAt = new Date(services.now().getTime() + services.config.jwt.ttlSeconds * 1000);
  const session = await services.prisma.session.create({
    data: { userId, expiresAt, userAgent: userAgent?.slice(0, 512) ?? null },
  });
  const token = await services.tokens.sign({ userId, sessionId: session.id }, expiresAt);
  return { token, expiresAt };
}

/** Ends a session on every instance: its token is refused from the next request on. */
export async function endSession(services: Services, sessionId: string): Promise<void> {
  await services.prisma.session.updateMany({
    where: { id: sessionId, revokedAt: null },
    data: { revokedAt: services.now() },
  });
  await services.sessionCache.revoke(sessionId);
}

/**
 * The viewer a session token speaks for, or null when the token is forged, expired, or names a
 * session that has ended. A session is read from the database once, then answered from this
 * instance's cache, which every logout and change of rights clears on every instance.
 */
export async function authenticateSessionToken(services: Services, token: string): Promise<Viewer | null> {
  const claims = await services.tokens.verify(token);
  if (!claims) return null;
  const { sessionCache } = services;
  let answer = sessionCache.get(claims.sessionId);
  if (answer === undefined) {
    const readStartedAt = sessionCache.mark();
    const session = await services.prisma.session.findUnique({
      where: { id: claims.sessionId },
      select: {
        revokedAt: true,
        expiresAt: true,
        user: { select: { id: true, username: true, role: true, partnerId: true } },
      },
    });
    // A revoked session never works again, so that answer may be kept as well as a valid one.
    answer =
      !session || session.revokedAt
        ? "ended"
        : { ...session.user, sessionId: claims.sessionId, sessionExpiresAt: session.expiresAt };
    sessionCache.set(claims.sessionId, answer, readStartedAt);
  }
  if (answer === "ended" || answer.id !== claims.userId || answer.sessionExpiresAt <= services.now()) return null;
  return answer;
}

/** The token in an `Authorization: Bearer <token>` header (or graphql-ws connectionParams). */
export function bearerToken(authorization: unknown): string | null {
  if (typeof authorization !== "string") return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization.trim());
  return match?.[1] ?? null;
}

/**
 * Whoever a bearer token speaks for: a service credential (`pps_…` secrets) or a user's session
 * (JWT). Null when the token authenticates nobody.
 */
export async function authenticateBearer(
  services: Services,
  token: string,
): Promise<{ viewer: Viewer | null; service: ServiceCaller | null } | null> {
  if (token.startsWith("pps_")) {
    const service = await services.serviceCredentials.authenticate(token);
    return service ? { viewer: null, service } : null;
  }
  const viewer = await authenticateSessionToken(services, token);
  return viewer ? { viewer, service: null } : null;
}

/**
 * Ends every open session of a user on every instance: after a change of role or partner, so no
 * open subscription or live query keeps the rights it was authorised with.
 */
export async function endAllSessions(services: Services, userId: string): Promise<number> {
  const open = await services.prisma.session.findMany({
    // Expired sessions too: a stream opened before the expiry may still be running.
    where: { userId, revokedAt: null },
    select: { id: true },
  });
  await Promise.all(open.map((session) => endSession(services, session.id)));
  return open.length;
}
