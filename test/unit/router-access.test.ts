/**
 * The front door's pure parts: the keys file's validation, token buckets on a test clock, and
 * the gate's order of checks (which limit is charged when one refuses). The HTTP and gRPC paths
 * on real processes are in test/integration/router-api-keys.test.ts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AccessGate, presentedKey } from '../../serving/router/access';
import { ApiKeysError, hashKey, parseApiKeys } from '../../serving/router/api-keys';
import { RouterMetrics } from '../../serving/router/metrics';
import { Buckets, TokenBucket } from '../../serving/router/rate-limit';
import { parsePlatformConfig } from '../../workers/config';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-access-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const quiet = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };
const h = (k: string): string => hashKey(k);

describe('API keys file', () => {
  it('names the field at fault', () => {
    const bad = (doc: unknown): string => {
      try {
        parseApiKeys(doc, 'keys.yaml');
      } catch (err) {
        expect(err).toBeInstanceOf(ApiKeysError);
        return (err as Error).message;
      }
      throw new Error('accepted');
    };
    expect(bad({})).toMatch(/keys: /);
    expect(bad({ keys: [{ id: 'a', sha256: 'abc', models: ['m'] }] })).toMatch(
      /keys\.0\.sha256: expected the key's SHA-256/,
    );
    expect(bad({ keys: [{ id: 'a b', sha256: h('x'), models: ['m'] }] })).toMatch(
      /keys\.0\.id: expected a key id/,
    );
    expect(bad({ keys: [{ id: 'a', sha256: h('x'), models: ['m/1'] }] })).toMatch(
      /keys\.0\.models\.0: expected a model name or "\*"/,
    );
    expect(bad({ keys: [{ id: 'a', sha256: h('x'), models: ['m'], rateLimit: { perSecond: 0 } }] })).toMatch(
      /keys\.0\.rateLimit\.perSecond: expected a number of requests per second > 0/,
    );
    expect(bad({ keys: [{ id: 'a', sha256: h('x'), models: ['m'], extra: 1 }] })).toMatch(/keys\.0: .*extra/);
    expect(
      bad({
        keys: [
          { id: 'a', sha256: h('x'), models: ['m'] },
          { id: 'a', sha256: h('y'), models: ['m'] },
        ],
      }),
    ).toMatch(/keys\.1\.id: "a" appears twice/);
    expect(
      bad({
        keys: [
          { id: 'a', sha256: h('x'), models: ['m'] },
          { id: 'b', sha256: h('x').toUpperCase(), models: ['m'] },
        ],
      }),
    ).toMatch(/keys\.1\.sha256: the same key as "a"/);
    expect(bad({ keys: [], models: { m: { rateLimit: { perSecond: 1, burst: 0 } } } })).toMatch(
      /models\.m\.rateLimit\.burst/,
    );
  });

  it('defaults a burst to one second of requests, at least one', () => {
    const keys = parseApiKeys(
      {
        keys: [{ id: 'a', sha256: h('x'), models: ['*'], rateLimit: { perSecond: 2.5 } }],
        models: { m: { rateLimit: { perSecond: 0.1 } } },
      },
      'f',
    );
    expect(keys.byHash.get(h('x'))?.rateLimit).toEqual({ perSecond: 2.5, burst: 3 });
    expect(keys.modelLimits.get('m')).toEqual({ perSecond: 0.1, burst: 1 });
  });

  it('reads the key from Authorization: Bearer, else x-api-key', () => {
    expect(presentedKey('Bearer abc', undefined)).toBe('abc');
    expect(presentedKey('bearer  abc ', 'def')).toBe('abc');
    expect(presentedKey('Basic abc', 'def')).toBe('def');
    expect(presentedKey(undefined, '  ')).toBeUndefined();
    expect(presentedKey('Bearer ', undefined)).toBeUndefined();
  });
});

describe('token bucket', () => {
  it('lets a burst through, then refills at the rate', () => {
    const b = new TokenBucket({ perSecond: 2, burst: 3 }, 0);
    for (let i = 0; i < 3; i++) {
      expect(b.wait(0)).toBe(0);
      b.take();
    }
    expect(b.wait(0)).toBeCloseTo(0.5);
    expect(b.wait(250)).toBeCloseTo(0.25);
    expect(b.wait(500)).toBe(0);
    b.take();
    // A long quiet spell refills to the burst, no further.
    b.wait(60_000);
    for (let i = 0; i < 3; i++) b.take();
    expect(b.wait(60_000)).toBeGreaterThan(0);
  });

  it('keeps a level across a sync with the same limit, starts a changed one full', () => {
    const buckets = new Buckets();
    buckets.sync(new Map([['a', { perSecond: 1, burst: 1 }]]), 0);
    buckets.get('a')!.take();
    buckets.sync(new Map([['a', { perSecond: 1, burst: 1 }]]), 0);
    expect(buckets.get('a')!.wait(0)).toBeGreaterThan(0);
    buckets.sync(new Map([['a', { perSecond: 1, burst: 2 }]]), 0);
    expect(buckets.get('a')!.wait(0)).toBe(0);
    buckets.sync(new Map(), 0);
    expect(buckets.get('a')).toBeUndefined();
  });
});

describe('access gate', () => {
  async function gate(
    doc: string,
  ): Promise<{ gate: AccessGate; now: { t: number }; metrics: RouterMetrics }> {
    const file = path.join(tmp, `keys-${Math.random().toString(36).slice(2)}.yaml`);
    fs.writeFileSync(file, doc);
    const now = { t: 0 };
    const metrics = new RouterMetrics();
    const g = await AccessGate.open({ file, metrics, log: quiet, clock: () => now.t });
    return { gate: g, now, metrics };
  }

  it('checks key, model, then both limits; a refusal by one limit charges neither', async () => {
    const { gate: g, now } = await gate(
      [
        'keys:',
        `  - { id: a, sha256: ${h('ka')}, models: [m, n], rateLimit: { perSecond: 1, burst: 2 } }`,
        `  - { id: b, sha256: ${h('kb')}, models: ['*'] }`,
        'models:',
        '  m: { rateLimit: { perSecond: 1, burst: 1 } }',
      ].join('\n'),
    );
    expect(g.admit(undefined, 'm', true)).toMatchObject({ ok: false, status: 401, outcome: 'missing_key' });
    expect(g.admit('nope', 'm', true)).toMatchObject({ ok: false, status: 401, outcome: 'unknown_key' });
    expect(g.admit('ka', 'x', true)).toMatchObject({ ok: false, status: 403, outcome: 'forbidden' });
    // Allowed but unrouted: passes (the router answers 404) and charges nothing.
    expect(g.admit('ka', 'n', false)).toEqual({ ok: true, keyId: 'a' });

    expect(g.admit('ka', 'm', true)).toEqual({ ok: true, keyId: 'a' }); // m's only token
    const byModel = g.admit('ka', 'm', true);
    expect(byModel).toMatchObject({ ok: false, status: 429, outcome: 'rate_limited_model', retryAfterS: 1 });
    // The model refused it, so key a still has its second token.
    expect(g.admit('ka', 'n', true)).toEqual({ ok: true, keyId: 'a' });
    const byKey = g.admit('ka', 'n', true);
    expect(byKey).toMatchObject({ ok: false, status: 429, outcome: 'rate_limited_key' });
    if (!byKey.ok)
      expect(byKey.message).toMatch(
        /API key "a" is over its rate limit \(1 requests\/s, burst 2\); retry in 1\.000 s/,
      );
    // b has no limit of its own, but meets m's.
    expect(g.admit('kb', 'm', true)).toMatchObject({ status: 429, outcome: 'rate_limited_model' });
    now.t = 1000;
    expect(g.admit('kb', 'm', true)).toEqual({ ok: true, keyId: 'b' });
    expect(g.admit('ka', 'n', true)).toEqual({ ok: true, keyId: 'a' });
  });

  it('keeps the keys in force when a reload fails', async () => {
    const file = path.join(tmp, 'reload.yaml');
    fs.writeFileSync(file, `keys:\n  - { id: a, sha256: ${h('ka')}, models: ['*'] }\n`);
    const metrics = new RouterMetrics();
    const g = await AccessGate.open({ file, metrics, log: quiet });
    fs.writeFileSync(file, 'keys: [');
    expect(await g.reload('test')).toBe(false);
    expect(g.admit('ka', 'm', true).ok).toBe(true);
    fs.writeFileSync(file, `keys:\n  - { id: b, sha256: ${h('kb')}, models: ['*'] }\n`);
    expect(await g.reload('test')).toBe(true);
    expect(g.admit('ka', 'm', true).ok).toBe(false);
    expect(g.admit('kb', 'm', true).ok).toBe(true);
    const reloads = await metrics.apiKeyReloads.get();
    expect(Object.fromEntries(reloads.values.map((v) => [v.labels.result, v.value]))).toEqual({
      loaded: 2,
      failed: 1,
    });
  });
});

describe('platform config: router.apiKeysFile', () => {
  it('is resolved, must be readable, and is refused beside an external router', () => {
    const file = path.join(tmp, 'platform-keys.yaml');
    fs.writeFileSync(file, 'keys: []\n');
    const cfg = parsePlatformConfig({ router: { apiKeysFile: path.relative(process.cwd(), file) } });
    expect(cfg.router.apiKeysFile).toBe(file);
    expect(() => parsePlatformConfig({ router: { apiKeysFile: path.join(tmp, 'missing.yaml') } })).toThrow(
      /router\.apiKeysFile: cannot read .*missing\.yaml: ENOENT/,
    );
    expect(() =>
      parsePlatformConfig({ router: { apiKeysFile: file, adminUrl: 'http://router.example:8080' } }),
    ).toThrow(/router\.apiKeysFile: .*read by the embedded router only/);
  });
});
