import type { PrismaClient } from "../db/index.js";
import type { Viewer } from "./callers.js";
import type { SessionCache } from "./session-cache.js";
import type { SessionTokens } from "./session-token.js";

export interface StartedSession {
  token: string;
  expiresAt: Date;
}

export interface Sessions {
  /** Opens a session for a user who proved their password; answers its token (shown once). */
  start(userId: string, userAgent: string | null): Promise<StartedSession>;
  /** Ends a session on every instance: its token is refused from the next request on. */
  end(sessionId: string): Promise<void>;
  /**
   * Ends every open session of a user on every instance: after a change of role or partner, so
   * no open subscription or live query keeps the rights it was authorised with.
   */
  endAll(userId: string): Promise<number>;
  /**
   * The viewer a session token speaks for, or null when the token is forged, expired, or names a
   * session that has ended. A session is read from the database once, then answered from this
   * instance's cache, which every logout and change of rights clears on every instance.
   */
  authenticate(token: string): Promise<Viewer | null>;
}

export function createSessions(options: {
  prisma: PrismaClient;
  tokens: SessionTokens;
  cache: SessionCache;
  now: () => Date;
  ttlSeconds: number;
}): Sessions {
  const { prisma, tokens, cache, now } = options;

  async function end(sessionId: string) {
    await prisma.session.updateMany({ where: { id: sessionId, revokedAt: null }, data: { revokedAt: now() } });
    await cache.revoke(sessionId);
  }

  return {
    async start(userId, userAgent) {
      const expiresAt = new Date(now().getTime() + options.ttlSeconds * 1000);
      const session = await prisma.session.create({
        data: { userId, expiresAt, userAgent: userAgent?.slice(0, 512) ?? null },
        select: { id: true },
      });
      return { token: await tokens.sign({ userId, sessionId: session.id }, expiresAt), expiresAt };
    },

    end,

    async endAll(userId) {
      const open = await prisma.session.findMany({
        // Expired sessions too: a stream opened before the expiry may still be running.
        where: { userId, revokedAt: null },
        select: { id: true },
      });
      await Promise.all(open.map((session) => end(session.id)));
      return open.length;
    },

    async authenticate(token) {
      const claims = await tokens.verify(token);
      if (!claims) return null;
      let answer = cache.get(claims.sessionId);
      if (answer === undefined) {
        const readStartedAt = cache.mark();
        const session = await prisma.session.findUnique({
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
        cache.set(claims.sessionId, answer, readStartedAt);
      }
      if (answer === "ended" || answer.id !== claims.userId || answer.sessionExpiresAt <= now()) return null;
      return answer;
    },
  };
}
