/**
 * The `mlflow` registry against a real MLflow tracking server (basic-auth app, SQLite store,
 * proxied artifacts): push through `runway registry push`, aliases and status tags, a version
 * registered by MLflow's own Python client (digest recorded at first sight, lineage to its run),
 * a tampered artifact refused, the cache bound, and refused credentials.
 */
import { execFile } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ApplicationFailure } from '@temporalio/activity';
import { afterAll, describe, expect, it } from 'vitest';
import { registryActivities } from '../../activities/registry';
import type { ActivityDeps } from '../../activities/deps';
import { createLogger } from '../../common/log';
import { projectRoot, runwayBin } from '../../common/paths';
import { digestFile } from '../../registry/digest';
import { MlflowRegistry } from '../../registry/mlflow';
import { MLFLOW_PYTHON, useMlflow } from '../helpers/mlflow';
import { MODELS_DIR } from '../helpers/promotion';

const run = promisify(execFile);
const mlflow = useMlflow({ auth: true });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-mlflow-int-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const model = (v: number): string => path.join(MODELS_DIR, `fraud-v${v}.onnx`);

function registry(
  cache = 'cache',
  over: Partial<ConstructorParameters<typeof MlflowRegistry>[0]> = {},
): MlflowRegistry {
  return new MlflowRegistry({
    trackingUri: mlflow.server.url,
    ...mlflow.server.credentials,
    cacheDir: path.join(tmp, cache),
    cacheMaxBytes: 1024 ** 3,
    ...over,
  });
}

async function runway(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const full: NodeJS.ProcessEnv = {
    ...process.env,
    RUNWAY_HOME: path.join(tmp, 'home'),
    RUNWAY_LOG_LEVEL: 'warn',
    RUNWAY_REGISTRY_DRIVER: 'mlflow',
    MLFLOW_TRACKING_URI: mlflow.server.url,
    MLFLOW_TRACKING_USERNAME: mlflow.server.credentials!.username,
    MLFLOW_TRACKING_PASSWORD: mlflow.server.credentials!.password,
    ...env,
  };
  delete full.RUNWAY_REGISTRY;
  return run(process.execPath, [runwayBin, ...args], { env: full, timeout: 60_000 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code?: number; stdout?: string; stderr?: string }) => ({
      code: e.code ?? -1,
      stdout: e.stdout ?? '',
      stderr: e.stderr ?? '',
    }),
  );
}

/** The version's tags as MLflow itself reports them. */
async function tagsOf(name: string, version: string): Promise<Record<string, string>> {
  const r = registry();
  const raw = await r.client.call<{ model_version: { tags?: { key: string; value: string }[] } }>(
    'GET',
    'model-versions/get',
    { query: { name, version } },
  );
  return Object.fromEntries((raw.model_version.tags ?? []).map((t) => [t.key, t.value]));
}

