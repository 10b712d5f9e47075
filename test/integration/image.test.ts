/**
 * The container image, for real: built by scripts/image.sh (buildah, no registry), unpacked with
 * umoci as a container runtime would, then each of runway's roles started from the unpacked root
 * filesystem with `chroot` (no container can run here), as the image's user, with the image's
 * entrypoint and environment only. The host then sends an inference request through the router.
 * Image size and start-up time to ready are written to .runway/test-results/image.json.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../common/paths';

const BUILD_TIMEOUT_MS = 20 * 60_000;

/** Why this file cannot run here, or undefined. Under CI=true a missing tool fails the file. */
function unavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (umoci unpack and chroot)';
  for (const tool of ['buildah', 'umoci', 'chroot']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0)
      return `${tool} is missing (bash scripts/tools.sh image)`;
  }
  return undefined;
}
const missing = unavailable();
/** The host's chroot by absolute path: spawned with the image's PATH, it would not be found. */
const chroot = missing
  ? 'chroot'
  : execFileSync('sh', ['-c', 'command -v chroot'], { encoding: 'utf8' }).trim();
if (missing) {
  const reason = `IMAGE TESTS SKIPPED: ${missing}`;
  if (process.env.CI === 'true') throw new Error(`${reason} (CI=true: these tests must run)`);
  console.warn(`\n${'!'.repeat(100)}\n${reason}\n${'!'.repeat(100)}\n`);
}

