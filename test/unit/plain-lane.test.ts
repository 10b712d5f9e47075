/**
 * The plain HTTP/1.1 lane (the router's and the model server's), driven byte by byte from raw loopback sockets. Each test
 * says what the client sends (split where the framing is hardest) and checks which lane
 * answered, with what: plain requests on the lane, in order, on one connection; everything
 * unusual in node:http, with no byte lost or read twice on the way over.
 */
import http from 'node:http';
import net from 'node:net';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { Exchange } from '../../serving/http/exchange';
import { parseHead, plainLane, type PlainLane, type PlainLaneOptions } from '../../serving/http/plain-lane';

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const lanes: PlainLane[] = [];
const sockets: net.Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(lanes.splice(0).map((l) => l.close(100)));
});

type Handler = (ex: Exchange) => void;

/** Echoes what it was asked, marked with the lane that answered. */
const echo =
  (lane: string): Handler =>
  (ex) => {
    const body = ex.body(1 << 20) as Buffer;
    ex.send(200, ['x-lane', lane, 'x-method', ex.method, 'x-url', ex.url], body);
  };

async function start(
  handle: Handler = echo('plain'),
  options: Partial<PlainLaneOptions> = {},
): Promise<{ port: number; lane: PlainLane; fallbackSeen: string[] }> {
  const fallbackSeen: string[] = [];
  const fallback = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      fallbackSeen.push(`${req.method} ${req.url} ${body.toString()}`);
      res.writeHead(200, { 'x-lane': 'fallback', 'x-url': req.url ?? '', 'content-length': body.length });
      res.end(body);
    });
  });
  const lane = plainLane({
    fallback,
    accepts: (_m, target) => target.startsWith('/v2/models/'),
    handle,
    maxBodyBytes: 1024,
    ...options,
  });
  lanes.push(lane);
  await new Promise<void>((r) => lane.server.listen(0, '127.0.0.1', r));
  return { port: (lane.server.address() as net.AddressInfo).port, lane, fallbackSeen };
}

/** A raw client: writes the parts (with a pause between them) and reads `n` answers. */
async function talk(
  port: number,
  parts: (string | Buffer)[],
  n: number,
  gapMs = 5,
): Promise<{ answers: Answer[]; ended: boolean; socket: net.Socket }> {
  const socket = net.connect(port, '127.0.0.1');
  sockets.push(socket);
  await new Promise<void>((r) => socket.once('connect', () => r()));
  let buf: Buffer = Buffer.alloc(0);
  let ended = false;
  const answers: Answer[] = [];
  const done = new Promise<void>((resolve) => {
    const parse = (): void => {
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const lines = buf.toString('latin1', 0, end).split('\r\n');
        const headers: Record<string, string> = {};
        for (const l of lines.slice(1)) {
          const c = l.indexOf(':');
          headers[l.slice(0, c).toLowerCase()] = l.slice(c + 1).trim();
        }
        let body: Buffer;
        let rest: Buffer;
        if (headers['transfer-encoding'] === 'chunked') {
          const chunks: Buffer[] = [];
          let p = end + 4;
          for (;;) {
            const eol = buf.indexOf('\r\n', p);
            if (eol < 0) return;
            const size = parseInt(buf.toString('latin1', p, eol), 16);
            if (buf.length < eol + 2 + size + 2) return;
            if (size === 0) {
              p = eol + 4;
              break;
            }
            chunks.push(buf.subarray(eol + 2, eol + 2 + size));
            p = eol + 2 + size + 2;
          }
          body = Buffer.concat(chunks);
          rest = buf.subarray(p);
        } else {
          const len = Number(headers['content-length'] ?? 0);
          if (buf.length < end + 4 + len) return;
          body = buf.subarray(end + 4, end + 4 + len);
          rest = buf.subarray(end + 4 + len);
        }
        answers.push({ status: Number(lines[0]!.split(' ')[1]), headers, body: body.toString() });
        buf = rest;
        if (answers.length >= n) resolve();
      }
    };
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      parse();
    });
    socket.on('end', () => {
      ended = true;
      resolve();
    });
    socket.on('close', () => resolve());
    socket.on('error', () => resolve());
  });
  for (const part of parts) {
    socket.write(part);
    if (gapMs > 0) await sleep(gapMs);
  }
  await Promise.race([done, sleep(3000)]);
  return { answers, ended, socket };
}

