import type { IncomingMessage } from "node:http";
import proxyAddr from "proxy-addr";
import type { TrustProxy } from "../config.js";

/**
 * How a request's client address is found (the address the sign-in throttles count): the socket's
 * peer, or, behind proxies the configuration trusts, the address they forwarded in
 * X-Forwarded-For. Over WebSockets the request is the upgrade request, read the same way.
 */
export function clientAddressResolver(trust: TrustProxy): (req: IncomingMessage | undefined) => string | null {
  if (trust === false) return (req) => req?.socket.remoteAddress ?? null;
  // A hop count walks that many addresses left of the socket's peer, never further: whatever a
  // client wrote into X-Forwarded-For itself stays left of what the proxies appended.
  const trusted = typeof trust === "number" ? (_address: string, hop: number) => hop < trust : proxyAddr.compile(trust);
  return (req) => (req?.socket.remoteAddress ? proxyAddr(req, trusted) : null);
}
