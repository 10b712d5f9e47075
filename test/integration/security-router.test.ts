/**
 * The router's admin API obeys its token and the token never reaches the log: a real router on
 * 127.0.0.1 (port 0) with a logger whose lines this test collects. The refusal to listen on a
 * non-loopback host without a token is checked on the real process in router-process.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../common/log';
import { startRouter, type RunningRouter } from '../../serving/router/server';

const token = `tok-${randomBytes(12).toString('hex')}`;
const lines: string[] = [];
let router: RunningRouter | undefined;
const previousLevel = process.env.RUNWAY_LOG_LEVEL;

const route = {
  variants: [
    { name: 'v1', endpoints: ['http://127.0.0.1:9'], weight: 90 },
    { name: 'v2', endpoints: ['http://127.0.0.1:9'], weight: 10 },
  ],
};

async function admin(
  method: string,
  path: string,
  authorization?: string,
  body?: unknown,
): Promise<{ status: number; text: string }> {
  const headers: Record<string, string> = {};
  if (authorization !== undefined) headers.authorization = authorization;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${router!.adminUrl}${path}`, {
    method,
    headers,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, text: await res.text() };
}

beforeAll(async () => {
  // Debug lines too: the token must not leak at any level.
  process.env.RUNWAY_LOG_LEVEL = 'debug';
  router = await startRouter({
    port: 0,
    adminToken: token,
    logger: createLogger('router', (line) => lines.push(line)),
  });
});

afterAll(async () => {
  await router?.close();
  if (previousLevel === undefined) delete process.env.RUNWAY_LOG_LEVEL;
  else process.env.RUNWAY_LOG_LEVEL = previousLevel;
});

describe('router admin API security', () => {
  it('refuses requests without the token, or with a wrong one', async () => {
    const none = await admin('GET', '/routes');
    expect(none.status).toBe(401);
    expect(none.text).toMatch(/Bearer/);
    expect(none.text).not.toContain(token);

    for (const wrong of [
      `Bearer ${token}x`,
      `Bearer ${token.slice(0, -1)}`,
      token,
      `Basic ${token}`,
      'Bearer ',
    ]) {
      const r = await admin('GET', '/routes', wrong);
      expect([401, 403]).toContain(r.status);
      expect(r.text).not.toContain(token);
    }
    const put = await admin('PUT', '/routes/fraud', 'Bearer nope', route);
    expect([401, 403]).toContain(put.status);
    // The refused PUT changed nothing.
    const list = await admin('GET', '/routes', `Bearer ${token}`);
    expect(JSON.parse(list.text)).toEqual({ routes: {} });
  });

  it('accepts the right token: puts, reads and deletes a route', async () => {
    const auth = `Bearer ${token}`;
    const put = await admin('PUT', '/routes/fraud', auth, route);
    expect(put.status).toBe(200);
    const got = await admin('GET', '/routes/fraud', auth);
    expect(got.status).toBe(200);
    expect(JSON.parse(got.text)).toMatchObject(route);
    // A refused route is still a 400 behind the token, naming the field.
    const bad = await admin('PUT', '/routes/fraud', auth, {
      variants: [{ name: 'v1', endpoints: [], weight: 'x' }],
    });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('variants[0].weight');
    // Inference through the front door needs no admin token (the upstream is down: 502/503/504).
    const infer = await fetch(`${router!.url}/v2/models/fraud/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 1], data: [1] }] }),
    });
    expect(infer.status).toBeGreaterThanOrEqual(500);
    await infer.text();
    const del = await admin('DELETE', '/routes/fraud', auth);
    expect(del.status).toBe(200);
  });

  it('never writes the token to the log', () => {
    // Something was logged (start, route set), so the check below is not vacuous.
    expect(lines.some((l) => l.includes('route set'))).toBe(true);
    expect(lines.some((l) => l.includes('router listening'))).toBe(true);
    for (const line of lines) expect(line).not.toContain(token);
  });
});
