/**
 * A fast lane for plain HTTP/1.1 requests, read straight off the socket in front of node:http
 * (the router's and the model server's). node:http builds two streams, a header object and a dozen closures per request;
 * on the router's hot path that is about 14 µs of the ~50 a proxied request costs on this
 * machine (bench:router, the `floor` and `rawFloor` rows).
 *
 * The lane takes only requests with a single reading: a strict request line (GET, HEAD or POST,
 * an origin-form target the caller accepts, HTTP/1.1), header lines that match RFC 9110's
 * grammar, one Host, and a body framed by at most one Content-Length. Anything else, such as a
 * chunked body, Expect, Upgrade, HTTP/1.0, a folded or malformed line, or a head over 16 kB,
 * hands the connection to node:http for good. The handoff happens at a request boundary, with
 * every unread byte put back. Unusual requests thus stay with the parser Node ships (llhttp),
 * and being strict here can only send a request there. Smuggling needs two parsers that disagree
 * on where a request ends; this one frames only requests whose end nobody can read differently.
 */
import type http from 'node:http';
import { STATUS_CODES } from 'node:http';
import net from 'node:net';
import type { Readable } from 'node:stream';
import { HttpError, type Exchange } from './exchange';

export interface PlainLaneOptions {
  /** Takes every connection the lane hands off. It never listens itself. */
  fallback: http.Server;
  /** Whether the lane serves this request (else the connection goes to `fallback`). */
  accepts(method: string, target: string): boolean;
  /** Answers one request; it must end in exactly one `send`, `stream` or `destroy`. */
  handle(exchange: Exchange): void;
  /** Larger declared bodies go to `fallback`, whose handler answers 413. */
  maxBodyBytes: number;
  /** An idle keep-alive connection, or a stalled request, is closed after this (default 65 000). */
  keepAliveTimeoutMs?: number;
  /** A request head must be complete within this of its first byte (default 60 000, node:http's). */
  headersTimeoutMs?: number;
}

export interface PlainLane {
  readonly server: net.Server;
  /** Stops accepting, closes idle connections, and cuts the rest after `graceMs`. */
  close(graceMs: number): Promise<void>;
}

/** node:http's default maxHeaderSize: a longer head goes there, to be refused with 431. */
const MAX_HEAD = 16 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
/** While a request is answered, bytes of the next ones wait; beyond this the socket pauses. */
const PIPELINE_BYTES = 1024 * 1024;
/** What node:http answers a head that is too slow (its headersTimeout). */
const HEAD_TIMEOUT = 'HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n';
/** Answers up to this size go out in one write with their head (one copy beats a writev). */
const SMALL_ANSWER = 16 * 1024;
const TARGET = /^\/[\x21-\x7e]*$/;
const DIGITS = /^\d{1,15}$/;

/** tchar (RFC 9110 §5.6.2) by character code: a table, cheaper than a regex per header. */
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
  TCHAR[c.charCodeAt(0)] = 1;

/** Whether `s[start, end)` is a non-empty token (a header name). */
function isToken(s: string, start: number, end: number): boolean {
  if (end <= start) return false;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c > 127 || TCHAR[c] === 0) return false;
  }
  return true;
}

/**
 * Whether `s[start, end)` holds only field-value characters: HTAB, visible ASCII, SP, obs-text
 * (RFC 9110 §5.5), as node:http checks too. CR, LF and NUL never pass, so no value splits a head.
 */
function isFieldValue(s: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f || c > 0xff) return false;
  }
  return true;
}

interface Head {
  method: string;
  target: string;
  /** [name, value, ...] as received, like node:http's rawHeaders. */
  rawHeaders: string[];
  contentLength: number;
  close: boolean;
}

