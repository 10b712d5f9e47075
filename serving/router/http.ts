/** Small HTTP plumbing shared by the router's handlers: bounded body reads and JSON answers. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  answerJson,
  HttpError,
  nodeExchange as nodeExchangeWith,
  nodeReply,
  type Exchange,
  type Reply,
} from '../http/exchange';

export { answerJson, HttpError, type Exchange, type Reply };

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

/** node:http's request and response as an Exchange, the body read with the router's 413. */
export const nodeExchange = (req: IncomingMessage, res: ServerResponse): Exchange =>
  nodeExchangeWith(req, res, readBody);

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
