/**
 * The router's HTTP/1.1 client to one model server: keep-alive connections, one request per
 * connection at a time, at most `connections` open (further requests wait their turn).
 *
 * Why not undici: profiled under load (`npm run bench:router -- --cpu-prof`), a general client
 * cost the router about 25 µs of CPU per request more than this one: per-request dispatcher,
 * handler and stream objects, a WASM parser, and a copy of the answer into an ArrayBuffer. The
 * router needs little of that: it sends a buffered body, and nearly every answer is a small one
 * with a Content-Length that arrives in the same read as its head. This client writes head and
 * body in one write, parses the head with plain string operations, and hands a small answer back
 * as a view of the bytes read. Chunked and close-delimited answers, large answers (streamed with
 * backpressure), 1xx interim answers and HEAD are handled; anything malformed is a protocol error.
 *
 * Errors carry a `code` that failures.ts maps to the router's reasons: the socket's own
 * (ECONNREFUSED, ECONNRESET, EPIPE...), or one of UPSTREAM_CODES.
 */
import net from 'node:net';
import { Readable } from 'node:stream';

export const UPSTREAM_CODES = {
  headersTimeout: 'UPSTREAM_HEADERS_TIMEOUT',
  bodyTimeout: 'UPSTREAM_BODY_TIMEOUT',
  /** The replica closed the connection before its answer was complete. */
  closed: 'UPSTREAM_CLOSED',
  /** The answer is not valid HTTP/1.1. */
  protocol: 'UPSTREAM_PROTOCOL',
  /** The client was closed or destroyed while the request waited or ran. */
  destroyed: 'UPSTREAM_DESTROYED',
} as const;

/**
 * The names a replica sends on every answer, as literals: a key that is a literal is interned
 * already, so the header object's stores skip a string-table lookup per header.
 */
function common(name: string): string {
  switch (name) {
    case 'content-type':
      return 'content-type';
    case 'content-length':
      return 'content-length';
    case 'connection':
      return 'connection';
    case 'keep-alive':
      return 'keep-alive';
    case 'date':
      return 'date';
    case 'inference-header-content-length':
      return 'inference-header-content-length';
    default:
      return name;
  }
}

export class UpstreamError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface UpstreamRequest {
  path: string;
  method: string;
  headers?: Record<string, string | string[]>;
  /** Header lines already serialized (`name: value\r\n` each), sent after `headers`. */
  rawHeaders?: string;
  body?: Buffer | null;
  /** From the request's start until the answer's head is in (ms). */
  headersTimeout?: number;
  /** Longest silence between pieces of the answer's body (ms). */
  bodyTimeout?: number;
}

export interface UpstreamResponse {
  statusCode: number;
  /** Lower-cased names; a repeated header is an array. */
  headers: Record<string, string | string[]>;
  body: UpstreamBody;
}

const MAX_HEAD_BYTES = 64 * 1024;
/** Bytes of an answer held for a consumer that has not started reading, before the socket pauses. */
const HOLD_BYTES = 1024 * 1024;
/** Bodies up to this size go out in the same write as the head (one copy, one syscall). */
const INLINE_BODY = 64 * 1024;
const DEFAULT_IDLE_MS = 30_000;
const EMPTY = Buffer.alloc(0);
/** Every connection's reads land here first; the callback runs before the next read. */
const READ_BUFFER = Buffer.alloc(64 * 1024);

/**
 * An answer's body. Read it once, one way: `buffer()` (whole), `text()`, `stream()` (large
 * answers, with backpressure), or `dump()`; `destroy()` abandons it and its connection.
 */
