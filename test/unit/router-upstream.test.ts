/**
 * The router's HTTP/1.1 upstream client against a scripted loopback server: each test says what
 * bytes the replica answers (split across writes where the framing is hardest), and checks what
 * the client makes of them: the answer, the reuse of the connection, or the error code the router
 * turns into its failure reason.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { errorReason } from '../../serving/router/failures';
import { Upstream, UPSTREAM_CODES } from '../../serving/router/upstream';

interface Seen {
  /** Each request's raw bytes, in order. */
  requests: string[];
  /** Connections accepted. */
  connections: number;
}

type Script = (socket: net.Socket, request: string, index: number) => void;

const servers: net.Server[] = [];
const clients: Upstream[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.destroy()));
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A server that hands each complete request head (+ Content-Length body) to `script`. */
async function scripted(script: Script): Promise<{ origin: string; seen: Seen }> {
  const seen: Seen = { requests: [], connections: 0 };
  const server = net.createServer((socket) => {
    seen.connections++;
    let buf = '';
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const len = Number(/content-length: (\d+)/i.exec(buf.slice(0, end))?.[1] ?? 0);
        if (buf.length < end + 4 + len) return;
        const request = buf.slice(0, end + 4 + len);
        buf = buf.slice(end + 4 + len);
        seen.requests.push(request);
        script(socket, request, seen.requests.length - 1);
      }
    });
    socket.on('error', () => undefined);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { origin: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, seen };
}

function client(origin: string, connections = 4): Upstream {
  const c = new Upstream(origin, { connections });
  clients.push(c);
  return c;
}

