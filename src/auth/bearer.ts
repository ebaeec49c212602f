import type { Caller } from "./callers.js";
import type { ServiceCredentialAuth } from "./service-credentials.js";
import type { Sessions } from "./sessions.js";

/**
 * Whoever a bearer token speaks for: a service credential (`pps_…` secrets) or a user's session
 * (a JWT). Null when the token authenticates nobody.
 */
export function createBearerAuth(options: {
  sessions: Pick<Sessions, "authenticate">;
  serviceCredentials: Pick<ServiceCredentialAuth, "authenticate">;
}): (token: string) => Promise<Caller | null> {
  return async (token) => {
    if (token.startsWith("pps_")) {
      const service = await options.serviceCredentials.authenticate(token);
      return service ? { viewer: null, service } : null;
    }
    const viewer = await options.sessions.authenticate(token);
    return viewer ? { viewer, service: null } : null;
  };
}
