/**
 * The keyring signed decisions are verified against, where the platform config names it: a
 * malformed file stops `runway worker` at start, naming the entry; on Kubernetes a ConfigMap on a
 * real API server is read, a revocation written to it applies at the next verification without a
 * restart, and a missing or malformed one stops the worker with what is wrong.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { runwayBin } from '../../common/paths';
import { generateKeyPair, publicKeyText } from '../../common/signing';
import { parsePlatformConfig } from '../../workers/config';
import { keyringSource } from '../../workers/keyring';
import { createNamespace, requireK8s, startTestCluster, type TestCluster } from '../helpers/k8s';

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-keyring-'));
afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

const alice = publicKeyText(generateKeyPair().publicKey);
const bob = publicKeyText(generateKeyPair().publicKey);

/** `runway worker` on `config`; nothing listens on the Temporal address or the router it names. */
function worker(name: string, config: string): Promise<{ code: number | null; stderr: string }> {
  const file = path.join(home, `${name}.yaml`);
  fs.writeFileSync(file, config);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [runwayBin, 'worker'], {
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
const BASE = 'temporal: { address: 127.0.0.1:9 }\nrouter: { adminUrl: http://127.0.0.1:9, token: t }\n';

describe('runway worker and its keyring file', () => {
  it('a malformed entry stops the worker at start, naming it', { timeout: 90_000 }, async () => {
    const ring = path.join(home, 'keyring.bad.yaml');
    fs.writeFileSync(
      ring,
      YAML.stringify({
        keys: [
          { name: 'alice', publicKey: alice },
          { name: 'bob', publicKey: bob.slice(0, 20) },
        ],
      }),
    );
    const r = await worker('bad-ring', `${BASE}keyring: { file: ${ring} }\n`);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(
      `keyring ${ring}: keys[1] (bob): publicKey: expected 32 key bytes after "ed25519:"`,
    );
  });

  it('a keyring named twice, or a file that is not there', { timeout: 90_000 }, async () => {
    const both = await worker('both', `${BASE}keyring: { file: /x, configMap: runway-system/k }\n`);
    expect(both.code).not.toBe(0);
    expect(both.stderr).toMatch(/keyring: expected keyring\.file .* or keyring\.configMap .*, one of them/);
    const missing = await worker('missing', `${BASE}keyring: { file: ${path.join(home, 'nope.yaml')} }\n`);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/keyring .*nope\.yaml: cannot read it/);
  });
});

const { bins, skipReason } = requireK8s();

describe.skipIf(!!skipReason)('a keyring in a ConfigMap on a real API server', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await startTestCluster(bins!, { apiOnly: true });
    await createNamespace(cluster, 'runway-system', false);
  }, 180_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  const putKeyring = async (keys: unknown[]) => {
    const body = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'runway-keyring', namespace: 'runway-system' },
      data: { 'keyring.yaml': YAML.stringify({ keys }) },
    };
    const put = await cluster.api('PUT', '/api/v1/namespaces/runway-system/configmaps/runway-keyring', body);
    if (put.status === 404) await cluster.api('POST', '/api/v1/namespaces/runway-system/configmaps', body);
  };

  it(
    'is read as the platform config names it, and a revocation applies at the next read',
    { timeout: 120_000 },
    async () => {
      await putKeyring([
        { name: 'alice', publicKey: alice },
        { name: 'bob', publicKey: bob },
      ]);
      const config = parsePlatformConfig({
        fleet: { kubeconfig: cluster.kubeconfig },
        keyring: { configMap: 'runway-system/runway-keyring' },
      });
      const source = keyringSource(config)!;
      expect(source.location).toBe('ConfigMap runway-system/runway-keyring (data key keyring.yaml)');
      const first = await source.load();
      expect(first.entries.map((e) => [e.name, e.revoked])).toEqual([
        ['alice', undefined],
        ['bob', undefined],
      ]);
      await putKeyring([
        { name: 'alice', publicKey: alice, revoked: '2026-12-01T10:00:00Z' },
        { name: 'bob', publicKey: bob },
      ]);
      expect((await source.load()).entries[0]?.revoked).toBe('2026-12-01T10:00:00.000Z');
      await putKeyring([{ name: 'alice', publicKey: alice, revoked: 'never' }]);
      await expect(source.load()).rejects.toThrow(/keys\[0\] \(alice\): revoked: expected a date/);
    },
  );

  it('a ConfigMap that is not there stops the worker at start', { timeout: 90_000 }, async () => {
    const r = await worker(
      'absent-cm',
      `${BASE}fleet: { kubeconfig: ${cluster.kubeconfig} }\nkeyring: { configMap: runway-system/absent }\n`,
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(
      /keyring ConfigMap runway-system\/absent \(data key keyring\.yaml\): no such ConfigMap/,
    );
  });
});
