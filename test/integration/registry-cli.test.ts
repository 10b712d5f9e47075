/**
 * The registry as separate processes use it: the compiled `runway registry` CLI, and several
 * processes writing the same model at once without losing or duplicating a version.
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { compiled, projectRoot, runwayBin } from '../../common/paths';
import { FileRegistry } from '../../registry/file';

const run = promisify(execFile);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-registry-int-'));
const env: NodeJS.ProcessEnv = {
  ...process.env,
  RUNWAY_HOME: path.join(tmp, 'home'),
  RUNWAY_LOG_LEVEL: 'warn',
};
delete env.RUNWAY_REGISTRY;
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A copy of a demo model: `push` refuses anything onnxruntime cannot load. */
function artifact(name: string, demoVersion: number): string {
  const file = path.join(tmp, name);
  fs.copyFileSync(path.join(projectRoot, 'demo', 'models', `fraud-v${demoVersion}.onnx`), file);
  return file;
}

async function runway(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(process.execPath, [runwayBin, ...args], { env, timeout: 30_000 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code?: number; stdout?: string; stderr?: string }) => ({
      code: e.code ?? -1,
      stdout: e.stdout ?? '',
      stderr: e.stderr ?? '',
    }),
  );
}

/** A process that pushes `count` distinct artifacts (or one fixed version) as fast as it can. */
function pusher(
  root: string,
  tag: string,
  count: number,
  version?: string,
): Promise<{ code: number; out: string }> {
  const script = `
    const { FileRegistry } = require(${JSON.stringify(compiled('registry/file.ts'))});
    const fs = require('node:fs');
    (async () => {
      const reg = new FileRegistry(${JSON.stringify(root)});
      for (let i = 0; i < ${count}; i++) {
        const f = ${JSON.stringify(tmp)} + '/' + ${JSON.stringify(tag)} + '-' + i + '.onnx';
        fs.writeFileSync(f, ${JSON.stringify(tag)} + ' bytes ' + i);
        const v = await reg.push('fraud', f, { pushedBy: ${JSON.stringify(tag)}${version ? `, version: ${JSON.stringify(version)}` : ''} });
        process.stdout.write(v.version + '\\n');
      }
    })().catch((e) => { process.stdout.write('ERR ' + e.message + '\\n'); process.exit(3); });`;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', script], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => resolve({ code: code ?? -1, out }));
  });
}

