/**
 * A real HTTP webhook receiver on loopback (node:http) for the notification tests: it records
 * what arrives and answers as told: 200, an error status, a 429 with Retry-After, or never (the
 * request hangs until the client gives up or the receiver closes). Its URL carries a random
 * secret path, as Slack's and Teams' do, so tests can look for it where it must not be.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type Answer = 'ok' | 'hang' | { status: number; retryAfter?: number };

export interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: unknown;
  at: number;
}

export interface Receiver {
  /** The secret URL to configure. */
  url: string;
  /** The secret part of it (path), to grep for. */
  secret: string;
  received: Received[];
  /** Requests whose client hung up before an answer (a hanging receiver's timeouts). */
  abandoned: number;
  close(): Promise<void>;
}

const open: Receiver[] = [];

/** `answer` may change with the attempt: (n) => n < 3 ? { status: 503 } : 'ok'. */
export async function startReceiver(answer: Answer | ((n: number) => Answer)): Promise<Receiver> {
  const secret = `/hooks/T${randomBytes(6).toString('hex')}/B${randomBytes(6).toString('hex')}/${randomBytes(12).toString('hex')}`;
  const sockets = new Set<Socket>();
  const received: Received[] = [];
  const state = { abandoned: 0 };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        /* kept as text */
      }
      received.push({ path: req.url ?? '', headers: req.headers, body, at: Date.now() });
      const a = typeof answer === 'function' ? answer(received.length) : answer;
      if (a === 'hang') {
        res.on('close', () => {
          if (!res.writableEnded) state.abandoned++;
        });
        return;
      }
      if (req.url !== secret) {
        res.writeHead(404).end('no such hook');
        return;
      }
      if (a === 'ok') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
        return;
      }
      res
        .writeHead(a.status, a.retryAfter !== undefined ? { 'retry-after': String(a.retryAfter) } : {})
        .end(`answered ${a.status} for ${req.url}`); // echoes the secret path, as some services do
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const receiver: Receiver = {
    url: `http://127.0.0.1:${port}${secret}`,
    secret,
    received,
    get abandoned() {
      return state.abandoned;
    },
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  open.push(receiver);
  return receiver;
}

export async function closeReceivers(): Promise<void> {
  await Promise.all(open.splice(0).map((r) => r.close()));
}