/** The request head before its blank line, or undefined when it is not for this lane. */
export function parseHead(head: string): Head | undefined {
  let lineEnd = head.indexOf('\r\n');
  if (lineEnd < 0) lineEnd = head.length;
  const sp1 = head.indexOf(' ');
  const sp2 = sp1 < 0 ? -1 : head.indexOf(' ', sp1 + 1);
  if (sp1 <= 0 || sp2 < 0 || sp2 + 9 !== lineEnd || !head.startsWith('HTTP/1.1', sp2 + 1)) return undefined;
  const method = head.slice(0, sp1);
  if (method !== 'POST' && method !== 'GET' && method !== 'HEAD') return undefined;
  const target = head.slice(sp1 + 1, sp2);
  if (!TARGET.test(target)) return undefined;
  const rawHeaders: string[] = [];
  let contentLength = -1;
  let hosts = 0;
  let close = false;
  let p = lineEnd + 2;
  while (p < head.length) {
    let e = head.indexOf('\r\n', p);
    if (e < 0) e = head.length;
    const colon = head.indexOf(':', p);
    if (colon <= p || colon >= e) return undefined;
    // Also refuses obs-fold (a line that starts with whitespace) and "name :".
    if (!isToken(head, p, colon)) return undefined;
    const name = head.slice(p, colon);
    let vs = colon + 1;
    let ve = e;
    while (vs < ve && (head.charCodeAt(vs) === 0x20 || head.charCodeAt(vs) === 0x09)) vs++;
    while (ve > vs && (head.charCodeAt(ve - 1) === 0x20 || head.charCodeAt(ve - 1) === 0x09)) ve--;
    if (!isFieldValue(head, vs, ve)) return undefined;
    const value = head.slice(vs, ve);
    rawHeaders.push(name, value);
    p = e + 2;
    // Only the names that frame the request or the connection matter here.
    if (name.length < 4 || name.length > 17) continue;
    const lower = name.toLowerCase();
    if (lower === 'content-length') {
      if (contentLength >= 0 || !DIGITS.test(value)) return undefined;
      contentLength = Number(value);
    } else if (lower === 'host') {
      if (++hosts > 1) return undefined;
    } else if (lower === 'connection') {
      const v = value.toLowerCase();
      if (v === 'close') close = true;
      else if (v !== 'keep-alive') return undefined;
    } else if (
      lower === 'transfer-encoding' ||
      lower === 'expect' ||
      lower === 'upgrade' ||
      lower === 'http2-settings'
    )
      return undefined;
  }
  if (hosts !== 1) return undefined;
  // A request without Content-Length or Transfer-Encoding has no body (RFC 9112 §6.3).
  if (contentLength < 0) contentLength = 0;
  else if (contentLength > 0 && method !== 'POST') return undefined;
  return { method, target, rawHeaders, contentLength, close };
}

let dateSecond = -1;
let dateLine = '';
/** The Date header, formatted once a second (an origin must send one: RFC 9110 §6.6.1). */
function date(): string {
  const s = Math.floor(Date.now() / 1000);
  if (s !== dateSecond) {
    dateSecond = s;
    dateLine = `date: ${new Date(s * 1000).toUTCString()}\r\n`;
  }
  return dateLine;
}

class Connection {
  private pending: Buffer | undefined;
  /** A request whose body is still arriving, copied once into its exact buffer. */
  private partial: { head: Head; body: Buffer; filled: number } | undefined;
  busy = false;
  handedOff = false;
  /** The socket closed (a flag: the stream's own getters cost more on every answer). */
  closed = false;
  /** The `keep-alive` hint every kept-alive answer carries. */
  get keepAliveLine(): string {
    return this.lane.keepAliveLine;
  }
  /** Date.now() of the last bytes in or the last answer out (the lane's sweep reads it). */
  lastActive = Date.now();
  /** When the incomplete head now waiting began arriving; 0 when none waits. */
  headSince = 0;
  private readonly onData = (chunk: Buffer): void => this.data(chunk);
  private readonly onError = (): void => void this.socket.destroy();

  constructor(
    readonly socket: net.Socket,
    private readonly lane: Lane,
  ) {
    socket.setNoDelay(true);
    // No socket.setTimeout: it re-arms a timer on every read and write. The lane sweeps instead.
    socket.on('data', this.onData);
    socket.on('error', this.onError);
    socket.once('close', () => {
      this.closed = true;
      lane.connections.delete(this);
    });
  }

  private data(chunk: Buffer): void {
    this.lastActive = Date.now();
    const partial = this.partial;
    if (partial) {
      const need = partial.body.length - partial.filled;
      const take = Math.min(need, chunk.length);
      chunk.copy(partial.body, partial.filled, 0, take);
      partial.filled += take;
      if (take < chunk.length) this.pending = chunk.subarray(take);
      if (partial.filled === partial.body.length) {
        this.partial = undefined;
        this.dispatch(partial.head, partial.body);
      }
      return;
    }
    this.pending = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    if (!this.busy) this.advance();
    else if (this.pending.length > PIPELINE_BYTES) this.socket.pause();
  }

  /** Starts the next whole request in `pending`, if there is one and nothing is being answered. */
  advance(): void {
    const buf = this.pending;
    if (this.busy || this.handedOff || !buf) return;
    const end = buf.indexOf(HEAD_END);
    if (end < 0) {
      // Bare-LF heads are node:http's call, not ours.
      if (buf.length > MAX_HEAD || buf.includes('\n\n')) this.handOff();
      else if (this.headSince === 0) this.headSince = this.lastActive;
      return;
    }
    const head = end <= MAX_HEAD ? parseHead(buf.toString('latin1', 0, end)) : undefined;
    if (
      !head ||
      head.contentLength > this.lane.options.maxBodyBytes ||
      this.lane.closing ||
      !this.lane.options.accepts(head.method, head.target)
    ) {
      this.handOff();
      return;
    }
    this.headSince = 0;
    const start = end + 4;
    const total = start + head.contentLength;
    if (buf.length >= total) {
      this.pending = buf.length > total ? buf.subarray(total) : undefined;
      this.dispatch(head, buf.subarray(start, total));
      return;
    }
    const body = Buffer.allocUnsafe(head.contentLength);
    buf.copy(body, 0, start);
    this.partial = { head, body, filled: buf.length - start };
    this.pending = undefined;
  }