const post = (path: string, body: string, extra = ''): string =>
  `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${extra}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

describe('plain HTTP lane', () => {
  it('answers plain requests itself, in order, on one kept-alive connection', async () => {
    const { port, fallbackSeen } = await start();
    const a = post('/v2/models/m/infer', '{"a":1}');
    const b = `GET /v2/models/m HTTP/1.1\r\nhost: x\r\n\r\n`;
    const c = post('/v2/models/m/infer', '{"c":3}');
    // Sent apart, then b and c pipelined in one write.
    const { answers, ended } = await talk(port, [a, b + c], 3);
    expect(answers.map((x) => [x.status, x.headers['x-lane'], x.headers['x-method'], x.body])).toEqual([
      [200, 'plain', 'POST', '{"a":1}'],
      [200, 'plain', 'GET', ''],
      [200, 'plain', 'POST', '{"c":3}'],
    ]);
    expect(ended).toBe(false);
    expect(fallbackSeen).toEqual([]);
    expect(answers[0]!.headers.date).toMatch(/GMT$/);
  });

  it('reads a head and a body split into single bytes', async () => {
    const { port } = await start();
    const body = '{"inputs":[1,2,3]}';
    const bytes = [...Buffer.from(post('/v2/models/m/infer', body, 'X-Request-Id: r1\r\n'))].map((b) =>
      Buffer.from([b]),
    );
    const { answers } = await talk(port, bytes, 1, 0);
    expect(answers[0]).toMatchObject({ status: 200, body, headers: { 'x-lane': 'plain' } });
  });

  it('gives the handler the raw headers as sent, and header() as node:http joins them', async () => {
    let seen: { raw: readonly string[]; auth?: string; multi?: string } | undefined;
    const { port } = await start((ex) => {
      seen = { raw: [...ex.rawHeaders], auth: ex.header('authorization'), multi: ex.header('x-multi') };
      ex.send(204, [], '');
    });
    await talk(
      port,
      [
        `GET /v2/models/m HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer one\r\nauthorization: Bearer two\r\nX-Multi: a\r\nx-multi:  b \r\n\r\n`,
      ],
      1,
    );
    expect(seen!.raw).toEqual([
      'Host',
      'x',
      'Authorization',
      'Bearer one',
      'authorization',
      'Bearer two',
      'X-Multi',
      'a',
      'x-multi',
      'b',
    ]);
    expect(seen!.auth).toBe('Bearer one');
    expect(seen!.multi).toBe('a, b');
  });

  // Each of these goes to node:http, which answers (or refuses) it as it always has.
  const unusual: [string, string, (a: Answer) => void][] = [
    [
      'a chunked body',
      `POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n`,
      (a) => expect([a.headers['x-lane'], a.body]).toEqual(['fallback', 'abcde']),
    ],
    [
      'Content-Length and Transfer-Encoding both (a smuggling attempt)',
      `POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
      (a) => expect(a.status).toBe(400),
    ],
    [
      'two Content-Length headers',
      `POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd`,
      (a) => expect(a.status).toBe(400),
    ],
    [
      'a space before the colon',
      `POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length : 3\r\n\r\nabc`,
      (a) => expect(a.status).toBe(400),
    ],
    [
      'HTTP/1.0',
      `GET /v2/models/m HTTP/1.0\r\nHost: x\r\n\r\n`,
      (a) => expect(a.headers['x-lane']).toBe('fallback'),
    ],
    [
      'a path the lane does not serve',
      post('/admin/routes', '{}'),
      (a) => expect([a.headers['x-lane'], a.headers['x-url']]).toEqual(['fallback', '/admin/routes']),
    ],
    [
      'Expect: 100-continue',
      post('/v2/models/m/infer', 'abc', 'Expect: 100-continue\r\n'),
      // node:http says 100 Continue, then answers.
      (a) => expect([a.headers['x-lane'], a.body]).toEqual(['fallback', 'abc']),
    ],
    [
      'a head over 16 kB',
      `GET /v2/models/m HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`,
      (a) => expect(a.status).toBe(431),
    ],
    [
      'a body over the lane limit',
      post('/v2/models/m/infer', 'x'.repeat(2000)),
      (a) => expect([a.headers['x-lane'], a.body.length]).toEqual(['fallback', 2000]),
    ],
    [
      'a control character in a value',
      `GET /v2/models/m HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n`,
      (a) => expect(a.headers['x-lane']).not.toBe('plain'),
    ],
  ];
  for (const [name, request, check] of unusual) {
    it(`hands ${name} to node:http`, async () => {
      const { port } = await start();
      const interim = request.includes('Expect:') ? 1 : 0;
      const { answers } = await talk(port, [request], 1 + interim);
      expect(answers.map((a) => a.status).slice(0, interim)).toEqual(interim ? [100] : []);
      expect(answers.length).toBe(1 + interim);
      check(answers[interim]!);
    });
  }

  it('keeps a handed-off connection with node:http, the bytes after the handoff intact', async () => {
    const { port, fallbackSeen } = await start();
    const chunked = `POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`;
    // The handoff happens mid-body: the rest of the chunked body arrives after it.
    const { answers } = await talk(
      port,
      [
        post('/v2/models/m/infer', 'one'),
        chunked + '3\r\nab',
        'c\r\n0\r\n\r\n',
        post('/v2/models/m/infer', 'three'),
      ],
      3,
    );
    expect(answers.map((a) => [a.headers['x-lane'], a.body])).toEqual([
      ['plain', 'one'],
      ['fallback', 'abc'],
      ['fallback', 'three'],
    ]);
    expect(fallbackSeen).toEqual(['POST /v2/models/m/infer abc', 'POST /v2/models/m/infer three']);
  });

  it('closes after an answer to Connection: close, and says so', async () => {
    const { port } = await start();
    const { answers, ended } = await talk(
      port,
      [post('/v2/models/m/infer', 'x', 'Connection: close\r\n')],
      2,
    );
    expect(answers.length).toBe(1);
    expect(answers[0]!.headers.connection).toBe('close');
    expect(ended).toBe(true);
  });

  it('streams an answer chunked when its length is unknown, and framed when it is known', async () => {
    const { port } = await start((ex) => {
      const known = ex.url.endsWith('/sized');
      void ex.stream(
        200,
        known ? ['content-length', '6'] : [],
        Readable.from([Buffer.from('abc'), Buffer.from('def')]),
      );
    });
    const { answers } = await talk(
      port,
      [
        `GET /v2/models/m/unsized HTTP/1.1\r\nHost: x\r\n\r\nGET /v2/models/m/sized HTTP/1.1\r\nHost: x\r\n\r\n`,
      ],
      2,
    );
    expect(answers.map((a) => [a.headers['transfer-encoding'], a.headers['content-length'], a.body])).toEqual(
      [
        ['chunked', undefined, 'abcdef'],
        [undefined, '6', 'abcdef'],
      ],
    );
  });

  it('refuses to write a response header that would split the answer', async () => {
    let thrown: unknown;
    let headersSentAfter: boolean | undefined;
    const { port } = await start((ex) => {
      try {
        ex.send(200, ['x-bad', 'a\r\nset-cookie: x=1'], 'body');
      } catch (err) {
        thrown = err;
        // Nothing went out: the handler may still answer (the router's 502), here it cuts.
        headersSentAfter = ex.headersSent;
        ex.destroy();
      }
    });
    const { answers } = await talk(port, [`GET /v2/models/m HTTP/1.1\r\nHost: x\r\n\r\n`], 1);
    expect(String(thrown)).toMatch(/invalid response header "x-bad"/);
    expect(headersSentAfter).toBe(false);
    expect(answers).toEqual([]);
  });

  it('tells the handler when the client left, and keeps serving others', async () => {
    let release!: () => void;
    const waited = new Promise<void>((r) => (release = r));
    let abortedSeen: boolean | undefined;
    const { port } = await start((ex) => {
      if (ex.url.endsWith('slow')) {
        void waited.then(() => {
          abortedSeen = ex.aborted;
          ex.send(200, [], 'late');
        });
      } else ex.send(200, [], 'ok');
    });
    const first = net.connect(port, '127.0.0.1');
    sockets.push(first);
    await new Promise<void>((r) => first.once('connect', () => r()));
    first.write(`GET /v2/models/m/slow HTTP/1.1\r\nHost: x\r\n\r\n`);
    await sleep(50);
    first.destroy();
    await sleep(50);
    release();
    await sleep(20);
    expect(abortedSeen).toBe(true);
    const { answers } = await talk(port, [`GET /v2/models/m HTTP/1.1\r\nHost: x\r\n\r\n`], 1);
    expect(answers[0]!.body).toBe('ok');
  });

  it('drops a head that does not complete within the headers timeout', async () => {
    const { port } = await start(echo('plain'), { headersTimeoutMs: 100 });
    // Waits for a second answer that never comes: the close ends the wait.
    const { answers, ended } = await talk(port, [`GET /v2/models/m HTTP/1.1\r\nHo`], 2);
    expect(answers.map((a) => [a.status, a.headers.connection])).toEqual([[408, 'close']]);
    expect(ended).toBe(true);
  });

  it('closes a kept-alive connection idle past the keep-alive timeout, and only then', async () => {
    const { port } = await start(echo('plain'), { keepAliveTimeoutMs: 200 });
    const socket = net.connect(port, '127.0.0.1');
    sockets.push(socket);
    await new Promise((r) => socket.once('connect', r));
    const closed = new Promise<number>((r) => socket.once('close', () => r(Date.now())));
    const answered = new Promise((r) => socket.once('data', r));
    socket.write(`GET /v2/models/m HTTP/1.1\r\nHost: x\r\n\r\n`);
    await answered;
    const t0 = Date.now();
    const at = await Promise.race([closed, sleep(2000).then(() => -1)]);
    expect(at).toBeGreaterThan(0);
    // Within the timeout and a sweep (a tenth of it, at least 20 ms) of the answer.
    expect(at - t0).toBeGreaterThanOrEqual(150);
    expect(at - t0).toBeLessThan(600);
  });

  it('closes idle connections at once, its own and handed-off ones, and lets a busy answer finish', async () => {
    let release!: () => void;
    const waited = new Promise<void>((r) => (release = r));
    const { port, lane } = await start((ex) => void waited.then(() => ex.send(200, [], 'finished')));
    const idlePlain = net.connect(port, '127.0.0.1');
    const idleHanded = net.connect(port, '127.0.0.1');
    sockets.push(idlePlain, idleHanded);
    await Promise.all([idlePlain, idleHanded].map((s) => new Promise((r) => s.once('connect', r))));
    const handedAnswer = new Promise((r) => idleHanded.once('data', r));
    idleHanded.write(`GET /other HTTP/1.1\r\nHost: x\r\n\r\n`);
    await handedAnswer;
    const busy = talk(port, [`GET /v2/models/m HTTP/1.1\r\nHost: x\r\n\r\n`], 1);
    await sleep(50);
    const closed = new Promise((r) => idleHanded.once('close', r));
    const closing = lane.close(5_000);
    await Promise.race([closed, sleep(1000)]);
    expect(idleHanded.destroyed).toBe(true);
    release();
    const { answers } = await busy;
    expect(answers[0]!.body).toBe('finished');
    expect(answers[0]!.headers.connection).toBeUndefined();
    const t0 = Date.now();
    await closing;
    expect(Date.now() - t0).toBeLessThan(1000);
    lanes.splice(lanes.indexOf(lane), 1);
  });
});

