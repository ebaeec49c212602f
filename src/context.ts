import type { LoginThrottle } from "./auth/login-throttle.js";
import type { ServiceCredentialAuth } from "./auth/service-credentials.js";
import type { Config } from "./config.js";
import type { PrismaClient } from "./db/index.js";
import type { Role } from "./generated/prisma/enums.js";
import type { ServerSecrets } from "./auth/secrets.js";
import type { SessionTokens } from "./auth/session-token.js";
import type { AppPubSub } from "./realtime/pubsub.js";
import type { ApiKeyVerifier } from "./auth/api-key-verifier.js";
import type { SessionCache } from "./auth/session-cache.js";

/** Everything one server instance shares between requests. */
export interface Services {
  config: Config;
  prisma: PrismaClient;
  pubsub: AppPubSub;
  secrets: ServerSecrets;
  tokens: SessionTokens;
  /** The time, injectable so tests can move it without sleeping. */
  now: () => Date;
  /** Verifies API-key secrets through a cache invalidated over the pub/sub. */
  apiKeyVerifier: ApiKeyVerifier;
  /** Counts sign-in failures per account and address, and sign-ups per address (in Redis when REDIS_URL is set). */
  loginThrottle: LoginThrottle;
  /** Authenticates the gateway's `pps_…` bearer secrets (cached; revocation clears it everywhere). */
  serviceCredentials: ServiceCredentialAuth;
  /** Recently authenticated sessions (cleared on every instance at logout or a change of rights). */
  sessionCache: SessionCache;
}

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

export interface Context {
  services: Services;
  prisma: PrismaClient;
  viewer: Viewer | null;
  service: ServiceCaller | null;
  /** The HTTP request; null over WebSockets. */
  request: Request | null;
  /**
   * The client's address: the socket's peer, or with TRUST_PROXY the address the trusted proxies
   * forwarded (X-Forwarded-For of the request, or of the WebSocket's upgrade request).
   */
  clientAddress: string | null;
  /**
   * Users who proved their password in this request (signUp/login). They may read their own
   * fields in the mutation's payload; it grants nothing else.
   */
  authenticatedNow: Set<string>;
}

export type SignedInContext = Context & { viewer: Viewer };