describe('runway registry CLI', () => {
  it('is built (npm run build)', () => {
    expect(fs.existsSync(compiled('cli/commands/registry.ts')), 'run `npm run build` first').toBe(true);
  });

  it('pushes, lists, aliases, records status and verifies in the default registry under RUNWAY_HOME', async () => {
    const a = artifact('cli-a.onnx', 1);
    const b = artifact('cli-b.onnx', 2);
    const p1 = await runway([
      'registry',
      'push',
      'fraud-detector',
      a,
      '--metadata',
      'commit=abc123',
      '--metadata',
      'pipeline=https://ci/1?x=y',
      '--source',
      'train-42',
    ]);
    expect(p1.stderr).toBe('');
    expect(p1.stdout).toMatch(/^fraud-detector version 1 {2}sha256:[0-9a-f]{64}/);
    const p2 = await runway(['registry', 'push', 'fraud-detector', b, '--version', '2', '--json']);
    const pushed = JSON.parse(p2.stdout) as { version: string; artifactPath: string };
    expect(pushed.version).toBe('2');
    expect(pushed.artifactPath.startsWith(path.join(tmp, 'home', 'registry'))).toBe(true);

    const clash = await runway(['registry', 'push', 'fraud-detector', a, '--version', '2']);
    expect(clash.code).toBe(1);
    expect(clash.stderr).toMatch(
      /fraud-detector version 2 already exists with different bytes: registered sha256 [0-9a-f]{64}, pushed .*cli-a\.onnx has sha256 [0-9a-f]{64}/,
    );

    expect((await runway(['registry', 'alias', 'fraud-detector', 'production', '1'])).code).toBe(0);
    expect((await runway(['registry', 'alias', 'fraud-detector', 'staging', '2'])).code).toBe(0);
    expect(
      (await runway(['registry', 'status', 'fraud-detector', '2', 'rejected', '--reason', 'error rate 4%']))
        .code,
    ).toBe(0);
    const bad = await runway(['registry', 'alias', 'fraud-detector', 'canary', '1']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/invalid alias "canary"/);

    const table = (await runway(['registry', 'list', 'fraud-detector'])).stdout.split('\n');
    expect(table[0]).toMatch(/^MODEL\s+VERSION\s+STATUS\s+ALIASES\s+SHA256\s+SIZE\s+PUSHED BY\s+PUSHED AT$/);
    expect(table[1]).toMatch(
      /^fraud-detector\s+1\s+candidate\s+production\s+[0-9a-f]{12}\s+369 B\s+\S+\s+\d{4}-/,
    );
    expect(table[2]).toMatch(/^fraud-detector\s+2\s+rejected \(error rate 4%\)\s+staging\s+[0-9a-f]{12}/);
    const json = JSON.parse((await runway(['registry', 'list', '--json'])).stdout) as {
      version: string;
      aliases: string[];
      metadata: Record<string, string>;
      source?: string;
    }[];
    expect(json[0]).toMatchObject({ version: '1', aliases: ['production'], source: 'train-42' });
    expect(json[0]!.metadata).toEqual({
      commit: 'abc123',
      pipeline: 'https://ci/1?x=y',
      // what onnxruntime found in the file, recorded at push
      'signature.inputs': 'features:FP32[-1,8]',
      'signature.outputs': 'score:FP32[-1,1]',
    });

    const ok = await runway(['registry', 'verify', 'fraud-detector', '1']);
    expect(ok.stdout).toMatch(/fraud-detector version 1: ok/);
    fs.chmodSync(pushed.artifactPath, 0o644);
    fs.appendFileSync(pushed.artifactPath, 'tampered');
    const tampered = await runway(['registry', 'verify', 'fraud-detector', '2']);
    expect(tampered.code).toBe(1);
    expect(tampered.stderr).toContain(pushed.artifactPath);
    expect(tampered.stderr).toMatch(
      /expected sha256 [0-9a-f]{64} \(734 bytes\), found sha256 [0-9a-f]{64} \(742 bytes\)/,
    );
  });

  it('--registry and RUNWAY_REGISTRY pick the directory', async () => {
    const dir = path.join(tmp, 'flag-registry');
    await runway(['registry', 'push', 'churn', artifact('churn.onnx', 3), '--registry', dir]);
    expect((await new FileRegistry(dir).list('churn')).map((v) => v.version)).toEqual(['1']);
    const listed = await run(process.execPath, [runwayBin, 'registry', 'list'], {
      env: { ...env, RUNWAY_REGISTRY: dir },
    });
    expect(listed.stdout).toMatch(/^churn\s+1\s+candidate/m);
  });
});

describe('concurrent writers', () => {
  it('three processes pushing the same model lose no version and never share one', async () => {
    const root = path.join(tmp, 'concurrent');
    const results = await Promise.all(['p1', 'p2', 'p3'].map((tag) => pusher(root, tag, 15)));
    for (const r of results) expect(r.code, r.out).toBe(0);
    const versions = await new FileRegistry(root).list('fraud');
    expect(versions).toHaveLength(45);
    expect(new Set(versions.map((v) => v.version)).size).toBe(45);
    expect(versions.map((v) => Number(v.version)).sort((x, y) => x - y)).toEqual(
      Array.from({ length: 45 }, (_, i) => i + 1),
    );
    for (const tag of ['p1', 'p2', 'p3']) expect(versions.filter((v) => v.pushedBy === tag)).toHaveLength(15);
    // What each process was told matches what was stored.
    for (const [i, r] of results.entries()) {
      const told = r.out.trim().split('\n').sort();
      const stored = versions
        .filter((v) => v.pushedBy === `p${i + 1}`)
        .map((v) => v.version)
        .sort();
      expect(told).toEqual(stored);
    }
  });

  it('racing pushes of different bytes to one version: exactly one wins, the others are refused', async () => {
    const root = path.join(tmp, 'race');
    const results = await Promise.all(['r1', 'r2', 'r3'].map((tag) => pusher(root, tag, 1, '9')));
    const winners = results.filter((r) => r.code === 0);
    expect(winners).toHaveLength(1);
    for (const r of results.filter((x) => x.code !== 0)) {
      expect(r.out).toMatch(/ERR fraud version 9 already exists with different bytes/);
    }
    const versions = await new FileRegistry(root).list('fraud');
    expect(versions).toHaveLength(1);
    await new FileRegistry(root).verify('fraud', '9');
  });
});
