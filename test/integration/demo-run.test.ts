/**
 * The README's main job, as a user runs it: `runway demo` without a terminal promotes v2 over v1
 * through every step, the experiment included, on a fresh embedded platform, and exits 0.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runwayBin } from '../../common/paths';

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-demo-'));
afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

function runDemo(): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [runwayBin, 'demo'], {
      env: { ...process.env, RUNWAY_HOME: home, TEMPORAL_ADDRESS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGTERM'), 280_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe('runway demo', () => {
  it('promotes fraud-detector v2 over v1 through every step and exits 0', { timeout: 300_000 }, async () => {
    const { code, out } = await runDemo();
    expect(out).toMatch(/approving automatically as demo-approver/);
    for (const stage of ['evaluate', 'approve', 'shadow', 'canary', 'experiment', 'done']) {
      expect(out, `progress shows ${stage}`).toMatch(new RegExp(`\\[fraud-detector v2\\]  ${stage}`));
    }
    expect(out).toMatch(/outcome: promoted/);
    expect(code, out.slice(-3000)).toBe(0);
    // the state stays for `runway up` / `runway status`, and nothing is left running
    expect(fs.existsSync(path.join(home, 'temporal', 'temporal.db'))).toBe(true);
    const registry = fs.readdirSync(path.join(home, 'registry', 'models'));
    expect(registry).toEqual(['fraud-detector']);
    const fleetState = fs.readdirSync(path.join(home, 'fleet')).filter((f) => f.endsWith('.json'));
    expect(fleetState).toEqual([]);
  });
});
