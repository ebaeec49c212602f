import type { Role } from "../generated/prisma/enums.js";

/** A signed-in user, as their session token and the stored session say. */
export interface Viewer {
  id: string;
  username: string;
  role: Role;
  partnerId: string | null;
  sessionId: string;
  /** When the session ends by itself; open streams end then too. */
  sessionExpiresAt: Date;
}

/** A machine caller (the company's API gateway) authenticated by a service credential. */
export interface ServiceCaller {
  id: string;
  name: string;
}

/** Whoever a request's bearer token speaks for: a user, the gateway, or (both null) nobody. */
export interface Caller {
  viewer: Viewer | null;
  service: ServiceCaller | null;
}

export const ANONYMOUS: Caller = { viewer: null, service: null };

/** The token in an `Authorization: Bearer <token>` header (or graphql-ws connectionParams). */
export function bearerToken(authorization: unknown): string | null {
  if (typeof authorization !== "string") return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization.trim());
  return match?.[1] ?? null;
}
