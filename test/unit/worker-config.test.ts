import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadPlatformConfig, parsePlatformConfig, redacted } from '../../workers/config';
import { connectionOptionsFor } from '../../workers/temporal-server';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-config-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
function write(name: string, text: string): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, text);
  return file;
}

describe('platform configuration', () => {
  it('fills defaults: embedded Temporal, task queue runway, local fleet, scrape metrics, file registry', () => {
    const cfg = parsePlatformConfig({});
    expect(cfg.temporal).toEqual({ namespace: 'default' });
    expect(cfg.taskQueue).toBe('runway');
    expect(cfg.fleet.driver).toBe('local');
    expect(cfg.metrics.source).toBe('scrape');
    expect(cfg.registry.driver).toBe('file');
    expect(path.isAbsolute(cfg.registry.dir)).toBe(true);
  });

  it('reads YAML and lets the environment override it', () => {
    const file = write(
      'platform.yaml',
      [
        'temporal:',
        '  address: temporal.internal:7233',
        '  namespace: ml',
        'fleet:',
        '  driver: kubernetes',
        '  namespace: models',
        '  kubernetes: { image: runway:1, artifact: { kind: volume, claimName: registry } }',
        'router:',
        '  adminUrl: http://router:9901',
      ].join('\n'),
    );
    const cfg = loadPlatformConfig({
      file,
      env: {
        TEMPORAL_NAMESPACE: 'ml-staging',
        RUNWAY_METRICS_SOURCE: 'prometheus',
        RUNWAY_METRICS_URL: 'http://prom:9090',
      },
    });
    expect(cfg.temporal.address).toBe('temporal.internal:7233');
    expect(cfg.temporal.namespace).toBe('ml-staging');
    expect(cfg.fleet).toMatchObject({ driver: 'kubernetes', namespace: 'models' });
    expect(cfg.metrics).toEqual({ source: 'prometheus', url: 'http://prom:9090' });
    expect(cfg.sources[0]).toBe(file);
    expect(cfg.sources[1]).toMatch(/TEMPORAL_NAMESPACE/);
  });

  it('reads JSON too, and RUNWAY_CONFIG names the file', () => {
    const file = write('platform.json', JSON.stringify({ taskQueue: 'runway-blue' }));
    expect(loadPlatformConfig({ env: { RUNWAY_CONFIG: file } }).taskQueue).toBe('runway-blue');
  });

  it('names every bad field by its path and says what was expected', () => {
    let err: unknown;
    try {
      parsePlatformConfig({
        temporal: { address: 'no-port' },
        fleet: { driver: 'nomad' },
        metrics: { source: 'prometheus' },
        extra: 1,
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/temporal\.address: expected host:port/);
    expect(msg).toMatch(/fleet\.driver: .*local.*kubernetes/);
    expect(msg).toMatch(/metrics\.url: .*needs metrics\.url/);
    expect(msg).toMatch(/extra/);
  });

  it('reports unreadable and malformed files clearly', () => {
    expect(() => loadPlatformConfig({ file: path.join(tmp, 'missing.yaml'), env: {} })).toThrow(
      /cannot read platform config/,
    );
    const bad = write('bad.yaml', 'temporal: [unclosed');
    expect(() => loadPlatformConfig({ file: bad, env: {} })).toThrow(/not valid YAML/);
    const list = write('list.yaml', '- a\n- b\n');
    expect(() => loadPlatformConfig({ file: list, env: {} })).toThrow(/expected a mapping/);
  });

  it('reads tokens from files and never shows them in the redacted view', () => {
    const tokenFile = write('router-token', 's3cret-router\n');
    const keyFile = write('api-key', 'cloud-key');
    const cfg = parsePlatformConfig({
      router: { tokenFile },
      temporal: { address: 'ns.tmprl.cloud:7233', apiKeyFile: keyFile },
    });
    expect(cfg.router.token).toBe('s3cret-router');
    expect(cfg.temporal.apiKey).toBe('cloud-key');
    expect(cfg.temporal.tls).toBe(true); // API keys need TLS
    const shown = JSON.stringify(redacted(cfg));
    expect(shown).not.toContain('s3cret-router');
    expect(shown).not.toContain('cloud-key');
    expect(shown).toContain('[redacted]');
    expect(() => parsePlatformConfig({ router: { token: 'a', tokenFile } })).toThrow(
      /token or tokenFile, not both/,
    );
  });

  it('turns TEMPORAL_TLS_* into mTLS connection options', () => {
    const cert = write('client.pem', 'CERT');
    const key = write('client.key', 'KEY');
    const ca = write('ca.pem', 'CA');
    const cfg = loadPlatformConfig({
      file: null,
      env: {
        TEMPORAL_ADDRESS: 'temporal:7233',
        TEMPORAL_TLS_CERT: cert,
        TEMPORAL_TLS_KEY: key,
        TEMPORAL_TLS_CA: ca,
      },
    });
    const opts = connectionOptionsFor({ ...cfg.temporal, address: cfg.temporal.address! });
    expect(opts.address).toBe('temporal:7233');
    expect(typeof opts.tls).toBe('object');
    const tls = opts.tls as { clientCertPair: { crt: Buffer; key: Buffer }; serverRootCACertificate: Buffer };
    expect(tls.clientCertPair.crt.toString()).toBe('CERT');
    expect(tls.clientCertPair.key.toString()).toBe('KEY');
    expect(tls.serverRootCACertificate.toString()).toBe('CA');
    expect(() => loadPlatformConfig({ file: null, env: { TEMPORAL_TLS_CERT: cert } })).toThrow(
      /certFile and keyFile go together/,
    );
  });
});