describe('parseHead', () => {
  it('reads a plain head', () => {
    expect(
      parseHead('POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\nConnection: close'),
    ).toEqual({
      method: 'POST',
      target: '/v2/models/m/infer',
      rawHeaders: ['Host', 'x', 'Content-Length', '12', 'Connection', 'close'],
      contentLength: 12,
      close: true,
    });
  });

  it.each([
    ['no Host', 'GET / HTTP/1.1\r\nX: y'],
    ['two Hosts', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b'],
    ['a folded line', 'GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n z'],
    ['an absolute-form target', 'GET http://a/ HTTP/1.1\r\nHost: a'],
    ['a lower-case method', 'get / HTTP/1.1\r\nHost: a'],
    ['another method', 'PUT / HTTP/1.1\r\nHost: a'],
    ['two spaces in the request line', 'GET  / HTTP/1.1\r\nHost: a'],
    ['HTTP/1.10', 'GET / HTTP/1.10\r\nHost: a'],
    ['a signed Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1'],
    ['a GET with a body', 'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1'],
    ['Connection: upgrade', 'GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade'],
    ['a bare LF inside a line', 'GET / HTTP/1.1\r\nHost: a\nX: b'],
    ['an empty header name', 'GET / HTTP/1.1\r\nHost: a\r\n: b'],
  ])('leaves %s to node:http', (_name, head) => {
    expect(parseHead(head)).toBeUndefined();
  });
});
