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
  /**
   * Holds PostgreSQL's answer to the next statement parsed whose text matches: the statement runs,
   * but its connection receives nothing more until `release()` (other connections go on).
   * `reached` resolves once the statement was sent.
   */
  hold(pattern: RegExp): { reached: Promise<void>; release(): void };
  close(): Promise<void>;
}

interface Hold {
  pattern: RegExp;
  reached: () => void;
  released: boolean;
  /** Set once a connection is held: lets it go. */
  resume?: () => void;
}

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;

export async function startStatementProxy(targetUrl: string): Promise<StatementProxy> {
  const target = new URL(targetUrl);
  let statements = 0;
  const texts: string[] = [];
  const sockets = new Set<Socket>();
  let hold: Hold | undefined;
  const server = createServer((client) => {
    const upstream = connect(Number(target.port || 5432), target.hostname);
    sockets.add(client).add(upstream);
    client.pipe(upstream);
    // PostgreSQL's bytes for the client wait here while this connection is held.
    let held: Buffer[] | null = null;
    upstream.on("data", (chunk: Buffer) => (held ? held.push(chunk) : client.write(chunk)));
    const holdHere = (active: Hold) => {
      held = [];
      hold = undefined;
      active.resume = () => {
        const waiting = held ?? [];
        held = null;
        for (const chunk of waiting) client.write(chunk);
      };
      if (active.released) active.resume();
      active.reached();
    };
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
        // Parse: statement name, then the query text.
        const text = type === "Q" ? cString(body, 0) : type === "P" ? cString(body, body.indexOf(0) + 1) : null;
        if (text !== null) {
          texts.push(text);
          // Frames reach PostgreSQL as they arrive (piped above); holding from here on holds this statement's answer.
          if (hold?.pattern.test(text) && !held) holdHere(hold);
        }
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
    hold(pattern) {
      let reached!: () => void;
      const promise = new Promise<void>((resolve) => (reached = resolve));
      const active: Hold = { pattern, reached, released: false };
      hold = active;
      return {
        reached: promise,
        release() {
          active.released = true;
          if (hold === active) hold = undefined;
          active.resume?.();
        },
      };
    },
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
