import type { ApiKeyVerifier } from "../auth/api-key-verifier.js";
import type { Caller, ServiceCaller, Viewer } from "../auth/callers.js";
import type { LoginThrottle } from "../auth/login-throttle.js";
import type { Sessions } from "../auth/sessions.js";
import type { PrismaClient } from "../db/index.js";
import type { ApiKeys } from "../domain/api-keys.js";
import type { DeveloperDocs } from "../domain/developer-docs.js";
import type { Invitations } from "../domain/invitations.js";
import type { Partners } from "../domain/partners.js";
import type { UserRights } from "../domain/users.js";
import type { AppPubSub } from "../realtime/pubsub.js";
import type { ServiceCredentials } from "../domain/service-credentials.js";
import type { UsageOperations } from "../usage/index.js";

/**
 * The domain operations resolvers call, made once per instance (app.ts) with what each needs.
 * Resolvers translate GraphQL to these calls and back; the rules of each live in its module.
 */
export interface Services {
  prisma: PrismaClient;
  pubsub: AppPubSub;
  /** The time, injectable so tests can move it without sleeping. */
  now: () => Date;
  sessions: Sessions;
  loginThrottle: LoginThrottle;
  apiKeys: ApiKeys;
  apiKeyVerifier: ApiKeyVerifier;
  userRights: UserRights;
  partners: Partners;
  invitations: Invitations;
  developerDocs: DeveloperDocs;
  usage: UsageOperations;
  serviceCredentials: ServiceCredentials;
  /** Link templates (`{token}` replaced) for invitations and password resets; none: the token alone. */
  links: { invitation: string | undefined; passwordReset: string | undefined };
}

export type { Caller, ServiceCaller, Viewer };

export interface Context extends Caller {
  services: Services;
  prisma: PrismaClient;
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
