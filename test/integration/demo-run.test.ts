/**
 * The README's main job, as a user runs it: `runway demo` without a terminal promotes v2 over v1
 * through every step, the experiment included, on a fresh embedded platform, and exits 0. Then
 * the first hour after it: the commands it advises work as it says (`runway audit` with the
 * platform down; `runway up` brings production back on the ports the demo printed).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runwayBin } from '../../common/paths';
import { LocalFleet } from '../../serving/fleet/local';
import { stopDevServer } from '../../workers/temporal-server';

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-demo-'));
const env = { ...process.env, RUNWAY_HOME: home, TEMPORAL_ADDRESS: '' };
let up: ChildProcess | undefined;
afterAll(async () => {
  if (up && up.exitCode === null) {
    const exited = new Promise((r) => up!.once('exit', r));
    up.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
    if (up.exitCode === null) up.kill('SIGKILL');
  }
  // `runway up` leaves model servers running on purpose; the test does not.
  const fleet = new LocalFleet({ dir: path.join(home, 'fleet') });
  for (const d of await fleet.list()) await fleet.teardown(d.name).catch(() => {});
  await stopDevServer(path.join(home, 'temporal')).catch(() => {});
  fs.rmSync(home, { recursive: true, force: true });
});
let demoOut = '';

function runDemo(): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [runwayBin, 'demo'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGTERM'), 340_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe('runway demo', () => {
  it('promotes fraud-detector v2 over v1 through every step and exits 0', { timeout: 360_000 }, async () => {
    const { code, out } = await runDemo();
    expect(out).toMatch(/approving automatically as demo-approver/);
    // signed decisions, unattended: it makes its own keys and says so
    expect(out).toMatch(
      /signed decisions \(approval\.identity: signed\): generated DEMO keys for runway-demo, demo-approver/,
    );
    expect(fs.statSync(path.join(home, 'demo-keys', 'demo-approver.key')).mode & 0o777).toBe(0o600);
    for (const stage of ['evaluate', 'approve', 'shadow', 'canary', 'experiment', 'done']) {
      expect(out, `progress shows ${stage}`).toMatch(new RegExp(`\\[fraud-detector v2\\]  ${stage}`));
    }
    expect(out).toMatch(/outcome: promoted/);
    // then a short watch: steady at first, a drift alert naming f0 once the knob turns
    expect(out).toMatch(/watching v2 for 45s \(workflow watch:fraud-detector\)/);
    expect(out).toMatch(/turning the traffic generator's drift knob: feature f0 \+1\.5 SD/);
    expect(out).toMatch(/drift → notify: drift: f0 PSI/);
    expect(out).toMatch(/watch: completed — watched v2 for 45s: [1-9]\d* alerts \(0 pages\)/);
    expect(code, out.slice(-3000)).toBe(0);
    // with no prices configured the demo brings its own, and says what the promotion cost
    expect(out).toMatch(/prices: +the demo's/);
    expect(out).toMatch(
      /cost per 1,000 inferences at the last canary look: candidate v2 [\d.]+ \$\/1k at \d+% utilisation vs baseline v1 /,
    );
    expect(out).toMatch(
      /cost of this promotion: [\d.]+ replica-hours \(staging [\d.]+, shadow [\d.]+, canary [\d.]+, experiment [\d.]+\) = [\d.]+ \$ at 0\.045 \$\/replica-hour/,
    );
    // the state stays for `runway up` / `runway status`, and nothing is left running
    expect(fs.existsSync(path.join(home, 'temporal', 'temporal.db'))).toBe(true);
    const registry = fs.readdirSync(path.join(home, 'registry', 'models'));
    expect(registry).toEqual(['fraud-detector']);
    const fleetState = fs.readdirSync(path.join(home, 'fleet')).filter((f) => f.endsWith('.json'));
    expect(fleetState).toEqual([]);
    demoOut = out;
    // its closing advice names commands that do what it says
    expect(out).toMatch(
      /audit later with: npx runway audit fraud-detector +\(reads the saved history; no platform needed\)/,
    );
    expect(out).toMatch(
      /live view: npx runway up +\(brings production back\), then in another terminal: npx runway status fraud-detector/,
    );
    expect(out).not.toMatch(/audit later with: npx runway status/);
  });

  it('audit works with the platform down, as the demo says', { timeout: 120_000 }, () => {
    expect(demoOut, 'the demo ran').toMatch(/outcome: promoted/);
    const audit = spawnSync(process.execPath, [runwayBin, 'audit', 'fraud-detector'], {
      env,
      encoding: 'utf8',
      timeout: 110_000,
    });
    expect(audit.status, audit.stderr).toBe(0);
    expect(audit.stderr).toMatch(/platform not running; read its saved database/);
    expect(audit.stdout).toMatch(/promoted/);
    // the demo's signed start and approval verify against its keyring (the default one)
    expect(audit.stdout).toMatch(/start verified SHA256:\S+ \(runway-demo\)/);
    expect(audit.stdout).toMatch(
      /\| demo-approver \| [^|]* \| verified SHA256:\S+ \(demo-approver\) \| yes \|/,
    );
  });

  it(
    'runway up after the demo serves production again, on the ports the demo printed',
    { timeout: 180_000 },
    async () => {
      expect(demoOut, 'the demo ran').toMatch(/outcome: promoted/);
      up = spawn(process.execPath, [runwayBin, 'up'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      up.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      up.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      const deadline = Date.now() + 150_000;
      while (!/worker: +polling/.test(out)) {
        if (up.exitCode !== null || Date.now() > deadline)
          throw new Error(`runway up did not come up:\n${out}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      const router = /router: +(http:\/\/\S+)/.exec(out)![1]!;
      expect(demoOut).toContain(`router:      ${router}`);
      const ui = /Temporal UI: (http:\/\/\S+)/.exec(out)![1]!;
      expect(demoOut).toContain(`Temporal UI: ${ui}`);
      expect(out).toContain('brought back: fraud-detector-v2-production');
      for (let i = 0; i < 10; i++) {
        const res = await fetch(`${router}/v2/models/fraud-detector/infer`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 8], data: [0, 1, 0, 1, 0, 1, 0, 1] }],
          }),
        });
        expect(res.status, await res.clone().text()).toBe(200);
        expect(((await res.json()) as { model_version?: string }).model_version).toBe('2');
      }
    },
  );
});
