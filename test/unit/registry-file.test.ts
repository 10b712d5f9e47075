/**
 * The file registry: content-addressed immutable artifacts, versions that never change bytes,
 * aliases, statuses with reasons, tamper detection, and errors that name what was wrong.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { FileRegistry, registryDir } from '../../registry/file';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-registry-unit-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

let n = 0;
let registry: FileRegistry;
function artifact(content: string): string {
  const file = path.join(tmp, `artifact-${n++}.onnx`);
  fs.writeFileSync(file, content);
  return file;
}
beforeEach(() => {
  registry = new FileRegistry(path.join(tmp, `reg-${n++}`));
});

describe('push', () => {
  it('stores the artifact read-only under its sha256 with lineage, versions counting up', async () => {
    const v1 = await registry.push('fraud', artifact('model one'), {
      metadata: { commit: 'abc123' },
      source: 'training-run-42',
      pushedBy: 'ci',
    });
    expect(v1).toMatchObject({
      model: 'fraud',
      version: '1',
      status: 'candidate',
      pushedBy: 'ci',
      source: 'training-run-42',
    });
    expect(v1.metadata).toEqual({ commit: 'abc123' });
    expect(v1.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(v1.artifactPath).toBe(path.join(registry.root, 'blobs', 'sha256', v1.sha256));
    expect(fs.readFileSync(v1.artifactPath, 'utf8')).toBe('model one');
    expect(fs.statSync(v1.artifactPath).mode & 0o222).toBe(0);
    expect(v1.size).toBe(9);
    expect(Date.parse(v1.createdAt)).toBeGreaterThan(Date.now() - 60_000);

    const v2 = await registry.push('fraud', artifact('model two'));
    expect(v2.version).toBe('2');
    expect(v2.pushedBy).toBe(os.userInfo().username);
    const v10 = await registry.push('fraud', artifact('model ten'), { version: '10' });
    expect(v10.version).toBe('10');
    expect((await registry.push('fraud', artifact('model eleven'))).version).toBe('11');
    expect((await registry.list('fraud')).map((v) => v.version)).toEqual(['1', '2', '10', '11']);
  });

  it('refuses different bytes for an existing version, naming both digests, and keeps the original', async () => {
    const first = await registry.push('fraud', artifact('original'), { version: '7' });
    const other = artifact('impostor');
    const err = await registry.push('fraud', other, { version: '7' }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    const msg = (err as Error).message;
    expect(msg).toContain(first.sha256);
    expect(msg).toMatch(/fraud version 7 already exists/);
    const otherSha = (await new FileRegistry(path.join(tmp, 'scratch')).push('x', other)).sha256;
    expect(msg).toContain(otherSha);
    expect(fs.readFileSync((await registry.get('fraud', '7'))!.artifactPath, 'utf8')).toBe('original');
  });

  it('treats the same bytes again as a no-op, with or without a version', async () => {
    const file = artifact('same bytes');
    const a = await registry.push('fraud', file, { version: '3', pushedBy: 'alice' });
    const b = await registry.push('fraud', file, { version: '3', pushedBy: 'bob' });
    const c = await registry.push('fraud', file);
    expect(b).toEqual(a);
    expect(c).toEqual(a);
    expect(await registry.list('fraud')).toHaveLength(1);
  });

  it('stores identical bytes once across models', async () => {
    const file = artifact('shared');
    const a = await registry.push('fraud', file);
    const b = await registry.push('churn', file);
    expect(a.artifactPath).toBe(b.artifactPath);
    expect(
      fs.readdirSync(path.join(registry.root, 'blobs', 'sha256')).filter((f) => !f.startsWith('.')),
    ).toHaveLength(1);
    expect((await registry.list()).map((v) => v.model)).toEqual(['churn', 'fraud']);
  });

  it('says clearly what is wrong with bad input', async () => {
    await expect(registry.push('Fraud_Detector', artifact('x'))).rejects.toThrow(
      /invalid model name "Fraud_Detector": expected 1-63 lowercase letters, digits or dashes/,
    );
    await expect(registry.push('-fraud', artifact('x'))).rejects.toThrow(/invalid model name/);
    await expect(registry.push('fraud', artifact('x'), { version: 'v 1' })).rejects.toThrow(
      /invalid version "v 1"/,
    );
    await expect(registry.push('fraud', path.join(tmp, 'missing.onnx'))).rejects.toThrow(
      /missing\.onnx does not exist/,
    );
    await expect(registry.push('fraud', artifact('x'), { metadata: { 'bad key': 'v' } })).rejects.toThrow(
      /invalid metadata key "bad key"/,
    );
    expect(await registry.list()).toEqual([]);
  });
});

describe('aliases and statuses', () => {
  it('moves aliases between existing versions and resolves them', async () => {
    await registry.push('fraud', artifact('a'));
    await registry.push('fraud', artifact('b'));
    await registry.setAlias('fraud', 'production', '1');
    await registry.setAlias('fraud', 'staging', '2');
    expect(await registry.aliases('fraud')).toEqual({ production: '1', staging: '2' });
    await registry.setAlias('fraud', 'previous', '1');
    await registry.setAlias('fraud', 'production', '2');
    expect((await registry.resolveAlias('fraud', 'production'))?.version).toBe('2');
    expect((await registry.resolveAlias('fraud', 'previous'))?.version).toBe('1');
    await registry.setAlias('fraud', 'staging', undefined);
    expect(await registry.resolveAlias('fraud', 'staging')).toBeUndefined();
    await expect(registry.setAlias('fraud', 'production', '9')).rejects.toThrow(
      /fraud version 9 is not in the registry \(known versions: 1, 2\)/,
    );
    // @ts-expect-error: a CLI or a JSON payload can carry any string
    await expect(registry.setAlias('fraud', 'canary', '1')).rejects.toThrow(
      /invalid alias "canary": expected one of staging, production, previous/,
    );
    expect((await registry.aliases('fraud')).production).toBe('2');
  });

  it('records statuses with reasons and when they changed', async () => {
    await registry.push('fraud', artifact('a'));
    await registry.setStatus('fraud', '1', 'rejected', 'p99 latency 180ms > 50ms at canary 5%');
    const v = await registry.get('fraud', '1');
    expect(v).toMatchObject({ status: 'rejected', statusReason: 'p99 latency 180ms > 50ms at canary 5%' });
    expect(Date.parse(v!.statusChangedAt!)).toBeGreaterThan(Date.now() - 60_000);
    await registry.setStatus('fraud', '1', 'archived');
    expect((await registry.get('fraud', '1'))?.statusReason).toBeUndefined();
    // @ts-expect-error: invalid on purpose
    await expect(registry.setStatus('fraud', '1', 'live')).rejects.toThrow(/invalid status "live"/);
    await expect(registry.setStatus('fraud', '2', 'production')).rejects.toThrow(
      /fraud version 2 is not in the registry/,
    );
  });

  it('answers undefined / empty for unknown models and versions', async () => {
    expect(await registry.get('nobody', '1')).toBeUndefined();
    expect(await registry.list('nobody')).toEqual([]);
    expect(await registry.aliases('nobody')).toEqual({});
    expect(await registry.resolveAlias('nobody', 'production')).toBeUndefined();
  });
});

describe('verify', () => {
  it('passes for intact artifacts and names path and both digests when bytes changed', async () => {
    const v = await registry.push('fraud', artifact('trusted bytes'));
    expect((await registry.verify('fraud', '1')).sha256).toBe(v.sha256);
    fs.chmodSync(v.artifactPath, 0o644);
    fs.writeFileSync(v.artifactPath, 'trusted byteZ');
    const err = (await registry.verify('fraud', '1').catch((e: Error) => e)) as Error;
    expect(err.message).toContain(v.artifactPath);
    expect(err.message).toContain(`expected sha256 ${v.sha256}`);
    expect(err.message).toMatch(/found sha256 [0-9a-f]{64}/);
    expect(err.message).not.toMatch(new RegExp(`found sha256 ${v.sha256}`));
  });

  it('a re-push of the true bytes repairs a damaged blob', async () => {
    const file = artifact('precious');
    const v = await registry.push('fraud', file);
    fs.chmodSync(v.artifactPath, 0o644);
    fs.writeFileSync(v.artifactPath, 'corrupt');
    await expect(registry.verify('fraud', '1')).rejects.toThrow(/was modified after push/);
    expect((await registry.push('fraud', file)).version).toBe('1');
    expect((await registry.verify('fraud', '1')).sha256).toBe(v.sha256);
    expect(fs.readFileSync(v.artifactPath, 'utf8')).toBe('precious');
  });

  it('reports a missing artifact and an unknown version', async () => {
    const v = await registry.push('fraud', artifact('soon gone'));
    fs.rmSync(v.artifactPath, { force: true });
    await expect(registry.verify('fraud', '1')).rejects.toThrow(/missing or unreadable at .*ENOENT/);
    await expect(registry.verify('fraud', '2')).rejects.toThrow(/fraud version 2 is not in the registry/);
  });
});

describe('location', () => {
  it('uses the explicit directory, then RUNWAY_REGISTRY, then the state dir', () => {
    const saved = { reg: process.env.RUNWAY_REGISTRY, home: process.env.RUNWAY_HOME };
    try {
      process.env.RUNWAY_HOME = path.join(tmp, 'home');
      delete process.env.RUNWAY_REGISTRY;
      expect(registryDir()).toBe(path.join(tmp, 'home', 'registry'));
      process.env.RUNWAY_REGISTRY = path.join(tmp, 'env-reg');
      expect(registryDir()).toBe(path.join(tmp, 'env-reg'));
      expect(registryDir(path.join(tmp, 'flag'))).toBe(path.join(tmp, 'flag'));
    } finally {
      if (saved.reg === undefined) delete process.env.RUNWAY_REGISTRY;
      else process.env.RUNWAY_REGISTRY = saved.reg;
      if (saved.home === undefined) delete process.env.RUNWAY_HOME;
      else process.env.RUNWAY_HOME = saved.home;
    }
  });
});