describe('mlflow registry', () => {
  it(
    'runway registry push registers ONNX files as versions, records signature and digest, refuses non-ONNX',
    { timeout: 120_000 },
    async () => {
      const p1 = await runway([
        'registry',
        'push',
        'fd-cli',
        model(1),
        '--version',
        '1',
        '--metadata',
        'commit=abc123',
      ]);
      expect(p1.stderr).toBe('');
      expect(p1.code).toBe(0);
      expect(p1.stdout).toMatch(/^fd-cli version 1 {2}sha256:[0-9a-f]{64}/);
      // a spec whose signature differs: pushed, with a warning naming the difference
      const spec = path.join(tmp, 'wide.yaml');
      fs.writeFileSync(
        spec,
        fs
          .readFileSync(path.join(projectRoot, 'specs', 'examples', 'fraud-detector.yaml'), 'utf8')
          .replace(/shape: \[-1, 8\]/, 'shape: [-1, 16]'),
      );
      const p2 = await runway(['registry', 'push', 'fd-cli', model(2), '--spec', spec]);
      expect(p2.code, p2.stderr).toBe(0);
      expect(p2.stderr).toContain('input features: spec says shape [-1,16], model has [-1,8]');

      const bogus = path.join(tmp, 'not-a-model.onnx');
      fs.writeFileSync(bogus, 'these are not the bytes of an ONNX model');
      const bad = await runway(['registry', 'push', 'fd-cli', bogus]);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain(`${bogus} is not a loadable ONNX model`);
      // the same refusal on the file driver
      const badFile = await runway([
        'registry',
        'push',
        'fd-cli',
        bogus,
        '--registry',
        path.join(tmp, 'file-reg'),
      ]);
      expect(badFile.code).toBe(1);
      expect(badFile.stderr).toContain(`${bogus} is not a loadable ONNX model`);

      const listed = await runway(['registry', 'list', 'fd-cli', '--json']);
      expect(listed.code, listed.stderr).toBe(0);
      const versions = JSON.parse(listed.stdout) as {
        version: string;
        sha256: string;
        metadata: Record<string, string>;
      }[];
      expect(versions.map((v) => v.version)).toEqual(['1', '2']);
      expect(versions[0]!.sha256).toBe((await digestFile(model(1))).sha256);
      expect(versions[0]!.metadata).toMatchObject({
        commit: 'abc123',
        'signature.inputs': 'features:FP32[-1,8]',
        'signature.outputs': 'score:FP32[-1,1]',
      });
      const tags = await tagsOf('fd-cli', '1');
      expect(tags['runway.sha256']).toBe(versions[0]!.sha256);

      // MLflow numbers versions itself: asking for a gap is refused before anything is created
      const gap = await runway(['registry', 'push', 'fd-cli', model(3), '--version', '7']);
      expect(gap.code).toBe(1);
      expect(gap.stderr).toContain('the next one is 3, not 7');
      // a second push of the same bytes is that version, not a new one
      const again = await runway(['registry', 'push', 'fd-cli', model(1)]);
      expect(again.stdout).toMatch(/^fd-cli version 1 /);
    },
  );

  it('moves aliases and records runway status as version tags', { timeout: 60_000 }, async () => {
    const r = registry();
    await r.push('fd-alias', model(1));
    await r.push('fd-alias', model(2));
    await r.setAlias('fd-alias', 'production', '1');
    await r.setAlias('fd-alias', 'staging', '2');
    expect(await r.aliases('fd-alias')).toEqual({ production: '1', staging: '2' });
    await r.setAlias('fd-alias', 'production', '2');
    await r.setAlias('fd-alias', 'previous', '1');
    await r.setAlias('fd-alias', 'staging', undefined);
    await r.setAlias('fd-alias', 'staging', undefined); // removing an absent alias is a no-op
    expect(await r.aliases('fd-alias')).toEqual({ production: '2', previous: '1' });
    expect((await r.resolveAlias('fd-alias', 'production'))?.version).toBe('2');

    await r.setStatus('fd-alias', '1', 'rejected', 'evaluation failed: auc 0.71 < 0.8');
    const v1 = await r.get('fd-alias', '1');
    expect(v1).toMatchObject({ status: 'rejected', statusReason: 'evaluation failed: auc 0.71 < 0.8' });
    const tags = await tagsOf('fd-alias', '1');
    expect(tags).toMatchObject({
      'runway.status': 'rejected',
      'runway.reason': 'evaluation failed: auc 0.71 < 0.8',
    });
    await r.setStatus('fd-alias', '1', 'archived');
    expect((await tagsOf('fd-alias', '1'))['runway.reason']).toBeUndefined();
    expect(await r.get('fd-alias', '9')).toBeUndefined();
  });

  it(
    "a version from MLflow's own client: digest recorded at first sight, lineage to its run, tampering refused after",
    { timeout: 180_000 },
    async () => {
      const { stdout } = await run(
        MLFLOW_PYTHON,
        [
          path.join(projectRoot, 'test', 'python', 'mlflow_register.py'),
          mlflow.server.url,
          'fd-trained',
          model(2),
        ],
        {
          env: {
            ...process.env,
            MLFLOW_TRACKING_USERNAME: mlflow.server.credentials!.username,
            MLFLOW_TRACKING_PASSWORD: mlflow.server.credentials!.password,
          },
          timeout: 120_000,
        },
      );
      const registered = JSON.parse(stdout.trim().split('\n').pop()!) as {
        run_id: string;
        version: string;
        source: string;
      };
      expect(registered.source).toMatch(/^mlflow-artifacts:/);
      const r = registry('cache-a');
      const before = await r.get('fd-trained', registered.version);
      expect(before?.sha256, 'no digest before runway saw it').toBe('');
      expect(before?.runId).toBe(registered.run_id);

      const seen = await r.verify('fd-trained', registered.version);
      const expected = await digestFile(model(2));
      expect(seen.sha256).toBe(expected.sha256);
      expect(fs.readFileSync(seen.artifactPath).equals(fs.readFileSync(model(2)))).toBe(true);
      expect((await tagsOf('fd-trained', registered.version))['runway.sha256']).toBe(expected.sha256);

      const lineage = await r.lineage('fd-trained', registered.version);
      expect(lineage).toMatchObject({
        runId: registered.run_id,
        runName: 'train-fd-trained',
        gitCommit: '0a1b2c3d4e5f',
        params: { learning_rate: '0.05', trees: '200' },
        metrics: { val_auc: 0.91 },
      });
      expect(lineage?.datasets).toEqual([
        expect.objectContaining({ name: 'fraud-2026-11', context: 'training', sourceType: 's3' }),
      ]);
      expect(lineage?.runUrl).toBe(
        `${mlflow.server.url}/#/experiments/${lineage?.experimentId}/runs/${registered.run_id}`,
      );

      // someone rewrites the artifact in MLflow's store: another host (empty cache) refuses it
      const stored = path.join(
        mlflow.server.artifactsDir,
        registered.source.replace(/^mlflow-artifacts:\/+/, ''),
      );
      expect(fs.existsSync(stored), stored).toBe(true);
      fs.appendFileSync(stored, Buffer.from('a backdoor'));
      const other = registry('cache-b');
      await expect(other.verify('fd-trained', registered.version)).rejects.toThrow(
        new RegExp(
          `modified after runway recorded its digest: expected sha256 ${expected.sha256} .*found sha256 [0-9a-f]{64}`,
        ),
      );
      expect(fs.readdirSync(path.join(tmp, 'cache-b', 'sha256'))).toEqual([]);
      // the host that verified it before serves its verified copy, and a damaged copy is re-fetched
      expect((await r.verify('fd-trained', registered.version)).sha256).toBe(expected.sha256);
    },
  );

  it(
    'reads and writes a local file: artifact store, verified the same way',
    { timeout: 60_000 },
    async () => {
      const r = registry('cache-local');
      const store = path.join(tmp, 'local-store');
      const exp = await r.client.call<{ experiment_id: string }>('POST', 'experiments/create', {
        body: { name: 'local-store', artifact_location: `file://${store}` },
      });
      const created = await r.client.call<{ run: { info: { run_id: string; artifact_uri: string } } }>(
        'POST',
        'runs/create',
        { body: { experiment_id: exp.experiment_id, run_name: 'train-local', start_time: Date.now() } },
      );
      expect(created.run.info.artifact_uri).toMatch(/^file:\/\//);
      const pushed = await r.push('fd-local', model(3), { runId: created.run.info.run_id });
      expect(pushed.source).toMatch(/^file:\/\/.*\/model\.onnx$/);
      expect(pushed.runId).toBe(created.run.info.run_id);
      const stored = new URL(pushed.source!).pathname;
      expect(fs.readFileSync(stored).equals(fs.readFileSync(model(3)))).toBe(true);
      expect((await r.verify('fd-local', pushed.version)).sha256).toBe((await digestFile(model(3))).sha256);
      fs.appendFileSync(stored, 'x');
      await expect(registry('cache-local-2').verify('fd-local', pushed.version)).rejects.toThrow(
        /modified after runway recorded its digest/,
      );
    },
  );

  it(
    'keeps the artifact cache within its bound, least recently used out first',
    { timeout: 60_000 },
    async () => {
      // room for the two most recent of the three (the demo models differ in size)
      const bound = fs.statSync(model(2)).size + fs.statSync(model(3)).size;
      const r = registry('cache-small', { cacheMaxBytes: bound });
      for (const v of [1, 2, 3]) await r.push('fd-cache', model(v));
      const paths: string[] = [];
      for (const v of ['1', '2', '3']) {
        paths.push((await r.verify('fd-cache', v)).artifactPath);
        await new Promise((res) => setTimeout(res, 20)); // distinct mtimes
      }
      expect(paths.map((p) => fs.existsSync(p))).toEqual([false, true, true]);
      // an evicted version is downloaded and verified again
      expect(fs.existsSync((await r.verify('fd-cache', '1')).artifactPath)).toBe(true);
    },
  );

  it(
    'refuses bad credentials with a message naming the settings, and the activity does not retry it',
    { timeout: 60_000 },
    async () => {
      const bad = registry('cache-bad', { password: 'not-the-password' });
      await expect(bad.list('fd-alias')).rejects.toThrow(
        /refused runway's credentials .*401.*registry\.mlflow\.username\/password/,
      );
      const none = registry('cache-none', { username: undefined, password: undefined });
      await expect(none.aliases('fd-alias')).rejects.toThrow(
        /wants credentials: set registry\.mlflow\.username/,
      );

      const deps = { registry: bad, logger: createLogger('test') } as unknown as ActivityDeps;
      const err = await registryActivities(deps)
        .prepareCandidate({ model: 'fd-alias', version: '2' })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(err).toBeInstanceOf(ApplicationFailure);
      expect((err as ApplicationFailure).nonRetryable).toBe(true);
      expect((err as ApplicationFailure).type).toBe('RegistryAuthRefused');

      const cli = await runway(['registry', 'list'], { MLFLOW_TRACKING_PASSWORD: 'wrong' });
      expect(cli.code).toBe(1);
      expect(cli.stderr).toContain("refused runway's credentials");
      expect(cli.stderr).not.toContain(mlflow.server.credentials!.password);
    },
  );

  it(
    'sends a bearer token through an authenticating proxy; a bad token is refused the same way',
    { timeout: 60_000 },
    async () => {
      // A gateway in front of MLflow, as some teams run it: it checks the bearer token and
      // forwards with the server's own credentials.
      const { username, password } = mlflow.server.credentials!;
      const upstream = new URL(mlflow.server.url);
      const proxy = http.createServer((req, res) => {
        if (req.headers.authorization !== 'Bearer team-token') {
          res.writeHead(401, { 'content-type': 'text/plain' }).end('bad token');
          return;
        }
        const headers = { ...req.headers, host: upstream.host };
        headers.authorization = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
        const out = http.request(
          { host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers },
          (up) => {
            res.writeHead(up.statusCode ?? 502, up.headers);
            up.pipe(res);
          },
        );
        out.on('error', () => res.writeHead(502).end());
        req.pipe(out);
      });
      await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
      const url = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
      try {
        const viaProxy = registry('cache-proxy', {
          trackingUri: url,
          username: undefined,
          password: undefined,
          token: 'team-token',
        });
        const pushed = await viaProxy.push('fd-proxy', model(1));
        expect((await viaProxy.verify('fd-proxy', pushed.version)).sha256).toBe(
          (await digestFile(model(1))).sha256,
        );
        const wrong = registry('cache-proxy-bad', {
          trackingUri: url,
          username: undefined,
          password: undefined,
          token: 'stolen',
        });
        await expect(wrong.list('fd-proxy')).rejects.toThrow(
          /refused runway's credentials .*\(401: bad token\).*or token/,
        );
      } finally {
        await new Promise((r) => proxy.close(r));
      }
    },
  );
});
