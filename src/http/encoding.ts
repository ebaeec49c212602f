import Negotiator from "negotiator";

/**
 * The encoding to answer in, of those offered, as the client's Accept-Encoding allows (q-values
 * included); where it likes several equally, brotli first, then gzip, as compression() chooses.
 */
export function acceptedEncoding<Encoding extends string>(header: string | null, offered: readonly Encoding[]): Encoding | undefined {
  const negotiator = new Negotiator({ headers: { "accept-encoding": header ?? "" } });
  // negotiator 0.6.4 takes the server's preference second, as compression() uses it; its types lag.
  const choose = negotiator.encoding.bind(negotiator) as (available: string[], preferred: string[]) => string | undefined;
  return choose([...offered], ["br", "gzip"]) as Encoding | undefined;
}
