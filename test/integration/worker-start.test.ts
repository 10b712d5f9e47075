/**
 * `runway worker` refuses to start on a platform config it cannot run, before it connects to
 * anything, with the field and what was expected: an unknown choice, a half-configured one, or a
 * provider whose settings are missing; and `runway up` with a provider its embedded router cannot serve. (The gateway-api provider's start-up check against a real
 * API server without the CRDs is in k8s-routing.test.ts.)
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runwayBin } from '../../common/paths';

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-worker-start-'));
afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

/** Runs `runway worker` on `config` (YAML); nothing listens on the Temporal address it is given. */
function worker(
  name: string,
  config: string,
  command = 'worker',
): Promise<{ code: number | null; stderr: string }> {
  const file = path.join(home, `${name}.yaml`);
  fs.writeFileSync(file, config);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [runwayBin, command], {
      env: { PATH: process.env.PATH, HOME: home, RUNWAY_HOME: home, RUNWAY_CONFIG: file },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

describe('runway worker refuses a platform config it cannot run', () => {
  it('an unknown router, naming the field and the providers there are', { timeout: 90_000 }, async () => {
    const r = await worker('linkerd', 'temporal: { address: 127.0.0.1:9 }\nrouter: { driver: linkerd }\n');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(
      /router\.driver: Invalid option: expected one of "builtin"\|"configmap"\|"gateway-api"\|"istio"/,
    );
  });

  it('gateway-api without its settings', { timeout: 90_000 }, async () => {
    const r = await worker('gw', 'temporal: { address: 127.0.0.1:9 }\nrouter: { driver: gateway-api }\n');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(
      /router\.gatewayApi: router\.driver "gateway-api" needs router\.gatewayApi \{ namespace, parentRefs/,
    );
  });

  it('the builtin router with no admin URL to call', { timeout: 90_000 }, async () => {
    const r = await worker('builtin', 'temporal: { address: 127.0.0.1:9 }\n');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(
      /router\.adminUrl: router\.driver "builtin" calls the runway router's admin API/,
    );
  });

  it('`runway up` with a provider its own router cannot serve', { timeout: 90_000 }, async () => {
    const r = await worker(
      'up-gw',
      'router: { driver: gateway-api, gatewayApi: { namespace: m, parentRefs: [{ name: gw }] } }\n',
      'up',
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/the embedded platform runs its own router; router\.driver is "gateway-api"/);
  });
});
