/**
 * `runway up` after the demo, as a newcomer meets it: the demo (or a reboot) stopped the model
 * servers, the routes still name them. `up` brings every routed variant back from the registry
 * before its router takes traffic, says loudly which one it cannot bring back and why, and keeps
 * the ports the demo printed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../common/log';
import { runwayBin } from '../../common/paths';
import { sigkillAndWait } from '../../common/process';
import { LocalFleet } from '../../serving/fleet/local';
import { loadSpecFile } from '../../specs/load';
import { loadPlatformConfig } from '../../workers/config';
import { serveAtFull, startPlatform } from '../../workers/platform';
import { stopDevServer } from '../../workers/temporal-server';
import { MODELS_DIR } from '../helpers/promotion';

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-up-'));
const fleet = new LocalFleet({ dir: path.join(home, 'fleet') });
let up: ChildProcess | undefined;

afterAll(async () => {
  if (up && up.exitCode === null) {
    const exited = new Promise((r) => up!.once('exit', r));
    up.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
    if (up.exitCode === null) up.kill('SIGKILL');
  }
  for (const d of await fleet.list()) await fleet.teardown(d.name).catch(() => {});
  await stopDevServer(path.join(home, 'temporal')).catch(() => {});
  fs.rmSync(home, { recursive: true, force: true });
});

/** Holds a port (when free) so the platform's first start must take another one. */
async function hold(port: number): Promise<net.Server | undefined> {
  const srv = net.createServer();
  return new Promise((resolve) => {
    srv.once('error', () => resolve(undefined));
    srv.listen(port, '127.0.0.1', () => resolve(srv));
  });
}

function infer(routerUrl: string, model: string): Promise<Response> {
  return fetch(`${routerUrl}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      inputs: [
        { name: 'features', datatype: 'FP32', shape: [1, 8], data: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8] },
      ],
    }),
    signal: AbortSignal.timeout(10_000),
  });
}

describe('runway up after the demo', () => {
  it(
    'brings routed model servers back (sha256 checked), fails loud for one that cannot come back, keeps the ports',
    { timeout: 240_000 },
    async () => {
      process.env.RUNWAY_HOME = home;
      const config = loadPlatformConfig({ file: null, env: { RUNWAY_HOME: home } });
      const { spec } = loadSpecFile(path.join(__dirname, '../../specs/examples/fraud-detector.yaml'));
      // The demo's defaults (7233, 8233, 8080) held elsewhere: the first start picks other ports.
      const held = await Promise.all([7233, 8233, 8080].map(hold));
      const demo = await startPlatform({ config, worker: false, logger: createLogger('test-demo') });
      const ports = { ui: demo.temporal.uiUrl, temporal: demo.temporal.address, router: demo.router.url };
      try {
        // Artifacts are stored by digest: each model's v2 has bytes of its own, so one can be changed.
        for (const [model, file] of [
          ['fd-up-ok', 'fraud-v2.onnx'],
          ['fd-up-tampered', 'fraud-v3.onnx'],
        ] as const) {
          await demo.deps.registry.push(model, path.join(MODELS_DIR, 'fraud-v1.onnx'), { version: '1' });
          await demo.deps.registry.push(model, path.join(MODELS_DIR, file), { version: '2' });
          await serveAtFull(demo.deps, { ...spec, name: model }, '2');
          expect((await infer(demo.router.url, model)).status).toBe(200);
        }
      } finally {
        await demo.stop();
        await Promise.all(held.map((s) => new Promise((r) => (s ? s.close(r) : r(undefined)))));
      }
      // The model servers die (the demo's teardown, a reboot); one artifact is changed on disk.
      for (const name of fleet.store.names())
        for (const pid of fleet.trackedPids(name)) await sigkillAndWait(pid);
      const tampered = (await demo.deps.registry.get('fd-up-tampered', '2'))!.artifactPath;
      fs.chmodSync(tampered, 0o644);
      fs.appendFileSync(tampered, Buffer.from([0]));

      up = spawn(process.execPath, [runwayBin, 'up'], {
        env: { ...process.env, RUNWAY_HOME: home, TEMPORAL_ADDRESS: '', RUNWAY_LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      up.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      up.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      const deadline = Date.now() + 180_000;
      while (!/worker: +polling/.test(out)) {
        if (up.exitCode !== null) throw new Error(`runway up exited ${up.exitCode}:\n${out}\n${err}`);
        if (Date.now() > deadline) throw new Error(`runway up did not come up:\n${out}\n${err}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      const router = /router: +(http:\/\/\S+)/.exec(out)![1]!;
      // the links the first start printed are still true
      expect(router).toBe(ports.router);
      expect(out).toContain(`Temporal:    ${ports.temporal}`);
      expect(out).toContain(`Temporal UI: ${ports.ui}`);

      expect(out, err).toContain('brought back: fd-up-ok-v2-production');
      const ok = await infer(router, 'fd-up-ok');
      expect(ok.status, await ok.clone().text()).toBe(200);
      expect(((await ok.json()) as { model_version?: string }).model_version).toBe('2');
      for (let i = 0; i < 20; i++) expect((await infer(router, 'fd-up-ok')).status).toBe(200);

      // the one that cannot come back is named with its version and the reason
      expect(err).toMatch(/ERROR fd-up-tampered v2 \(100% of its route\) cannot be served: .*sha256/);
      expect(err).toMatch(/runway rollback fd-up-tampered --to VERSION/);
      expect((await infer(router, 'fd-up-tampered')).status).toBeGreaterThanOrEqual(500);
    },
  );

  it(
    'a second start that finds the router running repairs its routes through the admin API',
    { timeout: 120_000 },
    async () => {
      expect(up?.exitCode, 'runway up from the test above still runs').toBeNull();
      const before = fleet.trackedPids('fd-up-ok-v2-production');
      for (const pid of before) await sigkillAndWait(pid);
      const config = loadPlatformConfig({ file: null, env: { RUNWAY_HOME: home } });
      const again = await startPlatform({ config, worker: false, logger: createLogger('test-again') });
      try {
        expect(again.router.mode).toBe('reused');
        expect(again.routes.restarted).toContain('fd-up-ok-v2-production');
        const route = await again.deps.router.getRoute('fd-up-ok');
        const live = await fleet.get('fd-up-ok-v2-production');
        expect(route?.variants[0]?.endpoints).toEqual(live?.endpoints);
        const res = await infer(again.router.url, 'fd-up-ok');
        expect(res.status, await res.clone().text()).toBe(200);
        expect(fleet.trackedPids('fd-up-ok-v2-production')).not.toEqual(before);
      } finally {
        await again.stop();
      }
    },
  );
});