export class UpstreamBody {
  private chunks: Buffer[] = [];
  private held = 0;
  private ended = false;
  private error: Error | undefined;
  private waiter: { resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  private readable: Readable | undefined;

  constructor(private readonly control: { pause(): void; resume(): void; abandon(): void }) {}

  /** The whole body. */
  buffer(): Promise<Buffer> {
    if (this.error) return Promise.reject(this.error);
    if (this.ended) return Promise.resolve(this.take());
    // Buffering is asked for: nothing to hold back any more.
    this.control.resume();
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  /**
   * The whole body now, when all of it has arrived already (a small answer usually comes with its
   * head): no turn of the microtask queue. Undefined otherwise; then use buffer() or stream().
   */
  whole(): Buffer | undefined {
    return this.ended && !this.error && !this.readable ? this.take() : undefined;
  }

  async text(): Promise<string> {
    return (await this.buffer()).toString('utf8');
  }

  async dump(): Promise<void> {
    await this.buffer();
  }

  /** The body as a stream (what has arrived already comes first). */
  stream(): Readable {
    if (this.readable) return this.readable;
    const readable = new Readable({
      read: () => this.control.resume(),
      destroy: (err, cb) => {
        if (!this.ended) this.control.abandon();
        cb(err);
      },
    });
    this.readable = readable;
    for (const c of this.chunks) readable.push(c);
    this.chunks = [];
    this.held = 0;
    if (this.error) readable.destroy(this.error);
    else if (this.ended) readable.push(null);
    return readable;
  }

  destroy(): void {
    if (this.readable) this.readable.destroy();
    else if (!this.ended && !this.error) this.control.abandon();
    this.chunks = [];
  }

  // ---- fed by the connection ----

  /** @internal */
  push(chunk: Buffer): void {
    if (this.readable) {
      if (!this.readable.push(chunk)) this.control.pause();
      return;
    }
    this.chunks.push(chunk);
    this.held += chunk.length;
    if (!this.waiter && this.held > HOLD_BYTES) this.control.pause();
  }

  /** @internal */
  end(): void {
    this.ended = true;
    if (this.readable) this.readable.push(null);
    else if (this.waiter) this.waiter.resolve(this.take());
  }

  /** @internal */
  fail(err: Error): void {
    if (this.ended || this.error) return;
    this.error = err;
    if (this.readable) this.readable.destroy(err);
    else if (this.waiter) this.waiter.reject(err);
  }

  private take(): Buffer {
    const c = this.chunks;
    this.chunks = [];
    this.held = 0;
    return c.length === 1 ? c[0]! : c.length === 0 ? EMPTY : Buffer.concat(c);
  }
}

const digit = (c: number): boolean => c >= 48 && c <= 57;

/** The code of an `HTTP/1.x NNN reason` status line, or -1 (checked by hand: the hot path). */
function statusOf(line: string): number {
  if (line.length < 12 || !line.startsWith('HTTP/1.')) return -1;
  const minor = line.charCodeAt(7);
  if ((minor !== 48 && minor !== 49) || line.charCodeAt(8) !== 32) return -1;
  const a = line.charCodeAt(9);
  const b = line.charCodeAt(10);
  const c = line.charCodeAt(11);
  if (!digit(a) || !digit(b) || !digit(c) || (line.length > 12 && line.charCodeAt(12) !== 32)) return -1;
  return (a - 48) * 100 + (b - 48) * 10 + (c - 48);
}

/** 1 to 15 decimal digits: a Content-Length as replicas send it. */
function isLength(v: string): boolean {
  if (v.length === 0 || v.length > 15) return false;
  for (let i = 0; i < v.length; i++) if (!digit(v.charCodeAt(i))) return false;
  return true;
}

interface Pending {
  req: UpstreamRequest;
  resolve: (r: UpstreamResponse) => void;
  reject: (e: Error) => void;
}

type Framing = 'length' | 'chunked' | 'close' | 'none';

/** One keep-alive connection; `pending` while a request runs on it. */
class Connection {
  readonly socket: net.Socket;
  private pending: Pending | undefined;
  private body: UpstreamBody | undefined;
  private buf: Buffer = EMPTY;
  private framing: Framing = 'none';
  private remaining = 0;
  /** Chunked decoding: between chunks (`size`), in a chunk's data, or in the trailers. */
  private chunkState: 'size' | 'data' | 'crlf' | 'trailers' = 'size';
  private keepAlive = true;
  private isHead = false;
  private connected = false;
  private deadline = 0;
  private deadlineCode: string = UPSTREAM_CODES.headersTimeout;
  private bodyMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = 0;
  private paused = false;
  private keepAliveHint: string | undefined;
  private idleMs: number;
  dead = false;

  constructor(
    private readonly owner: Upstream,
    port: number,
    host: string,
  ) {
    this.idleMs = owner.idleMs;
    // Reads land in one shared buffer and go to onData directly, bypassing the stream machinery
    // (push, 'data' events) a Socket runs per read; onData copies out whatever it keeps.
    this.socket = net.connect({
      port,
      host,
      onread: { buffer: READ_BUFFER, callback: (n: number, buf: Uint8Array) => this.onRead(n, buf) },
    });
    this.socket.setNoDelay(true);
    this.socket.on('connect', () => (this.connected = true));
    this.socket.on('error', (err) => this.kill(err));
    this.socket.on('close', () => this.onClose());
  }

  start(p: Pending): void {
    this.pending = p;
    const { req } = p;
    this.isHead = req.method === 'HEAD';
    this.bodyMs = req.bodyTimeout ?? 0;
    this.setDeadline(req.headersTimeout, UPSTREAM_CODES.headersTimeout);
    let head = `${req.method} ${req.path} HTTP/1.1\r\nhost: ${this.owner.hostHeader}\r\n`;
    const h = req.headers;
    if (h) {
      for (const name in h) {
        const v = h[name]!;
        if (typeof v === 'string') head += `${name}: ${v}\r\n`;
        else for (const one of v) head += `${name}: ${one}\r\n`;
      }
    }
    if (req.rawHeaders) head += req.rawHeaders;
    const body = req.body;
    if (body && body.length > 0) head += `content-length: ${body.length}\r\n\r\n`;
    else if (req.method === 'POST' || req.method === 'PUT' || req.method === 'PATCH')
      head += 'content-length: 0\r\n\r\n';
    else head += '\r\n';
    if (!body || body.length === 0) this.socket.write(head, 'latin1');
    else if (body.length <= INLINE_BODY) {
      const size = Buffer.byteLength(head, 'latin1');
      const out = Buffer.allocUnsafe(size + body.length);
      out.write(head, 0, 'latin1');
      body.copy(out, size);
      this.socket.write(out);
    } else {
      this.socket.cork();
      this.socket.write(head, 'latin1');
      this.socket.write(body);
      this.socket.uncork();
    }
  }

  private setDeadline(ms: number | undefined, code: string): void {
    this.deadlineCode = code;
    if (ms === undefined || ms <= 0) {
      this.deadline = 0;
      return;
    }
    this.deadline = performance.now() + ms;
    // One timer per connection, re-armed when it fires early or would fire too late: most
    // requests do no timer work at all.
    if (this.timer && this.timerAt > this.deadline) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (!this.timer) this.arm(ms);
  }

  private arm(ms: number): void {
    const wait = Math.max(1, Math.ceil(ms));
    this.timerAt = performance.now() + wait;
    this.timer = setTimeout(() => this.onTimer(), wait);
    this.timer.unref();
  }

  private onTimer(): void {
    this.timer = undefined;
    if (this.dead || this.deadline === 0) return;
    const left = this.deadline - performance.now();
    if (left > 0) {
      this.arm(left);
      return;
    }
    if (!this.pending && !this.body) {
      // Idle too long: the replica may drop it any moment; close it first.
      this.kill(undefined);
      return;
    }
    const what = !this.connected
      ? 'accepted no connection'
      : this.deadlineCode === UPSTREAM_CODES.headersTimeout
        ? 'sent no answer'
        : 'stopped sending its answer';
    this.kill(new UpstreamError(this.deadlineCode, `${this.owner.origin} ${what} in time`));
  }

  private onRead(n: number, buf: Uint8Array): boolean {
    // A copy: the read buffer is reused by the next read on any connection.
    if (n > 0) this.onData(Buffer.from(buf.subarray(0, n)));
    return !this.paused;
  }

  private onData(chunk: Buffer): void {
    if (!this.pending && !this.body) {
      // Bytes nobody asked for: the connection is out of step; never reuse it.
      this.kill(new UpstreamError(UPSTREAM_CODES.protocol, `${this.owner.origin} sent data with no request`));
      return;
    }
    if (this.body) {
      if (this.deadline !== 0) this.deadline = performance.now() + this.bodyMs;
      this.feedBody(chunk);
      return;
    }
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    this.parseHead();
  }

  private parseHead(): void {
    for (;;) {
      const end = this.buf.indexOf('\r\n\r\n', 0, 'latin1');
      if (end < 0) {
        if (this.buf.length > MAX_HEAD_BYTES)
          this.protocolError(`an answer head over ${MAX_HEAD_BYTES} bytes`);
        return;
      }
      const text = this.buf.toString('latin1', 0, end);
      const rest = this.buf.subarray(end + 4);
      const lines = text.split('\r\n');
      const code = statusOf(lines[0]!);
      if (code < 0) return this.protocolError('a bad status line');
      const headers: Record<string, string | string[]> = {};
      for (let i = 1; i < lines.length; i++) {
        const line = lines[i]!;
        const colon = line.indexOf(':');
        const c0 = line.charCodeAt(0);
        const before = line.charCodeAt(colon - 1);
        // No space before the colon, no folded continuation line (RFC 9112 §5.1, §5.2).
        if (colon <= 0 || c0 === 32 || c0 === 9 || before === 32 || before === 9)
          return this.protocolError('a malformed header line');
        const name = common(line.slice(0, colon).toLowerCase());
        const value = line.slice(colon + 1).trim();
        const had = headers[name];
        if (had === undefined) headers[name] = value;
        else if (typeof had === 'string') headers[name] = [had, value];
        else had.push(value);
      }
      if (code >= 100 && code < 200) {
        // Interim answer (100 Continue, 103 Early Hints): the real one follows.
        this.buf = rest;
        continue;
      }
      this.buf = EMPTY;
      this.respond(code, lines[0]!.charCodeAt(7) === 48, headers, rest);
      return;
    }
  }

  private respond(
    code: number,
    http10: boolean,
    headers: Record<string, string | string[]>,
    rest: Buffer,
  ): void {
    const connection = headers.connection;
    if (connection === 'keep-alive' || (connection === undefined && !http10)) this.keepAlive = true;
    else {
      const tokens = (
        typeof connection === 'string' ? connection : (connection ?? []).join(',')
      ).toLowerCase();
      this.keepAlive = http10 ? /\bkeep-alive\b/.test(tokens) : !/\bclose\b/.test(tokens);
    }
    const ka = headers['keep-alive'];
    // The replica says the same every time: parsed once per connection.
    if (typeof ka === 'string' && ka !== this.keepAliveHint) {
      this.keepAliveHint = ka;
      const t = /timeout=(\d+)/i.exec(ka);
      // Leave a second's margin so we never send on a connection the replica is closing.
      if (t) this.idleMs = Math.min(this.owner.idleMs, Math.max(0, Number(t[1]) * 1000 - 1000));
    }
    const te = headers['transfer-encoding'];
    const cl = headers['content-length'];
    if (this.isHead || code === 204 || code === 304) this.framing = 'none';
    else if (te !== undefined) {
      const last = (typeof te === 'string' ? te : te.join(',')).split(',').pop()!.trim().toLowerCase();
      if (cl !== undefined) return this.protocolError('both Transfer-Encoding and Content-Length');
      this.framing = last === 'chunked' ? 'chunked' : 'close';
      this.chunkState = 'size';
    } else if (typeof cl === 'string' && isLength(cl)) {
      this.framing = 'length';
      this.remaining = Number(cl);
    } else if (cl !== undefined) {
      const values = (typeof cl === 'string' ? cl : cl.join(',')).split(',').map((v) => v.trim());
      if (!values.every((v) => /^\d{1,15}$/.test(v) && v === values[0]))
        return this.protocolError(`a bad Content-Length (${String(cl)})`);
      this.framing = 'length';
      this.remaining = Number(values[0]);
    } else this.framing = 'close';
    if (this.framing === 'close') this.keepAlive = false;
    if (this.framing === 'none' || (this.framing === 'length' && this.remaining === 0)) {
      if (rest.length > 0) return this.protocolError('bytes after a bodiless answer');
    }

    const body = new UpstreamBody(this);
    this.body = body;
    const p = this.pending!;
    this.setDeadline(p.req.bodyTimeout, UPSTREAM_CODES.bodyTimeout);
    if (this.framing === 'none' || (this.framing === 'length' && this.remaining === 0)) this.finish();
    else if (rest.length > 0) this.feedBody(rest);
    p.resolve({ statusCode: code, headers, body });
  }

  private feedBody(chunk: Buffer): void {
    const body = this.body!;
    switch (this.framing) {
      case 'length': {
        if (chunk.length > this.remaining) return this.protocolError('more bytes than its Content-Length');
        this.remaining -= chunk.length;
        body.push(chunk);
        if (this.remaining === 0) this.finish();
        return;
      }
      case 'close':
        body.push(chunk);
        return;
      case 'chunked':
        this.feedChunked(chunk);
        return;
      default:
        this.protocolError('bytes after a bodiless answer');
    }
  }

  private feedChunked(chunk: Buffer): void {
    let data = this.buf.length > 0 ? Buffer.concat([this.buf, chunk]) : chunk;
    this.buf = EMPTY;
    while (data.length > 0) {
      if (this.chunkState === 'data') {
        const n = Math.min(this.remaining, data.length);
        this.body!.push(data.subarray(0, n));
        this.remaining -= n;
        data = data.subarray(n);
        if (this.remaining === 0) this.chunkState = 'crlf';
        continue;
      }
      const eol = data.indexOf('\r\n', 0, 'latin1');
      if (eol < 0) {
        if (data.length > 4096) return this.protocolError('an overlong chunk line');
        this.buf = data;
        return;
      }
      const line = data.toString('latin1', 0, eol);
      data = data.subarray(eol + 2);
      if (this.chunkState === 'crlf') {
        if (line !== '') return this.protocolError('a chunk without its CRLF');
        this.chunkState = 'size';
      } else if (this.chunkState === 'size') {
        const m = /^([0-9a-fA-F]{1,12})[ \t]*(?:;.*)?$/.exec(line);
        if (!m) return this.protocolError('a bad chunk size');
        this.remaining = parseInt(m[1]!, 16);
        this.chunkState = this.remaining === 0 ? 'trailers' : 'data';
      } else if (line === '') {
        // The empty line after the trailers ends the body.
        if (data.length > 0) return this.protocolError('bytes after the last chunk');
        this.finish();
        return;
      }
    }
  }

  private finish(): void {
    const body = this.body!;
    this.body = undefined;
    this.pending = undefined;
    if (this.keepAlive && this.idleMs > 0 && !this.owner.closing) {
      this.setDeadline(this.idleMs, 'idle');
      this.owner.release(this);
    } else this.kill(undefined);
    body.end();
  }

  private protocolError(what: string): void {
    this.kill(new UpstreamError(UPSTREAM_CODES.protocol, `${this.owner.origin} answered with ${what}`));
  }

  /** Ends the connection; a request or body in progress fails with `err` (or "closed"). */
  kill(err: Error | undefined): void {
    if (this.dead) return;
    this.dead = true;
    if (this.timer) clearTimeout(this.timer);
    this.socket.destroy();
    this.fail(err ?? new UpstreamError(UPSTREAM_CODES.closed, `${this.owner.origin} closed the connection`));
    this.owner.gone(this);
  }

  private fail(err: Error): void {
    const p = this.pending;
    const body = this.body;
    this.pending = undefined;
    this.body = undefined;
    if (body) body.fail(err);
    else if (p) p.reject(err);
  }

  private onClose(): void {
    if (this.body && this.framing === 'close') {
      // A close-delimited answer ends where the connection does.
      const body = this.body;
      this.body = undefined;
      this.pending = undefined;
      this.dead = true;
      if (this.timer) clearTimeout(this.timer);
      this.owner.gone(this);
      body.end();
      return;
    }
    this.kill(undefined);
  }

  // UpstreamBody's control
  pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.socket.pause();
  }
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.socket.resume();
  }
  abandon(): void {
    this.kill(new UpstreamError(UPSTREAM_CODES.destroyed, 'the answer was abandoned'));
  }
}

