/**
 * The local fleet against real `runway serve` processes and the demo models: deploy, idempotent
 * redeploy, no twins under concurrent deploys (two processes), scale, reattach after a controller
 * restart, replacement of dead replicas, artifact replacement, startup failures with their log,
 * abort, and teardown that leaves no process and no state.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compiled, projectRoot } from '../../common/paths';
import { DeployRefusedError, type DeploymentRequest } from '../../serving/fleet/driver';
import { LocalFleet } from '../../serving/fleet/local';
import { freePort } from '../../common/ports';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-fleet-int-'));
const home = path.join(tmp, 'home');
const fleetDir = path.join(home, 'fleet');
const models = path.join(projectRoot, 'demo', 'models');
// Artifacts live under tmp, so every replica's command line names tmp and afterAll can find strays.
const v1 = path.join(tmp, 'fraud-v1.onnx');
const v2 = path.join(tmp, 'fraud-v2.onnx');
const broken = path.join(tmp, 'broken.onnx');
const quiet = { ...process.env, RUNWAY_HOME: home, RUNWAY_LOG_LEVEL: 'warn' };

function newFleet(): LocalFleet {
  return new LocalFleet({
    dir: fleetDir,
    readyTimeoutMs: 60_000,
    stopGraceMs: 5_000,
    env: quiet,
    logger: silent,
  });
}
const silent = { debug() {}, info() {}, warn() {}, error() {}, child: () => silent };

const req = (model: string, replicas: number, artifactPath = v1): DeploymentRequest => ({
  model,
  version: '1',
  environment: 'staging',
  artifactPath,
  replicas,
  serving: { maxBatchSize: 8, preferredBatchSizes: [4, 8], maxQueueDelayMs: 1, instances: 1, threads: 1 },
});

/** Every live process on this host whose command line mentions `needle`. */
function processesWith(needle: string): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z') continue;
      if (cmd.includes('serve') && cmd.join(' ').includes(needle)) out.push(Number(entry));
    } catch {
      // Exited while we looked.
    }
  }
  return out.sort((a, b) => a - b);
}
const servers = (model: string): number[] => processesWith(`--name ${model} `);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
}

async function waitDead(pid: number, ms = 10_000): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until && alive(pid)) await new Promise((r) => setTimeout(r, 50));
  return !alive(pid);
}

