/**
 * `npm run demo:models` as CI runs it: the compiled generator as a process, writing to --out and
 * printing its timing check; a bad argument exits non-zero with the argument named.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { compiled } from '../../common/paths';

const run = promisify(execFile);
const script = compiled('demo/generate.ts');
const out = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-demo-cli-'));

afterAll(() => fs.rmSync(out, { recursive: true, force: true }));

describe('demo model generator CLI', () => {
  it('is built (npm run build)', () => {
    expect(fs.existsSync(script), `${script} missing: run \`npm run build\` first`).toBe(true);
  });

  it('writes the models to --out and prints the measured timings', async () => {
    const started = Date.now();
    const { stderr } = await run(process.execPath, [script, '--out', out], { timeout: 60_000 });
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(stderr).toMatch(/timing \(one thread\).*v4Slowdown=\d/);
    expect(stderr).toMatch(/demo models ready/);
    const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')) as {
      models: { file: string }[];
    };
    expect(manifest.models).toHaveLength(6);
    for (const m of manifest.models) expect(fs.existsSync(path.join(out, m.file)), m.file).toBe(true);
  });

  it('rejects an unknown argument', async () => {
    const err = await run(process.execPath, [script, '--bogus'], { timeout: 30_000 }).then(
      () => undefined,
      (e: { code?: number; stderr?: string }) => e,
    );
    expect(err?.code).toBe(1);
    expect(err?.stderr).toMatch(/unknown argument .*--bogus/);
  });
});
