import type { IncomingMessage, ServerResponse } from "node:http";
import { clientError } from "../errors.js";

/**
 * Reads a request's body, counting the bytes as they arrive, and hands it to Yoga already read
 * (Yoga takes a `body` it finds on the request instead of reading the stream again). Past
 * `maxBytes` it answers 413 at once, closes the connection once the answer is out, and resolves
 * false: the declared Content-Length, a chunked encoding or a lying length gain nothing.
 */
export async function readBodyWithin(req: IncomingMessage, res: ServerResponse, maxBytes: number): Promise<boolean> {
  if (req.method === "GET" || req.method === "HEAD") return true;
  if (Number(req.headers["content-length"] ?? 0) > maxBytes) return tooLarge(req, res, maxBytes);
  const body = await readUpTo(req, maxBytes);
  if (body === TOO_LARGE) return tooLarge(req, res, maxBytes);
  // The client went before its body ended: there is no one to answer.
  if (body === GONE) return false;
  if (body.byteLength > 0) {
    // Handed over as an async iterable rather than the Buffer itself: Yoga's Node adapter checks a
    // ready body with Object.keys, which for a Buffer lists every byte (about 16 ms for a batch of
    // 1,000 usage events); this object has one key and yields the bytes in one piece.
    (req as IncomingMessage & { body?: ReadyBody }).body = {
      byteLength: body.byteLength,
      async *[Symbol.asyncIterator]() {
        yield body;
      },
    };
  }
  return true;
}

interface ReadyBody extends AsyncIterable<Uint8Array> {
  byteLength: number;
}

const TOO_LARGE = Symbol("too large");
const GONE = Symbol("connection gone");

/**
 * The body's bytes; TOO_LARGE as soon as more than `maxBytes` have arrived (the rest is left
 * unread); GONE when the connection broke or closed before the body ended. Read from the stream's
 * events: its async iterator costs promises per chunk, and most bodies are one chunk.
 */
function readUpTo(req: IncomingMessage, maxBytes: number): Promise<Buffer | typeof TOO_LARGE | typeof GONE> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const settle = () => {
      req.off("data", onData).off("end", onEnd).off("error", onGone).off("close", onGone);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size > maxBytes) {
        settle();
        req.pause();
        resolve(TOO_LARGE);
      } else chunks.push(chunk);
    };
    const onEnd = () => {
      settle();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onGone = () => {
      settle();
      resolve(GONE);
    };
    req.on("data", onData).on("end", onEnd).on("error", onGone).on("close", onGone);
  });
}

function tooLarge(req: IncomingMessage, res: ServerResponse, maxBytes: number): false {
  const error = clientError("BAD_USER_INPUT", `Request body exceeds ${maxBytes} bytes`);
  res.writeHead(413, { "content-type": "application/json", connection: "close" });
  // The rest of the body is not read: the socket goes once the answer has been written.
  res.end(JSON.stringify({ errors: [error.toJSON()] }), () => req.socket?.destroy());
  return false;
}
