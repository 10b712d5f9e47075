/**
 * One request and its answer, whichever lane carries it: node:http's, or the plain lane's
 * (plain-lane.ts), which the router and the model server both put in front of node:http.
 */
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

/** Where an answer goes: node:http's response, or the plain lane's socket (plain-lane.ts). */
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
  /** The whole request was read (false after a refused oversized body: the connection is spent). */
  readonly complete: boolean;
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
export function nodeReply(res: ServerResponse): Reply {
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

/** node:http's request and response as an Exchange; `read` reads the body with the caller's limits. */
export function nodeExchange(
  req: IncomingMessage,
  res: ServerResponse,
  read: (req: IncomingMessage, limit: number, contentLength?: string) => Promise<Buffer>,
): Exchange {
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
    get complete() {
      return req.complete;
    },
    header(lower) {
      const v = req.headers[lower];
      return Array.isArray(v) ? v.join(', ') : v;
    },
    body: (limit, contentLength) => read(req, limit, contentLength),
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