/** A keep-alive client to one origin (`http://host:port`). */
export class Upstream {
  readonly hostHeader: string;
  readonly idleMs: number;
  closing = false;
  private readonly host: string;
  private readonly port: number;
  private readonly free: Connection[] = [];
  private readonly open = new Set<Connection>();
  private readonly waiting: Pending[] = [];
  private drained: (() => void) | undefined;

  constructor(
    readonly origin: string,
    private readonly options: { connections: number; idleMs?: number },
  ) {
    const u = new URL(origin);
    if (u.protocol !== 'http:') throw new Error(`upstream ${origin}: only http:// is supported`);
    this.host = u.hostname.replace(/^\[|\]$/g, '');
    this.port = Number(u.port || 80);
    this.hostHeader = u.host;
    this.idleMs = options.idleMs ?? DEFAULT_IDLE_MS;
  }

  request(req: UpstreamRequest): Promise<UpstreamResponse> {
    if (this.closing)
      return Promise.reject(
        new UpstreamError(UPSTREAM_CODES.destroyed, `the client to ${this.origin} is closed`),
      );
    return new Promise((resolve, reject) => {
      const p: Pending = { req, resolve, reject };
      const conn =
        this.free.pop() ?? (this.open.size < this.options.connections ? this.connect() : undefined);
      if (conn) conn.start(p);
      else this.waiting.push(p);
    });
  }

