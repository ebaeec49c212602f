import type { Config } from "./config.js";
import type { PrismaClient } from "./db/index.js";
import type { Role } from "./generated/prisma/enums.js";
import type { ServerSecrets } from "./auth/secrets.js";
import type { SessionTokens } from "./auth/session-token.js";
import type { AppPubSub } from "./realtime/pubsub.js";

/** Everything one server instance shares between requests. */
export interface Services {
  config: Config;
  prisma: PrismaClient;
  pubsub: AppPubSub;
  secrets: ServerSecrets;
  tokens: SessionTokens;
  /** The time, injectable so tests can move it without sleeping. */
  now: () => Date;
}

/** A signed-in user, as their session token and the stored session say. */
export interface Viewer {
  id: string;
  username: string;
  role: Role;
  partnerId: string | null;
  sessionId: string;
}

export interface Context {
  services: Services;
  prisma: PrismaClient;
  viewer: Viewer | null;
  /** The HTTP request (for WebSockets, the upgrade request). */
  request: Request | null;
}

export type SignedInContext = Context & { viewer: Viewer };
