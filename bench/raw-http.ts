/**
 * The cheapest HTTP/1.1 client the overload harness can have: prepared request bytes written on
 * keep-alive sockets, the answer read by its status line and Content-Length, one request per
 * connection at a time. On 2 cores the load generator shares the CPU with the server, so every
 * microsecond it spends per request is taken from the server being measured; a general client
 * (undici) costs several times this per request.
 */
import net from 'node:net';

export interface RawAnswer {
  status: number;
  body: Buffer;
}

const HEADER_END = Buffer.from('\r\n\r\n');

class Connection {
  readonly socket: net.Socket;
  private chunks: Buffer[] = [];
  private size = 0;
  private pending?: { resolve: (a: RawAnswer) => void; reject: (e: Error) => void };
  dead = false;

  constructor(port: number, host: string, onFree: (c: Connection) => void, onDead: (c: Connection) => void) {
    this.socket = net.connect(port, host);
    this.socket.setNoDelay(true);
    this.socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.size += chunk.length;
      const answer = this.parse();
      if (!answer) return;
      const p = this.pending;
      this.pending = undefined;
      if (answer.close) {
        this.dead = true;
        this.socket.destroy();
        onDead(this);
      } else onFree(this);
      p?.resolve({ status: answer.status, body: answer.body });
    });
    const fail = (err?: Error): void => {
      if (this.dead) return;
      this.dead = true;
      onDead(this);
      const p = this.pending;
      this.pending = undefined;
      p?.reject(err ?? new Error('connection closed'));
    };
    this.socket.on('error', fail);
    this.socket.on('close', () => fail());
  }

  /** A whole answer in the buffer: status, body, whether the server closes the connection. */
  private parse(): { status: number; body: Buffer; close: boolean } | undefined {
    const buf = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
    this.chunks = [buf];
    const end = buf.indexOf(HEADER_END);
    if (end < 0) return undefined;
    const head = buf.toString('latin1', 0, end).toLowerCase();
    const m = /\r\ncontent-length:\s*(\d+)/.exec(head);
    const length = m ? Number(m[1]) : 0;
    if (buf.length < end + 4 + length) return undefined;
    this.chunks = [];
    this.size = 0;
    return {
      status: Number(head.slice(9, 12)),
      body: buf.subarray(end + 4, end + 4 + length),
      close: /\r\nconnection:\s*close/.test(head),
    };
  }

  send(request: Buffer): Promise<RawAnswer> {
    return new Promise<RawAnswer>((resolve, reject) => {
      this.pending = { resolve, reject };
      this.socket.write(request);
    });
  }
}

export class RawHttpClient {
  private readonly idle: Connection[] = [];
  private readonly all = new Set<Connection>();
  private readonly host: string;
  private readonly port: number;

  constructor(
    url: string,
    private readonly maxConnections: number,
  ) {
    const u = new URL(url);
    this.host = u.hostname;
    this.port = Number(u.port);
  }

  /** The request bytes for a JSON POST, prepared once per distinct body. */
  prepare(path: string, body: string): Buffer {
    const payload = Buffer.from(body);
    return Buffer.concat([
      Buffer.from(
        `POST ${path} HTTP/1.1\r\nhost: ${this.host}:${this.port}\r\ncontent-type: application/json\r\ncontent-length: ${payload.length}\r\n\r\n`,
      ),
      payload,
    ]);
  }

  request(prepared: Buffer): Promise<RawAnswer> {
    let c = this.idle.pop();
    while (c?.dead) c = this.idle.pop();
    if (!c) {
      if (this.all.size >= this.maxConnections) return Promise.reject(new Error('no free connection'));
      c = new Connection(
        this.port,
        this.host,
        (free) => this.idle.push(free),
        (dead) => this.all.delete(dead),
      );
      this.all.add(c);
    }
    return c.send(prepared);
  }

  close(): void {
    for (const c of this.all) c.socket.destroy();
    this.all.clear();
    this.idle.length = 0;
  }
}