interface Bundle {
  rootfs: string;
  /** The OCI runtime config umoci derived from the image config (what a runtime would run). */
  process: { args: string[]; env: string[]; user: { uid: number; gid: number } };
  annotations: Record<string, string>;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-image-'));
const children: ChildProcess[] = [];
let bundle: Bundle;
let imageInfo: { tag: string; compressedBytes: number; unpackedBytes: number; buildSeconds: number };
const report: Record<string, unknown> = {};

/** The image's environment, and nothing of the host's. */
function imageEnv(): Record<string, string> {
  return Object.fromEntries(
    bundle.process.env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
}

/** Runs an image role: `chroot --userspec=UID:GID rootfs ENTRYPOINT... args`, image env only. */
function startInImage(args: string[]): {
  child: ChildProcess;
  firstLine: Promise<string>;
  stderr: () => string;
} {
  const { uid, gid } = bundle.process.user;
  const entrypoint = bundle.process.args.slice(0, -1); // drop the image's default CMD (--help)
  // chroot execs tini, which is not PID 1 here: register it as the subreaper instead.
  const child = spawn(chroot, [`--userspec=${uid}:${gid}`, bundle.rootfs, ...entrypoint, ...args], {
    env: { ...imageEnv(), TINI_SUBREAPER: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const firstLine = new Promise<string>((resolve, reject) => {
    const rl = readline.createInterface({ input: child.stdout! });
    rl.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`${args[0]} exited ${code} before ready:\n${stderr}`)));
    child.once('error', reject);
  });
  return { child, firstLine, stderr: () => stderr };
}

async function stopChild(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
  const code = await exited;
  clearTimeout(t);
  return code;
}

async function untilReady(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const r = await request(url);
      await r.body.dump();
      if (r.statusCode === 200) return;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`${url} not ready after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  if (missing) return;
  const script = path.join(projectRoot, 'scripts/image.sh');
  // A no-op when scripts/test.sh (or an earlier run) already built these inputs.
  execFileSync('bash', [script], { stdio: ['ignore', 'ignore', 'inherit'], timeout: BUILD_TIMEOUT_MS });
  const ref = execFileSync('bash', [script, '--print'], { encoding: 'utf8' }).trim();
  imageInfo = JSON.parse(fs.readFileSync(path.join(path.dirname(ref.split(':')[0]!), 'image.json'), 'utf8'));
  const out = path.join(dir, 'bundle');
  execFileSync('umoci', ['unpack', '--image', ref, out], { stdio: 'ignore', timeout: 5 * 60_000 });
  const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
  bundle = {
    rootfs: path.join(out, 'rootfs'),
    process: config.process,
    annotations: config.annotations ?? {},
  };
  // The model a fleet would mount from the registry volume.
  fs.mkdirSync(path.join(bundle.rootfs, 'models'));
  fs.copyFileSync(
    path.join(projectRoot, 'demo/models/fraud-v1.onnx'),
    path.join(bundle.rootfs, 'models/fraud-v1.onnx'),
  );
}, BUILD_TIMEOUT_MS);

afterAll(async () => {
  await Promise.allSettled(children.map(stopChild));
  fs.rmSync(dir, { recursive: true, force: true });
  if (Object.keys(report).length) {
    const file = path.join(projectRoot, '.runway/test-results/image.json');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
    console.log(`image report (${file}): ${JSON.stringify(report)}`);
  }
});

describe.skipIf(missing)('the runway image', () => {
  it('runs as a non-root user under tini, with OCI labels, Node ≥ 20.19 and no dev dependencies', () => {
    expect(bundle.process.user.uid).toBe(65532);
    expect(bundle.process.user.gid).toBe(65532);
    expect(bundle.process.args.slice(0, 2)).toEqual(['/usr/bin/tini', '--']);
    const pkg = JSON.parse(fs.readFileSync(path.join(projectRoot, 'package.json'), 'utf8'));
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: projectRoot, encoding: 'utf8' }).trim();
    expect(bundle.annotations['org.opencontainers.image.version']).toBe(pkg.version);
    expect(bundle.annotations['org.opencontainers.image.revision']).toMatch(new RegExp(`^${head}(-dirty)?$`));
    expect(bundle.annotations['org.opencontainers.image.source']).toMatch(/\S/);
    // Production dependencies only: what the lock file marks dev-only is absent, the rest present.
    const lock = JSON.parse(fs.readFileSync(path.join(projectRoot, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean; optional?: boolean }>;
    };
    const app = path.join(bundle.rootfs, 'app');
    const devOnly = Object.entries(lock.packages).filter(([p, e]) => p && e.dev);
    expect(devOnly.length).toBeGreaterThan(50);
    for (const [p] of devOnly) expect(fs.existsSync(path.join(app, p)), p).toBe(false);
    for (const dep of Object.keys(pkg.dependencies))
      expect(fs.existsSync(path.join(app, 'node_modules', dep)), dep).toBe(true);
    // Node from the image, not the host's.
    const v = execFileSync(chroot, [bundle.rootfs, '/opt/node/bin/node', '--version'], {
      encoding: 'utf8',
      env: {},
    }).trim();
    const [major, minor] = v.slice(1).split('.').map(Number) as [number, number];
    expect(major > 20 || (major === 20 && minor >= 19), v).toBe(true);
    Object.assign(report, {
      tag: imageInfo.tag,
      node: v,
      compressedMiB: +(imageInfo.compressedBytes / 2 ** 20).toFixed(1),
      unpackedMiB: +(imageInfo.unpackedBytes / 2 ** 20).toFixed(1),
      lastBuildSeconds: imageInfo.buildSeconds,
    });
  });

  it('`runway worker --help` runs from inside', () => {
    const { uid, gid } = bundle.process.user;
    const r = spawnSync(
      chroot,
      [`--userspec=${uid}:${gid}`, bundle.rootfs, ...bundle.process.args.slice(0, -1), 'worker', '--help'],
      { encoding: 'utf8', env: { ...imageEnv(), TINI_SUBREAPER: '1' }, timeout: 60_000 },
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/Usage: runway worker/);
  });

  it('serves a model and routes to it; the host gets the right answer; SIGTERM drains through tini', async () => {
    const started = Date.now();
    const serve = startInImage([
      'serve', '--model', '/models/fraud-v1.onnx', '--name', 'fraud', '--version', '1',
      '--host', '127.0.0.1', '--port', '0',
    ]); // prettier-ignore
    const line = await serve.firstLine;
    const serverUrl = /ready at (http:\/\/\S+)/.exec(line)?.[1];
    expect(serverUrl, line).toBeDefined();
    await untilReady(`${serverUrl}/v2/health/ready`, 60_000);
    const serveReadyMs = Date.now() - started;

    // The router keeps its routes file in the image's writable state directory.
    const routes = path.join(bundle.rootfs, 'var/lib/runway/routes.json');
    fs.writeFileSync(
      routes,
      JSON.stringify({
        routes: { fraud: { variants: [{ name: 'v1', endpoints: [serverUrl], weight: 100 }] } },
      }),
    );
    fs.chownSync(routes, bundle.process.user.uid, bundle.process.user.gid);
    const routerStarted = Date.now();
    const router = startInImage(['router', '--port', '0', '--routes-file', '/var/lib/runway/routes.json']);
    const { url: routerUrl } = JSON.parse(await router.firstLine) as { url: string };
    await untilReady(`${routerUrl}/v2/health/ready`, 60_000);
    const routerReadyMs = Date.now() - routerStarted;

    const golden = JSON.parse(
      fs.readFileSync(path.join(projectRoot, 'demo/models/golden-v1.json'), 'utf8'),
    ) as {
      inputs: number[][];
      expected: number[][];
    };
    const rows = golden.inputs.slice(0, 4);
    const res = await request(`${routerUrl}/v2/models/fraud/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        inputs: [{ name: 'features', datatype: 'FP32', shape: [rows.length, 8], data: rows.flat() }],
      }),
    });
    const body = (await res.body.json()) as { outputs?: { data: number[] }[]; error?: string };
    expect(res.statusCode, JSON.stringify(body)).toBe(200);
    expect(res.headers['x-runway-variant']).toBe('v1');
    const got = body.outputs![0]!.data;
    const want = golden.expected.slice(0, 4).flat();
    expect(got).toHaveLength(want.length);
    got.forEach((g, i) => expect(g).toBeCloseTo(want[i]!, 5));

    // tini forwards SIGTERM; both drain and exit 0.
    expect(await stopChild(router.child), router.stderr()).toBe(0);
    expect(await stopChild(serve.child), serve.stderr()).toBe(0);
    expect(serve.stderr()).toMatch(/SIGTERM received, draining/);
    Object.assign(report, { serveReadyMs, routerReadyMs });
  }, 180_000);
});