  private dispatch(head: Head, body: Buffer): void {
    this.busy = true;
    this.lane.options.handle(new PlainExchange(this, head, body));
  }

  /** The answer is out: keep the connection for the next request, or close it. */
  done(close: boolean): void {
    this.busy = false;
    this.lastActive = Date.now();
    if (this.closed) return;
    if (close || this.lane.closing) {
      this.socket.end();
      return;
    }
    if (this.socket.isPaused()) this.socket.resume();
    // On the next tick: answers given synchronously must not recurse through a pipelined burst.
    if (this.pending) process.nextTick(() => this.advance());
  }

  /** node:http takes the connection from here on, the unread bytes first. */
  private handOff(): void {
    this.handedOff = true;
    const socket = this.socket;
    socket.off('data', this.onData);
    socket.off('error', this.onError);
    socket.pause();
    if (this.pending) socket.unshift(this.pending);
    this.pending = undefined;
    this.lane.handedOff(socket);
    this.lane.options.fallback.emit('connection', socket);
    socket.resume();
  }
}

class PlainExchange implements Exchange {
  private sent = false;

  constructor(
    private readonly conn: Connection,
    private readonly head: Head,
    private readonly payload: Buffer,
  ) {}

  get method(): string {
    return this.head.method;
  }
  get url(): string {
    return this.head.target;
  }
  get rawHeaders(): readonly string[] {
    return this.head.rawHeaders;
  }
  get headersSent(): boolean {
    return this.sent;
  }
  get aborted(): boolean {
    return this.conn.closed;
  }
  get complete(): boolean {
    // The lane reads every body whole before the handler sees it.
    return true;
  }

  /** As node:http's header object has it: a repeated Authorization keeps the first, others join. */
  header(lower: string): string | undefined {
    const raw = this.head.rawHeaders;
    let out: string | undefined;
    for (let i = 0; i < raw.length; i += 2) {
      if (raw[i]!.length !== lower.length || raw[i]!.toLowerCase() !== lower) continue;
      if (lower === 'authorization') return raw[i + 1];
      out = out === undefined ? raw[i + 1] : `${out}, ${raw[i + 1]}`;
    }
    return out;
  }

  body(limit: number): Buffer {
    if (this.payload.length > limit)
      throw new HttpError(
        413,
        `request body of ${this.payload.length} bytes exceeds the limit of ${limit} bytes`,
      );
    return this.payload;
  }

  discard(): void {
    // The body is in memory already: nothing is left to drain.
  }