const ok = (body: string, extra = ''): string =>
  `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n${extra}content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

const post = (body = '{"x":1}') => ({
  path: '/v2/models/m/infer',
  method: 'POST',
  headers: { 'content-type': 'application/json', 'x-request-id': ['a', 'b'] },
  body: Buffer.from(body),
  headersTimeout: 2_000,
  bodyTimeout: 2_000,
});

describe('upstream client', () => {
  it('sends head and body as written, and reuses the connection for the next request', async () => {
    const { origin, seen } = await scripted((s) => s.write(ok('{"y":2}', 'x-one: 1\r\nx-one: 2\r\n')));
    const up = client(origin);
    for (let i = 0; i < 3; i++) {
      const res = await up.request(post());
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe('application/json');
      expect(res.headers['x-one']).toEqual(['1', '2']);
      expect((await res.body.buffer()).toString()).toBe('{"y":2}');
    }
    expect(seen.connections).toBe(1);
    const host = new URL(origin).host;
    expect(seen.requests[0]).toBe(
      `POST /v2/models/m/infer HTTP/1.1\r\nhost: ${host}\r\ncontent-type: application/json\r\n` +
        'x-request-id: a\r\nx-request-id: b\r\ncontent-length: 7\r\n\r\n{"x":1}',
    );
  });

  it('decodes chunked answers split anywhere, skips 1xx interim answers, and honours HEAD and 204', async () => {
    const body = 'hello, chunked world';
    const wire =
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n' +
      '5;ext=1\r\nhello\r\nf\r\n, chunked world\r\n0\r\nx-trailer: t\r\n\r\n';
    const { origin, seen } = await scripted((s, req) => {
      if (req.startsWith('HEAD')) s.write('HTTP/1.1 200 OK\r\ncontent-length: 99\r\n\r\n');
      else if (req.startsWith('DELETE')) s.write('HTTP/1.1 204 No Content\r\n\r\n');
      else {
        // One byte per write: every state of the decoder meets a boundary.
        let i = 0;
        const drip = (): void => {
          if (i < wire.length) s.write(wire[i++]!, () => setImmediate(drip));
        };
        drip();
      }
    });
    const up = client(origin);
    const res = await up.request(post());
    expect(res.statusCode).toBe(200);
    expect((await res.body.buffer()).toString()).toBe(body);
    const head = await up.request({ path: '/', method: 'HEAD' });
    expect(head.headers['content-length']).toBe('99');
    expect((await head.body.buffer()).length).toBe(0);
    const none = await up.request({ path: '/', method: 'DELETE' });
    expect(none.statusCode).toBe(204);
    await none.body.dump();
    expect(seen.connections).toBe(1);
  });

  it('reads a close-delimited answer to its end and opens a new connection after it, or after Connection: close', async () => {
    const { origin, seen } = await scripted((s, _req, i) => {
      if (i === 0) s.end('HTTP/1.1 200 OK\r\n\r\nuntil the end');
      else s.write(ok('last', 'connection: close\r\n'));
    });
    const up = client(origin);
    expect(await (await up.request(post())).body.text()).toBe('until the end');
    expect(await (await up.request(post())).body.text()).toBe('last');
    expect(await (await up.request(post())).body.text()).toBe('last');
    expect(seen.connections).toBe(3);
  });

  it('streams a large answer with backpressure, byte-exact', async () => {
    const size = 8 * 1024 * 1024;
    const payload = Buffer.alloc(size, 7);
    for (let i = 0; i < size; i += 4096) payload[i] = i % 251;
    const { origin } = await scripted((s) => {
      s.write(`HTTP/1.1 200 OK\r\ncontent-length: ${size}\r\n\r\n`);
      s.write(payload);
    });
    const res = await client(origin).request(post());
    const parts: Buffer[] = [];
    for await (const c of res.body.stream()) {
      parts.push(c as Buffer);
      await new Promise((r) => setImmediate(r)); // a slow reader
    }
    expect(Buffer.concat(parts).equals(payload)).toBe(true);
  });

  it('queues requests beyond its connection limit and runs them in order as connections free', async () => {
    const { origin, seen } = await scripted((s, req) => {
      const n = /"n":(\d+)/.exec(req)![1]!;
      setTimeout(() => s.write(ok(n)), 20);
    });
    const up = client(origin, 2);
    const answers = await Promise.all(
      Array.from({ length: 6 }, (_, n) => up.request(post(`{"n":${n}}`)).then((r) => r.body.text())),
    );
    expect(answers).toEqual(['0', '1', '2', '3', '4', '5']);
    expect(seen.connections).toBe(2);
  });

  it('maps every failure to the reason the router reports', async () => {
    const reason = async (origin: string, req = post()): Promise<string> => {
      const err = await client(origin)
        .request(req)
        .then(
          (r) => r.body.buffer(),
          (e: unknown) => Promise.reject(e),
        )
        .then(
          () => 'answered',
          (e: unknown) => errorReason(e).reason,
        );
      return err;
    };
    const silent = await scripted(() => undefined);
    expect(await reason(silent.origin, { ...post(), headersTimeout: 100 })).toBe('timeout');
    const stalls = await scripted((s) => s.write('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc'));
    expect(await reason(stalls.origin, { ...post(), bodyTimeout: 100 })).toBe('timeout');
    const cut = await scripted((s) => s.destroy());
    expect(await reason(cut.origin)).toBe('reset');
    const cutMidBody = await scripted((s) => s.end('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc'));
    expect(await reason(cutMidBody.origin)).toBe('reset');
    for (const bad of [
      'HTTP/2 200\r\n\r\n',
      'HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n',
      'HTTP/1.1 200 OK\r\ncontent-length: 3, 4\r\n\r\nabcd',
      'HTTP/1.1 200 OK\r\nbad header\r\n\r\n',
      'HTTP/1.1 200 OK\r\n folded: x\r\n\r\n',
      'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n',
      'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nabc',
    ]) {
      const server = await scripted((s) => s.write(bad));
      expect(await reason(server.origin), JSON.stringify(bad)).toBe('protocol');
    }
    const refused = await scripted(() => undefined);
    await new Promise((r) => servers.pop()!.close(r));
    expect(await reason(refused.origin)).toBe('connect');
  });

  it('drops an idle connection before the keep-alive timeout the replica announced', async () => {
    const { origin, seen } = await scripted((s) => s.write(ok('k', 'keep-alive: timeout=1\r\n')));
    const up = client(origin);
    await (await up.request(post())).body.dump();
    // timeout=1 leaves 0 s after the one-second margin: the connection is not kept.
    await new Promise((r) => setTimeout(r, 50));
    await (await up.request(post())).body.dump();
    expect(seen.connections).toBe(2);
  });

  it('close() lets the request in flight finish; destroy() fails it; both refuse new ones', async () => {
    const { origin } = await scripted((s) => setTimeout(() => s.write(ok('late')), 100));
    const up = client(origin);
    const inFlight = up.request(post());
    await new Promise((r) => setTimeout(r, 20));
    const closed = up.close();
    expect(await (await inFlight).body.text()).toBe('late');
    await closed;
    await expect(up.request(post())).rejects.toMatchObject({ code: UPSTREAM_CODES.destroyed });

    const other = client(origin);
    const doomed = other.request(post());
    await new Promise((r) => setTimeout(r, 20));
    await other.destroy();
    await expect(doomed).rejects.toMatchObject({ code: UPSTREAM_CODES.destroyed });
  });
});
