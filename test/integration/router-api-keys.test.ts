/**
 * The router's front door with API keys: a real `runway router` process (`--api-keys-file`,
 * `--grpc-port`) in front of two real `runway serve` processes (demo fraud model, onnxruntime).
 * HTTP and gRPC answer 401 / 403 / 429 (UNAUTHENTICATED / PERMISSION_DENIED / RESOURCE_EXHAUSTED)
 * with clear messages and Retry-After; limits are per key (shared by HTTP and gRPC) and per model;
 * the file is reread when it changes and on SIGHUP, and a broken file keeps the keys in force.
 * Last, everything the processes wrote (logs, /metrics, files) is searched for the raw keys.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot, runwayBin } from '../../common/paths';
import { createLogger } from '../../common/log';
import { hashKey } from '../../serving/router/api-keys';
import { loadPlatformConfig } from '../../workers/config';
import { ensureRouter } from '../../workers/platform';
import type { ModelInferResponse } from '../../serving/server/grpc-messages';
import { floatsOf, oipClient, rawFloats, type OipClient } from '../helpers/grpc';
import {
  closeAll,
  putRoute,
  spawnRouterProcess,
  startStubModelServer,
  type RouterProcess,
} from '../helpers/router';
import { startServe, type ServeProcess } from '../helpers/server';

const MODEL = path.join(projectRoot, 'demo/models/fraud-v1.onnx');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-api-keys-'));
const keysFile = path.join(dir, 'keys.yaml');
const routesFile = path.join(dir, 'routes.json');

// Raw keys as a client holds them; only their hashes go into the file.
const key = (): string => `rk_${randomBytes(24).toString('hex')}`;
const alpha = key(); // fraud only, no limit of its own
const beta = key(); // every model, 3 at once then one per 50 s (slow: a loaded box never refills it mid-test)
const gamma = key(); // every model, no limit of its own (meets the model limit)
const delta = key(); // added by a reload
const stray = key(); // never in the file
const rawKeys = [alpha, beta, gamma, delta, stray];

function keysYaml(withAlpha: boolean, withDelta: boolean): string {
  const entries = [
    withAlpha && `  - { id: alpha, sha256: ${hashKey(alpha)}, models: [fraud] }`,
    `  - id: beta\n    sha256: ${hashKey(beta)}\n    models: ['*']\n    rateLimit: { perSecond: 0.02, burst: 3 }`,
    `  - { id: gamma, sha256: ${hashKey(gamma)}, models: ['*'] }`,
    withDelta && `  - { id: delta, sha256: ${hashKey(delta)}, models: [fraud] }`,
  ].filter(Boolean);
  return `keys:\n${entries.join('\n')}\nmodels:\n  limited:\n    rateLimit: { perSecond: 0.02, burst: 2 }\n`;
}

let fraud: ServeProcess;
let limited: ServeProcess;
let router: RouterProcess;
let client: OipClient;
const bodies: string[] = []; // every answer's text, searched for keys at the end

const row = [0.1, -0.2, 0.3, 0.4, -0.5, 0.6, 0.7, -0.8];
const inferBody = JSON.stringify({
  inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 8], data: row }],
});

async function infer(
  model: string,
  headers: Record<string, string> = {},
): Promise<{
  status: number;
  headers: Record<string, unknown>;
  body: { error?: string; outputs?: unknown[] };
}> {
  const res = await request(`${router.url}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: inferBody,
  });
  const text = await res.body.text();
  bodies.push(text);
  return { status: res.statusCode, headers: res.headers, body: JSON.parse(text) as { error?: string } };
}

const bearer = (k: string): Record<string, string> => ({ authorization: `Bearer ${k}` });

const grpcInfer = (model: string, metadata: Record<string, string> = {}) =>
  client.call<ModelInferResponse>(
    'ModelInfer',
    {
      model_name: model,
      inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 8] }],
      raw_input_contents: [rawFloats(row)],
    },
    metadata,
  );

async function metricsText(): Promise<string> {
  const res = await request(`${router.url}/metrics`);
  return res.body.text();
}

/** The value of one series in the exposition text (0 when absent). */
function series(text: string, name: string, labels: Record<string, string>): number {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `)) return Number(line.split(' ').pop());
    if (!line.startsWith(`${name}{`)) continue;
    const inside = line.slice(name.length + 1, line.indexOf('}'));
    const have = new Map(
      inside.split(',').map((kv) => {
        const i = kv.indexOf('=');
        return [kv.slice(0, i), kv.slice(i + 2, -1)] as const;
      }),
    );
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) return Number(line.split(' ').pop());
  }
  return 0;
}

async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

beforeAll(async () => {
  fs.writeFileSync(keysFile, keysYaml(true, false));
  [fraud, limited] = await Promise.all([
    startServe(['--model', MODEL, '--name', 'fraud', '--grpc-port', '0']),
    startServe(['--model', MODEL, '--name', 'limited', '--grpc-port', '0']),
  ]);
  router = await spawnRouterProcess(
    ['--grpc-port', '0', '--routes-file', routesFile, '--api-keys-file', keysFile],
    { RUNWAY_LOG_LEVEL: 'debug' },
  );
  for (const [model, server] of [
    ['fraud', fraud],
    ['limited', limited],
    ['other', fraud], // routed, but alpha may not call it
  ] as const) {
    const r = await putRoute(router.url, model, {
      variants: [{ name: 'v1', endpoints: [server.url], weight: 100 }],
    });
    expect(r.status).toBe(200);
  }
  client = oipClient(router.grpc!);
}, 120_000);

afterAll(async () => {
  client?.close();
  await closeAll();
  await Promise.all([fraud?.stop(), limited?.stop()]);
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('router API keys over HTTP', () => {
  it('answers 401 without a key or with one it does not know', async () => {
    const none = await infer('fraud');
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="runway"');
    expect(none.body.error).toMatch(/needs an API key.*Authorization: Bearer <key>.*x-api-key/);
    const unknown = await infer('fraud', bearer(stray));
    expect(unknown.status).toBe(401);
    expect(unknown.body.error).toMatch(/not known to this router/);
    // Refused before routing: an unknown caller learns nothing about which models exist.
    expect((await infer('no-such-model', bearer(stray))).status).toBe(401);
  });

  it('answers a known key within its models, and 403 outside them', async () => {
    const ok = await infer('fraud', bearer(alpha));
    expect(ok.status).toBe(200);
    expect(ok.body.outputs?.length).toBeGreaterThan(0);
    const header = await infer('fraud', { 'x-api-key': alpha });
    expect(header.status).toBe(200);
    const forbidden = await infer('other', bearer(alpha));
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.error).toBe('API key "alpha" is not allowed to call model "other"');
    // Allowed, but no route: the router's own 404.
    expect((await infer('no-such-model', bearer(gamma))).status).toBe(404);
  });

  it('limits a key to its burst, then 429 with Retry-After', async () => {
    for (let i = 0; i < 3; i++) expect((await infer('fraud', bearer(beta))).status).toBe(200);
    const limitedAnswer = await infer('fraud', bearer(beta));
    expect(limitedAnswer.status).toBe(429);
    expect(limitedAnswer.body.error).toMatch(
      /API key "beta" is over its rate limit \(0.02 requests\/s, burst 3\)/,
    );
    const retry = Number(limitedAnswer.headers['retry-after']);
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(50);
    // The refusal cost the model's bucket nothing; another key still gets through at once.
    expect((await infer('fraud', bearer(gamma))).status).toBe(200);
  });

  it('never forwards the key to a replica', async () => {
    const stub = await startStubModelServer();
    expect(
      (
        await putRoute(router.url, 'stubbed', {
          variants: [{ name: 'v1', endpoints: [stub.url], weight: 100 }],
        })
      ).status,
    ).toBe(200);
    const r = await infer('stubbed', { ...bearer(gamma), 'x-api-key': gamma, 'x-team': 'checkout' });
    expect(r.status).toBe(200);
    expect(stub.received).toBe(1);
    expect(stub.lastHeaders?.['x-team']).toBe('checkout'); // other headers still pass
    expect(stub.lastHeaders?.authorization).toBeUndefined();
    expect(stub.lastHeaders?.['x-api-key']).toBeUndefined();
  });

  it('limits a model over all keys', async () => {
    expect((await infer('limited', bearer(gamma))).status).toBe(200);
    expect((await infer('limited', { 'x-api-key': gamma })).status).toBe(200);
    const third = await infer('limited', bearer(gamma));
    expect(third.status).toBe(429);
    expect(third.body.error).toMatch(/model "limited" is over its rate limit \(0.02 requests\/s, burst 2\)/);
    expect(Number(third.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // Other models are not affected.
    expect((await infer('fraud', bearer(gamma))).status).toBe(200);
  });
});

describe('router API keys over gRPC', () => {
  it('answers UNAUTHENTICATED, PERMISSION_DENIED and RESOURCE_EXHAUSTED like HTTP', async () => {
    const none = await grpcInfer('fraud');
    expect(none.ok).toBe(false);
    if (!none.ok) {
      expect(none.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(none.details).toMatch(/needs an API key/);
    }
    const unknown = await grpcInfer('fraud', bearer(stray));
    expect(!unknown.ok && unknown.code).toBe(grpc.status.UNAUTHENTICATED);

    const ok = await grpcInfer('fraud', bearer(alpha));
    expect(ok.ok).toBe(true);
    if (ok.ok) {
      expect(floatsOf(ok.value.raw_output_contents[0]!).length).toBeGreaterThan(0);
      expect(ok.metadata.get('x-runway-variant')).toEqual(['v1']);
    }
    expect((await grpcInfer('fraud', { 'x-api-key': alpha })).ok).toBe(true);

    const forbidden = await grpcInfer('other', bearer(alpha));
    expect(!forbidden.ok && forbidden.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(!forbidden.ok && forbidden.details).toBe('API key "alpha" is not allowed to call model "other"');

    // beta's bucket was emptied over HTTP: one bucket per key, whatever the protocol.
    const limitedCall = await grpcInfer('fraud', bearer(beta));
    expect(limitedCall.ok).toBe(false);
    if (!limitedCall.ok) {
      expect(limitedCall.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(limitedCall.details).toMatch(/API key "beta" is over its rate limit/);
      expect(Number(limitedCall.metadata.get('retry-after')[0])).toBeGreaterThanOrEqual(1);
    }
  });
});

describe('router API keys: metrics and reloads', () => {
  it('counts verdicts by key id and model', async () => {
    const text = await metricsText();
    const count = (labels: Record<string, string>): number =>
      series(text, 'runway_router_access_total', labels);
    expect(count({ key_id: 'alpha', model: 'fraud', outcome: 'accepted' })).toBe(4); // 2 HTTP + 2 gRPC
    expect(count({ key_id: 'alpha', model: 'other', outcome: 'forbidden' })).toBe(2);
    expect(count({ key_id: 'beta', model: 'fraud', outcome: 'rate_limited_key' })).toBe(2);
    expect(count({ key_id: 'gamma', model: 'limited', outcome: 'rate_limited_model' })).toBe(1);
    expect(count({ key_id: '', model: 'fraud', outcome: 'missing_key' })).toBe(2);
    expect(count({ key_id: '', model: '', outcome: 'unknown_key' })).toBe(1); // no-such-model: no label
    expect(series(text, 'runway_router_api_keys', {})).toBe(3);
    // Refusals never reach a variant, so they do not count against its SLO.
    expect(
      series(text, 'runway_router_requests_total', { model: 'other', variant: 'v1', code_class: '4xx' }),
    ).toBe(0);
  });

  it('rereads the file when it changes: a new key works, a removed one is refused', async () => {
    expect((await infer('fraud', bearer(delta))).status).toBe(401);
    fs.writeFileSync(`${keysFile}.tmp`, keysYaml(false, true));
    fs.renameSync(`${keysFile}.tmp`, keysFile); // how editors and kubelet replace a file
    await eventually(async () => (await infer('fraud', bearer(delta))).status === 200, 'the new key to work');
    expect((await infer('fraud', bearer(alpha))).status).toBe(401);
    // beta kept its (empty) bucket: a reload hands no one a fresh burst.
    expect((await infer('fraud', bearer(beta))).status).toBe(429);
  });

  it('keeps the keys in force when the new file is broken, and says why', async () => {
    const failedBefore = series(await metricsText(), 'runway_router_api_key_reloads_total', {
      result: 'failed',
    });
    // A slip that puts a raw key where its hash belongs: refused, and the key is not echoed.
    fs.writeFileSync(keysFile, `keys:\n  - { id: delta, sha256: ${delta}, models: [fraud] }\n`);
    await eventually(
      async () =>
        series(await metricsText(), 'runway_router_api_key_reloads_total', { result: 'failed' }) >
        failedBefore,
      'the broken file to be refused',
    );
    expect(router.stderr()).toMatch(/keys\.0\.sha256: expected the key's SHA-256 as 64 hex digits/);
    expect((await infer('fraud', bearer(delta))).status).toBe(200);
  });

  it('rereads the file on SIGHUP', async () => {
    fs.writeFileSync(keysFile, keysYaml(true, true));
    await eventually(async () => (await infer('fraud', bearer(alpha))).status === 200, 'alpha to be back');
    const loaded = (): Promise<number> =>
      metricsText().then((t) => series(t, 'runway_router_api_key_reloads_total', { result: 'loaded' }));
    const before = await loaded();
    router.child.kill('SIGHUP');
    await eventually(async () => (await loaded()) > before, 'a reload after SIGHUP');
    expect(router.stderr()).toMatch(/API keys reloaded\s+reason=SIGHUP/);
    expect(router.child.exitCode).toBeNull();
  });

  it('refuses to start on a broken file, naming the field', async () => {
    // Its own directory: this file holds a raw key on purpose, and the last test searches `dir`.
    const badDir = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-api-keys-bad-'));
    const bad = path.join(badDir, 'keys.yaml');
    fs.writeFileSync(bad, `keys:\n  - { id: x, sha256: ${stray}, models: [] }\n`);
    let message = '';
    try {
      await spawnRouterProcess(['--api-keys-file', bad]);
    } catch (err) {
      message = (err as Error).message;
    } finally {
      fs.rmSync(badDir, { recursive: true, force: true });
    }
    expect(message).toMatch(/router exited with 1/);
    expect(message).toMatch(/keys\.0\.sha256: expected the key's SHA-256 as 64 hex digits/);
    expect(message).toMatch(/keys\.0\.models: expected at least one model/);
    expect(message).not.toContain(stray);
  });

  it('never writes a raw key: logs, metrics, answers and files', async () => {
    const text = await metricsText();
    expect(text).toContain('key_id="alpha"'); // the search below looks where keys would show
    const written = fs
      .readdirSync(dir)
      .filter((f) => fs.statSync(path.join(dir, f)).isFile())
      .map((f) => fs.readFileSync(path.join(dir, f), 'utf8'));
    expect(written.join('\n')).toContain('"fraud"'); // the routes file is among them
    const haystacks = {
      'router log': router.stderr(),
      'fraud server log': fraud.stderr(),
      'limited server log': limited.stderr(),
      '/metrics': text,
      answers: bodies.join('\n'),
      files: written.join('\n'),
    };
    expect(router.stderr()).toMatch(/DEBUG/); // debug lines were on: nothing leaks at any level
    for (const [where, hay] of Object.entries(haystacks))
      for (const k of rawKeys) expect(hay.includes(k), `a raw key in ${where}`).toBe(false);
  });
});

describe('router.apiKeysFile in the platform config', () => {
  it('starts the embedded router with the keys, and will not reuse one started without them', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-api-keys-home-'));
    const previous = process.env.RUNWAY_HOME;
    process.env.RUNWAY_HOME = home;
    const quiet = createLogger('test', () => undefined);
    const stops: (() => Promise<void>)[] = [];
    try {
      const platformFile = path.join(home, 'platform.yaml');
      fs.writeFileSync(platformFile, `router:\n  apiKeysFile: ${keysFile}\n`);
      const config = loadPlatformConfig({ file: platformFile, env: {} });
      const embedded = await ensureRouter(config, 0, quiet);
      stops.push(embedded.stop);
      const ask = (headers: Record<string, string>) =>
        request(`${embedded.url}/v2/models/fraud/ready`, { headers }).then(async (r) => {
          await r.body.text();
          return r.statusCode;
        });
      expect(await ask({})).toBe(401);
      expect(await ask(bearer(stray))).toBe(401);
      expect(await ask(bearer(alpha))).toBe(404); // a known key; this router has no route yet
      // The same state directory without keys must not quietly reuse the locked router, nor the reverse.
      await expect(ensureRouter(loadPlatformConfig({ file: null, env: {} }), 0, quiet)).rejects.toThrow(
        /was started with API keys file .*keys\.yaml, but router\.apiKeysFile is unset: stop it/,
      );
      for (const stop of stops.splice(0)) await stop();
      const log = fs.readFileSync(path.join(home, 'router', 'router.log'), 'utf8');
      expect(log).toMatch(/API keys loaded/);
      for (const k of rawKeys) expect(log.includes(k), 'a raw key in the embedded router log').toBe(false);
    } finally {
      for (const stop of stops) await stop();
      if (previous === undefined) delete process.env.RUNWAY_HOME;
      else process.env.RUNWAY_HOME = previous;
      fs.rmSync(home, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('runway traffic behind the front door', () => {
  it('`runway traffic` sends the client key it is given, and says what is missing without one', async () => {
    const traffic = (extra: string[], env: Record<string, string> = {}) =>
      new Promise<{ code: number; out: string }>((resolve) => {
        execFile(
          process.execPath,
          [
            runwayBin,
            'traffic',
            'fraud',
            '--router',
            router.url,
            '--rps',
            '20',
            '--duration',
            '2s',
            ...extra,
          ],
          { env: { ...process.env, RUNWAY_LOG_LEVEL: 'warn', RUNWAY_API_KEY: '', ...env }, timeout: 60_000 },
          (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, out: stdout + stderr }),
        );
      });
    const without = await traffic([]);
    expect(without.code).not.toBe(0);
    expect(without.out).toMatch(/401=\d+/);
    expect(without.out).toContain('needs an API key allowed for fraud; give --api-key or set RUNWAY_API_KEY');
    const flag = await traffic(['--api-key', gamma]);
    expect(flag.code, flag.out).toBe(0);
    expect(flag.out).toMatch(/\(200=\d+\)/);
    const env = await traffic([], { RUNWAY_API_KEY: gamma });
    expect(env.code, env.out).toBe(0);
    // The key is never echoed back.
    for (const r of [without, flag, env]) expect(r.out).not.toContain(gamma);
  });
});