  private connect(): Connection {
    const c = new Connection(this, this.port, this.host);
    this.open.add(c);
    return c;
  }

  /** @internal A connection is free again. */
  release(c: Connection): void {
    const next = this.waiting.shift();
    if (next) c.start(next);
    else this.free.push(c);
  }

  /** @internal A connection ended. */
  gone(c: Connection): void {
    this.open.delete(c);
    const i = this.free.indexOf(c);
    if (i >= 0) this.free.splice(i, 1);
    if (this.waiting.length > 0 && !this.closing) this.connect().start(this.waiting.shift()!);
    if (this.closing && this.open.size === 0) this.drained?.();
  }

  /** Stops taking requests; those in flight finish, then every connection closes. */
  close(): Promise<void> {
    this.closing = true;
    for (const p of this.waiting.splice(0))
      p.reject(new UpstreamError(UPSTREAM_CODES.destroyed, `the client to ${this.origin} was closed`));
    for (const c of [...this.free]) c.kill(undefined);
    if (this.open.size === 0) return Promise.resolve();
    return new Promise((resolve) => (this.drained = resolve));
  }

  /** Ends everything now: requests in flight fail. */
  destroy(): Promise<void> {
    const done = this.close();
    for (const c of [...this.open])
      c.kill(new UpstreamError(UPSTREAM_CODES.destroyed, `the client to ${this.origin} was destroyed`));
    return done;
  }
}
