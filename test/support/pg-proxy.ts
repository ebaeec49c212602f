import { connect, createServer, type AddressInfo, type Socket } from "node:net";

/**
 * A TCP proxy in front of PostgreSQL that sees the statements clients run, read from the wire
 * protocol itself, so neither tests nor benchmarks need a hook in the server they watch.
 * Counted: simple-protocol queries ('Q') and extended-protocol executions ('E'); recorded: the
 * text of each query or prepared statement ('Q' and 'P').
 */
export interface StatementProxy {
  /** The target's URL with the proxy's address. */
  url: string;
  /** Statements executed since the proxy started. */
  readonly statements: number;
  /** The SQL text of every query and statement parsed since the proxy started. */
  readonly texts: readonly string[];
  close(): Promise<void>;
}

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;

export async function startStatementProxy(targetUrl: string): Promise<StatementProxy> {
  const target = new URL(targetUrl);
  let statements = 0;
  const texts: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(target.port || 5432), target.hostname);
    sockets.add(client).add(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);

    // Frontend messages: an untyped start-up message (after an optional SSL/GSS request), then
    // `type(1) length(4) body` frames.
    let pending: Buffer = Buffer.alloc(0);
    let untyped = true;
    client.on("data", (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let offset = 0;
      for (;;) {
        if (untyped) {
          if (pending.length - offset < 8) break;
          const length = pending.readInt32BE(offset);
          if (pending.length - offset < length) break;
          const code = pending.readInt32BE(offset + 4);
          untyped = code === SSL_REQUEST || code === GSSENC_REQUEST;
          offset += length;
          continue;
        }
        if (pending.length - offset < 5) break;
        const type = String.fromCharCode(pending[offset]!);
        const length = pending.readInt32BE(offset + 1);
        if (pending.length - offset < 1 + length) break;
        const body = pending.subarray(offset + 5, offset + 1 + length);
        if (type === "Q" || type === "E") statements++;
        if (type === "Q") texts.push(cString(body, 0));
        // Parse: statement name, then the query text.
        if (type === "P") texts.push(cString(body, body.indexOf(0) + 1));
        offset += 1 + length;
      }
      pending = pending.subarray(offset);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const proxied = new URL(targetUrl);
  proxied.hostname = "127.0.0.1";
  proxied.port = String((server.address() as AddressInfo).port);
  return {
    url: proxied.toString(),
    get statements() {
      return statements;
    },
    texts,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function cString(buffer: Buffer, start: number): string {
  const end = buffer.indexOf(0, start);
  return buffer.toString("utf8", start, end < 0 ? buffer.length : end);
}
