/** Small HTTP plumbing shared by the router's handlers: bounded body reads and JSON answers. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/**
 * Reads a request body, refusing more than `limit` bytes with 413 (without buffering the excess).
 * `contentLength` is the request's header when the caller has it already (the proxy's scan).
 */
export function readBody(
  req: IncomingMessage,
  limit: number,
  contentLength: string | undefined = req.headers['content-length'],
): Promise<Buffer> {
  const declared = Number(contentLength);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    return Promise.reject(
      new HttpError(413, `request body of ${declared} bytes exceeds the limit of ${limit} bytes`),
    );
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) {
        done = true;
        req.resume();
        reject(new HttpError(413, `request body exceeds the limit of ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    });
    req.on('error', (err) => {
      if (done) return;
      done = true;
      reject(new HttpError(400, `could not read the request body: ${err.message}`));
    });
  });
}

/** Where an answer goes: node:http's response, or the plain lane's socket (plain-http.ts). */
export interface Reply {
  readonly headersSent: boolean;
  /** The whole answer in one write; `headers` is a flat [name, value, ...] list. */
  send(status: number, headers: readonly string[], body: Buffer | string): void;
  /** Cuts the connection: the only honest signal once the headers are gone. */
  destroy(): void;
}

/** One request and its answer, whichever lane carries it. */
export interface Exchange extends Reply {
  readonly method: string;
  /** The request target as sent (path and query). */
  readonly url: string;
  /** [name, value, ...] as received. */
  readonly rawHeaders: readonly string[];
  /** The client went away. */
  readonly aborted: boolean;
  /** A header by its lower-case name, as node:http's header object has it. */
  header(lower: string): string | undefined;
  /**
   * The body, refused with 413 beyond `limit` (`contentLength`: the header, when read already).
   * A Buffer when it is in memory already: awaiting it would cost a turn of the microtask queue.
   */
  body(limit: number, contentLength?: string): Buffer | Promise<Buffer>;
  /** Drops the body unread (a refusal). */
  discard(): void;
  /** An answer whose body streams from `source` (chunked unless `headers` give its length). */
  stream(status: number, headers: readonly string[], source: Readable): Promise<void>;
}

/** node:http's response as a Reply. */
function nodeReply(res: ServerResponse): Reply {
  return {
    get headersSent() {
      return res.headersSent;
    },
    send(status, headers, body) {
      res.writeHead(status, headers as string[]);
      res.end(body);
    },
    destroy: () => void res.destroy(),
  };
}

/** node:http's request and response as an Exchange. */
export function nodeExchange(req: IncomingMessage, res: ServerResponse): Exchange {
  const reply = nodeReply(res);
  return {
    get method() {
      return req.method ?? 'GET';
    },
    get url() {
      return req.url ?? '/';
    },
    get rawHeaders() {
      return req.rawHeaders;
    },
    get headersSent() {
      return reply.headersSent;
    },
    get aborted() {
      return req.destroyed;
    },
    header(lower) {
      const v = req.headers[lower];
      return Array.isArray(v) ? v.join(', ') : v;
    },
    body: (limit, contentLength) => readBody(req, limit, contentLength),
    discard: () => void req.resume(),
    send: reply.send,
    async stream(status, headers, source) {
      res.writeHead(status, headers as string[]);
      await pipeline(source, res);
    },
    destroy: reply.destroy,
  };
}

/** A JSON answer with its exact length; a reply whose headers are gone is cut instead. */
export function answerJson(
  reply: Reply,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (reply.headersSent) {
    reply.destroy();
    return;
  }
  const text = JSON.stringify(body);
  const flat: string[] = [];
  for (const name in headers) flat.push(name, headers[name]!);
  flat.push('content-type', 'application/json', 'content-length', String(Buffer.byteLength(text)));
  reply.send(status, flat, text);
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  answerJson(nodeReply(res), status, body, headers);
}

export function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new HttpError(400, `request body is not valid JSON: ${(err as Error).message}`);
  }
}

// Hop-by-hop headers belong to one connection and are never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'proxy-authenticate',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'host',
  'content-length',
  'expect',
  'http2-settings',
]);

/** What the proxy needs from a request's headers, read in one pass over `rawHeaders`. */
export interface ProxyHeaders {
  /** End-to-end headers as `name: value\r\n` lines, ready for the upstream (it adds host and length). */
  forward: string;
  contentLength?: string;
  requestId?: string;
  inferenceHeaderLength?: string;
  /** The route's sticky header's value. */
  unit?: string;
  /** The route's preview header's value. */
  preview?: string;
}

const join = (had: string | undefined, v: string): string => (had === undefined ? v : `${had}, ${v}`);

/**
 * One pass over the request's raw header list: the lines to forward (hop-by-hop ones and, when
 * `dropCredentials`, the client's key left out) and the few values the proxy reads, without the
 * lower-cased header object Node would otherwise build for each request. Repeated headers join
 * with ", ", as in that object. `sticky` and `preview` are lower-case names.
 */
export function scanHeaders(
  raw: readonly string[],
  sticky: string,
  preview: string | undefined,
  dropCredentials: boolean,
): ProxyHeaders {
  const out: ProxyHeaders = { forward: '' };
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const lower = name.toLowerCase();
    if (lower === 'content-length') {
      out.contentLength = value;
      continue;
    }
    if (HOP_BY_HOP.has(lower)) continue;
    if (dropCredentials && (lower === 'authorization' || lower === 'x-api-key')) continue;
    out.forward += `${name}: ${value}\r\n`;
    if (lower === 'x-request-id') out.requestId = join(out.requestId, value);
    else if (lower === 'inference-header-content-length')
      out.inferenceHeaderLength = join(out.inferenceHeaderLength, value);
    if (lower === sticky) out.unit = join(out.unit, value);
    if (lower === preview) out.preview = join(out.preview, value);
  }
  return out;
}

/**
 * End-to-end response headers to pass back, as the flat [name, value, ...] list writeHead takes;
 * content-length kept when `keepLength`, so buffered answers stay exact. `extra` pairs follow.
 */
export function responseHeaders(
  headers: Record<string, string | string[] | undefined>,
  keepLength: boolean,
  ...extra: string[]
): string[] {
  const out: string[] = [];
  for (const key in headers) {
    if (HOP_BY_HOP.has(key) && !(keepLength && key === 'content-length')) continue;
    const v = headers[key];
    if (typeof v === 'string') out.push(key, v);
    else if (v) for (const one of v) out.push(key, one);
  }
  for (const x of extra) out.push(x);
  return out;
}