async function infer(endpoint: string, model: string): Promise<number> {
  const res = await fetch(`${endpoint}/v2/models/${model}/versions/1/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      inputs: [{ name: 'features', shape: [1, 8], datatype: 'FP32', data: [0.5, 1, 0, 2, 0.1, 0, 1, 3] }],
    }),
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { outputs: { name: string; data: number[] }[] };
  expect(body.outputs[0]!.name).toBe('score');
  return body.outputs[0]!.data[0]!;
}

beforeAll(() => {
  for (const f of ['fraud-v1.onnx', 'fraud-v2.onnx']) {
    expect(
      fs.existsSync(path.join(models, f)),
      `demo/models/${f} missing: npm run build && npm run demo:models`,
    ).toBe(true);
  }
  expect(fs.existsSync(compiled('cli/commands/serve.ts')), 'dist missing: npm run build').toBe(true);
  fs.copyFileSync(path.join(models, 'fraud-v1.onnx'), v1);
  fs.copyFileSync(path.join(models, 'fraud-v2.onnx'), v2);
  fs.writeFileSync(broken, 'this is not an onnx model');
});

afterAll(async () => {
  // Whatever a failed test left behind: every server started from this file's temp dir.
  for (const pid of processesWith(tmp)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('local fleet', () => {
  it('deploys ready replicas that answer inference, and redeploying is a no-op', async () => {
    const fleet = newFleet();
    const progress: string[] = [];
    const d = await fleet.deploy(req('fleet-basic', 2), { onProgress: (m) => progress.push(m) });
    expect(d).toMatchObject({
      name: 'fleet-basic-v1-staging',
      model: 'fleet-basic',
      version: '1',
      environment: 'staging',
      replicas: 2,
      ready: true,
    });
    expect(d.endpoints).toHaveLength(2);
    expect(new Set(d.endpoints).size).toBe(2);
    for (const e of d.endpoints) {
      expect(e).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const score = await infer(e, 'fleet-basic');
      expect(score).toBeGreaterThanOrEqual(0);
      expect(score).toBeLessThanOrEqual(1);
    }
    expect(progress.some((m) => /starting 2 replica/.test(m))).toBe(true);
    const pids = fleet.trackedPids(d.name);
    expect(servers('fleet-basic')).toEqual([...pids].sort((a, b) => a - b));
    const state = JSON.parse(fs.readFileSync(path.join(fleetDir, `${d.name}.json`), 'utf8')) as {
      sha256: string;
      args: string[];
    };
    expect(state.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(state.args).toEqual(
      expect.arrayContaining([
        '--sha256',
        state.sha256,
        '--max-batch-size',
        '8',
        '--preferred-batch-sizes',
        '4,8',
      ]),
    );

    const again = await fleet.deploy(req('fleet-basic', 2));
    expect(again.endpoints).toEqual(d.endpoints);
    expect(fleet.trackedPids(d.name)).toEqual(pids);
    expect(servers('fleet-basic')).toHaveLength(2);
    expect(await fleet.get(d.name)).toMatchObject({ ready: true, endpoints: d.endpoints });
    expect((await fleet.list({ model: 'fleet-basic' })).map((x) => x.name)).toEqual([d.name]);
    expect(await fleet.list({ model: 'nobody' })).toEqual([]);

    await fleet.teardown(d.name);
    for (const pid of pids) expect(await waitDead(pid), `pid ${pid} still running`).toBe(true);
    expect(servers('fleet-basic')).toEqual([]);
    expect(fs.existsSync(path.join(fleetDir, `${d.name}.json`))).toBe(false);
    expect(await fleet.get(d.name)).toBeUndefined();
    await fleet.teardown(d.name); // Idempotent.
  });

  it('controllers deploying the same name at once (two processes, two instances) start no twins', async () => {
    // Everyone starts at the same instant, so the lock, not luck, keeps them apart.
    const startAt = Date.now() + 1_500;
    const script = `
      const { LocalFleet } = require(${JSON.stringify(compiled('serving/fleet/local.ts'))});
      const fleet = new LocalFleet({ dir: ${JSON.stringify(fleetDir)}, readyTimeoutMs: 60000 });
      while (Date.now() < ${startAt});
      fleet.deploy(${JSON.stringify(req('fleet-twins', 2))})
        .then((d) => process.stdout.write(JSON.stringify(d.endpoints)))
        .catch((e) => { process.stderr.write(String(e)); process.exit(3); });`;
    const other = new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn(process.execPath, ['-e', script], {
        env: quiet,
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout.on('data', (b: Buffer) => (out += b.toString()));
      child.on('exit', (code) => resolve({ code, out }));
    });
    await new Promise((r) => setTimeout(r, startAt - Date.now()));
    const mine = Promise.all([
      newFleet().deploy(req('fleet-twins', 2)),
      newFleet().deploy(req('fleet-twins', 2)),
    ]);
    const [theirs, [a, b]] = await Promise.all([other, mine]);
    expect(theirs.code).toBe(0);
    expect((JSON.parse(theirs.out) as string[]).sort()).toEqual([...a.endpoints].sort());
    expect(b.endpoints).toEqual(a.endpoints);
    expect(servers('fleet-twins')).toHaveLength(2);
    await newFleet().teardown(a.name);
    expect(servers('fleet-twins')).toEqual([]);
  });

  it('scales up and down; scaled-down replicas are stopped', async () => {
    const fleet = newFleet();
    const d = await fleet.deploy(req('fleet-scale', 1));
    const first = fleet.trackedPids(d.name);
    const up = await fleet.scale(d.name, 3);
    expect(up.endpoints).toHaveLength(3);
    expect(up.endpoints[0]).toBe(d.endpoints[0]);
    expect(servers('fleet-scale')).toHaveLength(3);
    for (const e of up.endpoints) await infer(e, 'fleet-scale');
    const three = fleet.trackedPids(d.name);
    const down = await fleet.scale(d.name, 1);
    expect(down.endpoints).toEqual([d.endpoints[0]]);
    expect(fleet.trackedPids(d.name)).toEqual(first);
    for (const pid of three.slice(1)) expect(await waitDead(pid)).toBe(true);
    expect(servers('fleet-scale')).toEqual(first);
    await expect(fleet.scale('fleet-nothing-v1-staging', 2)).rejects.toThrow(
      /cannot scale fleet-nothing-v1-staging: no such deployment/,
    );
    await expect(fleet.scale(d.name, -1)).rejects.toThrow(
      /replicas: expected an integer from 0 to 64, got -1/,
    );
    await fleet.teardown(d.name);
    expect(servers('fleet-scale')).toEqual([]);
  });

  it('a restarted controller reattaches to running replicas and replaces a killed one', async () => {
    const before = await newFleet().deploy(req('fleet-restart', 2));
    const pids = newFleet().trackedPids(before.name);
    // A new instance is what a restarted worker has: only the state on disk.
    const restarted = newFleet();
    expect(await restarted.get(before.name)).toMatchObject({ ready: true, endpoints: before.endpoints });
    const same = await restarted.deploy(req('fleet-restart', 2));
    expect(same.endpoints).toEqual(before.endpoints);
    expect(servers('fleet-restart')).toEqual([...pids].sort((a, b) => a - b));

    process.kill(pids[0]!, 'SIGKILL');
    expect(await waitDead(pids[0]!)).toBe(true);
    const partial = await newFleet().get(before.name);
    expect(partial).toMatchObject({ ready: false, endpoints: [before.endpoints[1]] });

    const healed = await newFleet().deploy(req('fleet-restart', 2));
    expect(healed.endpoints).toHaveLength(2);
    expect(healed.endpoints).toContain(before.endpoints[1]);
    const now = newFleet().trackedPids(before.name);
    expect(now).not.toContain(pids[0]);
    expect(now).toContain(pids[1]);
    expect(servers('fleet-restart')).toEqual([...now].sort((a, b) => a - b));

    // Same through scale: kill one, scale to the same count, the count is restored.
    process.kill(now[1]!, 'SIGKILL');
    expect(await waitDead(now[1]!)).toBe(true);
    const rescaled = await newFleet().scale(before.name, 2);
    expect(rescaled.endpoints).toHaveLength(2);
    expect(servers('fleet-restart')).toHaveLength(2);
    for (const e of rescaled.endpoints) await infer(e, 'fleet-restart');
    await newFleet().teardown(before.name);
    expect(servers('fleet-restart')).toEqual([]);
  });

  it('a controller killed mid-deploy leaves a stale lock and a starting replica; the next one adopts it', async () => {
    const script = `
      const { LocalFleet } = require(${JSON.stringify(compiled('serving/fleet/local.ts'))});
      new LocalFleet({ dir: ${JSON.stringify(fleetDir)}, readyTimeoutMs: 60000 }).deploy(${JSON.stringify(req('fleet-crash', 1))});`;
    const controller = spawn(process.execPath, ['-e', script], { env: quiet, stdio: 'ignore' });
    const stateFile = path.join(fleetDir, 'fleet-crash-v1-staging.json');
    const until = Date.now() + 20_000;
    while (!fs.existsSync(stateFile) && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    controller.kill('SIGKILL');
    await new Promise((r) => controller.once('exit', r));
    expect(fs.existsSync(path.join(fleetDir, 'fleet-crash-v1-staging.lock'))).toBe(true);
    const orphan = newFleet().trackedPids('fleet-crash-v1-staging');
    expect(orphan).toHaveLength(1);
    expect(alive(orphan[0]!)).toBe(true); // Detached: it outlived its controller.

    const d = await newFleet().deploy(req('fleet-crash', 1));
    expect(newFleet().trackedPids(d.name)).toEqual(orphan);
    expect(servers('fleet-crash')).toEqual(orphan);
    await infer(d.endpoints[0]!, 'fleet-crash');
    await newFleet().teardown(d.name);
    expect(await waitDead(orphan[0]!)).toBe(true);
  });

  it('a different artifact under the same name replaces the replicas', async () => {
    const fleet = newFleet();
    const d = await fleet.deploy(req('fleet-replace', 1, v1));
    const old = fleet.trackedPids(d.name);
    const scoreV1 = await infer(d.endpoints[0]!, 'fleet-replace');
    const r = await fleet.deploy(req('fleet-replace', 1, v2));
    expect(r.endpoints).toHaveLength(1);
    expect(await waitDead(old[0]!)).toBe(true);
    expect(servers('fleet-replace')).toEqual(fleet.trackedPids(d.name));
    expect(await infer(r.endpoints[0]!, 'fleet-replace')).not.toBeCloseTo(scoreV1, 6);
    await fleet.teardown(d.name);
  });

  it('a replica that dies during startup fails the deploy with its log, leaving nothing running', async () => {
    // A server that crashes at start (not a refusal of the artifact) might start on another try.
    const crashing = new LocalFleet({
      dir: fleetDir,
      readyTimeoutMs: 60_000,
      env: quiet,
      logger: silent,
      command: {
        file: process.execPath,
        args: ['-e', "console.error('simulated crash'); process.exit(1)", '--'],
      },
    });
    const err = (await crashing.deploy(req('fleet-crash', 2)).catch((e: Error) => e)) as Error;
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toMatch(
      /fleet-crash-v1-staging: replica on port \d+ \(pid \d+\) exited during startup \(exit code 1\); last lines of /,
    );
    expect(err.message).toContain('simulated crash'); // The server's own words follow.
    expect(err).not.toBeInstanceOf(DeployRefusedError);
    expect(await crashing.get('fleet-crash-v1-staging')).toBeUndefined();

    // Bytes that are not an ONNX model are refused: deploying them again cannot help.
    const fleet = newFleet();
    const refused = (await fleet.deploy(req('fleet-broken', 2, broken)).catch((e: Error) => e)) as Error;
    expect(refused).toBeInstanceOf(DeployRefusedError);
    expect(refused.message).toMatch(
      /fleet-broken-v1-staging: replica on port \d+ \(pid \d+\) exited during startup \(exit code 3\); last lines of /,
    );
    expect(refused.message).toContain(`${broken}: not a loadable ONNX model`);
    await new Promise((r) => setTimeout(r, 200));
    expect(servers('fleet-broken')).toEqual([]);
    expect(await fleet.get('fleet-broken-v1-staging')).toBeUndefined();
  });

  it('an artifact whose sha256 does not match is refused: a permanent failure, nothing left running', async () => {
    const fleet = newFleet();
    const err = (await fleet
      .deploy({ ...req('fleet-digest', 1), sha256: '0'.repeat(64) })
      .catch((e: Error) => e)) as Error;
    expect(err).toBeInstanceOf(DeployRefusedError);
    expect(err.message).toMatch(/exited during startup \(exit code 3\)/);
    expect(err.message).toMatch(/sha256 is [0-9a-f]{64}, expected 0{64}; refusing to load/);
    await new Promise((r) => setTimeout(r, 200));
    expect(servers('fleet-digest')).toEqual([]);
    expect(await fleet.get('fleet-digest-v1-staging')).toBeUndefined();
  });

  it('a failed replacement keeps the old version serving', async () => {
    const fleet = newFleet();
    const d = await fleet.deploy(req('fleet-keep', 1, v1));
    const old = fleet.trackedPids(d.name);
    await expect(fleet.deploy(req('fleet-keep', 1, broken))).rejects.toThrow(/exited during startup/);
    expect(fleet.trackedPids(d.name)).toEqual(old);
    expect(await fleet.get(d.name)).toMatchObject({ ready: true, endpoints: d.endpoints });
    await infer(d.endpoints[0]!, 'fleet-keep');
    await fleet.teardown(d.name);
    expect(await waitDead(old[0]!)).toBe(true);
  });

  it('abort stops what the deploy started', async () => {
    const fleet = newFleet();
    const ac = new AbortController();
    const started = fleet.deploy(req('fleet-abort', 2), {
      signal: ac.signal,
      onProgress: (m) => {
        if (/starting/.test(m)) setTimeout(() => ac.abort(new Error('cancelled by test')), 100);
      },
    });
    await expect(started).rejects.toThrow(/aborted while waiting for readiness \(cancelled by test\)/);
    await new Promise((r) => setTimeout(r, 200));
    expect(servers('fleet-abort')).toEqual([]);
  });

  it('a port taken between pick and bind is retried on another port', async () => {
    const squatter = net.createServer();
    await new Promise<void>((r) => squatter.listen(0, '127.0.0.1', r));
    const taken = (squatter.address() as net.AddressInfo).port;
    let picks = 0;
    const fleet = new LocalFleet({
      dir: fleetDir,
      readyTimeoutMs: 60_000,
      env: quiet,
      logger: silent,
      pickPort: (host) => (picks++ === 0 ? Promise.resolve(taken) : freePort(host)),
    });
    try {
      const d = await fleet.deploy(req('fleet-port', 1));
      expect(picks).toBe(2);
      expect(d.endpoints).toHaveLength(1);
      expect(d.endpoints[0]).not.toBe(`http://127.0.0.1:${taken}`);
      await infer(d.endpoints[0]!, 'fleet-port');
      const logs = fs.readdirSync(path.join(fleetDir, 'logs', d.name));
      const first = logs.find((f) => f.endsWith(`-${taken}.log`));
      expect(fs.readFileSync(path.join(fleetDir, 'logs', d.name, first!), 'utf8')).toMatch(/EADDRINUSE/);
      await fleet.teardown(d.name);
      expect(servers('fleet-port')).toEqual([]);
    } finally {
      squatter.close();
    }
  });

  it('refuses bad requests with the field named', async () => {
    const fleet = newFleet();
    await expect(fleet.deploy({ ...req('fleet-bad', 1), environment: 'qa' as 'staging' })).rejects.toThrow(
      /environment: expected one of staging, production, got "qa"/,
    );
    await expect(fleet.deploy(req('Fleet_Bad', 1))).rejects.toThrow(/invalid model name "Fleet_Bad"/);
    await expect(fleet.deploy(req('fleet-bad', 1.5))).rejects.toThrow(/replicas: expected an integer/);
    await expect(fleet.deploy(req('fleet-bad', 1, path.join(tmp, 'nope.onnx')))).rejects.toThrow(
      /artifactPath: .*nope\.onnx does not exist/,
    );
    await expect(
      fleet.deploy({ ...req('fleet-bad', 1), serving: { device: 'tpu' as 'cpu' } }),
    ).rejects.toThrow(/serving\.device: expected cpu or cuda/);
    expect(servers('fleet-bad')).toEqual([]);
  });
});