  private headLines(status: number, headers: readonly string[], length: number | undefined): string {
    let out = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n${date()}`;
    let hasLength = false;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!;
      const value = headers[i + 1]!;
      if (!isToken(name, 0, name.length) || !isFieldValue(value, 0, value.length))
        throw new Error(`invalid response header ${JSON.stringify(name)}`);
      if (name.length === 14 && name.toLowerCase() === 'content-length') hasLength = true;
      out += `${name}: ${value}\r\n`;
    }
    if (!hasLength)
      out += length === undefined ? 'transfer-encoding: chunked\r\n' : `content-length: ${length}\r\n`;
    // As node:http says it: clients that read the hint (undici) close first, never mid-request.
    out += this.head.close ? 'connection: close\r\n' : this.conn.keepAliveLine;
    return `${out}\r\n`;
  }

  send(status: number, headers: readonly string[], body: Buffer | string): void {
    if (this.sent) throw new Error('the answer was sent already');
    const socket = this.conn.socket;
    const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    // Built before anything counts as sent: a refused header leaves the caller free to answer.
    const head = this.headLines(status, headers, bytes.length);
    this.sent = true;
    if (!this.conn.closed) {
      if (this.head.method === 'HEAD' || bytes.length === 0) socket.write(head, 'latin1');
      else if (bytes.length <= SMALL_ANSWER) {
        // The usual inference answer: head and body copied into one buffer, one write.
        const out = Buffer.allocUnsafe(head.length + bytes.length);
        out.write(head, 0, 'latin1');
        bytes.copy(out, head.length);
        socket.write(out);
      } else {
        // One writev for the head and the body, as node:http does.
        socket.cork();
        socket.write(head, 'latin1');
        socket.write(bytes);
        socket.uncork();
      }
    }
    this.conn.done(this.head.close);
  }

  async stream(status: number, headers: readonly string[], source: Readable): Promise<void> {
    if (this.sent) throw new Error('the answer was sent already');
    const socket = this.conn.socket;
    const declared = headers.some((h, i) => i % 2 === 0 && h.toLowerCase() === 'content-length');
    const chunked = !declared && this.head.method !== 'HEAD';
    const head = this.headLines(status, headers, undefined);
    this.sent = true;
    socket.write(head, 'latin1');
    try {
      for await (const chunk of source as AsyncIterable<Buffer>) {
        if (this.conn.closed) throw new Error('the client went away');
        if (this.head.method === 'HEAD' || chunk.length === 0) continue;
        let ok: boolean;
        if (chunked) {
          socket.cork();
          socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
          socket.write(chunk);
          ok = socket.write('\r\n', 'latin1');
          socket.uncork();
        } else ok = socket.write(chunk);
        if (!ok) await drained(socket);
      }
      if (chunked) socket.write('0\r\n\r\n', 'latin1');
    } catch (err) {
      socket.destroy();
      this.conn.busy = false;
      throw err;
    }
    this.conn.done(this.head.close);
  }

  destroy(): void {
    this.sent = true;
    this.conn.socket.destroy();
    this.conn.busy = false;
  }
}

/** Resolves when the socket can take more, or is gone. */
function drained(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    const go = (): void => {
      socket.off('drain', go);
      socket.off('close', go);
      resolve();
    };
    socket.on('drain', go);
    socket.on('close', go);
  });
}

class Lane implements PlainLane {
  readonly server: net.Server;
  readonly connections = new Set<Connection>();
  /** Handed-off sockets and how many of their requests node:http is answering. */
  private readonly fallbackSockets = new Map<net.Socket, number>();
  closing = false;
  readonly keepAliveMs: number;
  readonly headersMs: number;
  readonly keepAliveLine: string;
  private readonly sweeper: NodeJS.Timeout;

  constructor(readonly options: PlainLaneOptions) {
    this.keepAliveMs = options.keepAliveTimeoutMs ?? 65_000;
    this.headersMs = options.headersTimeoutMs ?? 60_000;
    this.keepAliveLine = `keep-alive: timeout=${Math.floor(this.keepAliveMs / 1000)}\r\n`;
    // One timer for every connection, checking a tenth as often as the shorter limit: a limit is
    // enforced within 10% of itself, and no request touches a timer.
    this.sweeper = setInterval(
      () => this.sweep(),
      Math.max(20, Math.min(this.keepAliveMs, this.headersMs) / 10),
    );
    this.sweeper.unref();
    this.server = net.createServer((socket) => {
      if (this.closing) {
        socket.destroy();
        return;
      }
      this.connections.add(new Connection(socket, this));
    });
    // Counted so that close() can tell an idle handed-off connection from a busy one.
    options.fallback.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      const socket = req.socket;
      const n = this.fallbackSockets.get(socket);
      if (n === undefined) return;
      this.fallbackSockets.set(socket, n + 1);
      res.once('close', () => {
        const left = (this.fallbackSockets.get(socket) ?? 1) - 1;
        if (this.fallbackSockets.has(socket)) this.fallbackSockets.set(socket, left);
        if (this.closing && left === 0) socket.destroy();
      });
    });
  }

  /**
   * A head that is still incomplete after the headers timeout gets node:http's 408; a connection
   * idle (or stalled mid-body) past the keep-alive timeout is closed. An answer in progress is left
   * alone: the upstream has its own timeouts.
   */
  private sweep(): void {
    const now = Date.now();
    for (const c of this.connections) {
      if (c.busy) continue;
      if (c.headSince !== 0 && now - c.headSince >= this.headersMs) {
        c.headSince = 0;
        c.socket.end(HEAD_TIMEOUT, 'latin1');
      } else if (now - c.lastActive >= this.keepAliveMs) c.socket.destroy();
    }
  }

  handedOff(socket: net.Socket): void {
    for (const c of this.connections) if (c.socket === socket) this.connections.delete(c);
    this.fallbackSockets.set(socket, 0);
    socket.once('close', () => this.fallbackSockets.delete(socket));
  }

  close(graceMs: number): Promise<void> {
    this.closing = true;
    clearInterval(this.sweeper);
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const c of this.connections) if (!c.busy) c.socket.destroy();
    for (const [socket, busy] of this.fallbackSockets) if (busy === 0) socket.destroy();
    const cut = setTimeout(() => {
      for (const c of this.connections) c.socket.destroy();
      for (const socket of this.fallbackSockets.keys()) socket.destroy();
    }, graceMs);
    cut.unref();
    return closed.finally(() => clearTimeout(cut));
  }
}

/** The lane, not yet listening: `lane.server.listen(...)`. */
export function plainLane(options: PlainLaneOptions): PlainLane {
  return new Lane(options);
}
