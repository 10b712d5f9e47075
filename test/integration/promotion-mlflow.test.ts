/**
 * Promotions whose registry is a real MLflow tracking server (`registry.driver: mlflow`, built by
 * the same factory as the worker's): a version registered by a training job with MLflow's own
 * client is promoted, its aliases move at graduation and back at `runway rollback`, and its
 * lineage (run, params, metrics, dataset, commit) shows in `runway status` and `runway audit`,
 * from the history, with the server down. A tampered artifact is refused before anything serves.
 * The server going down mid-promotion makes the registry activity retry with a clear message,
 * and the promotion graduates once it is back.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { auditModel } from '../../audit/fetch';
import { startRollback } from '../../cli/client';
import { projectRoot } from '../../common/paths';
import { createRegistry } from '../../registry/factory';
import type { MlflowRegistry } from '../../registry/mlflow';
import type { ModelSpec } from '../../specs/schema';
import { parsePlatformConfig } from '../../workers/config';
import { serveAtFull } from '../../workers/platform';
import { promotionWorkflowId, type RollbackWorkflowResult } from '../../workflows/api';
import { MLFLOW_PYTHON, useMlflow } from '../helpers/mlflow';
import {
  MODELS_DIR,
  settledOutcome,
  testSpec,
  usePromotionPlatform,
  waitForStatus,
} from '../helpers/promotion';
import { expectEventually } from '../helpers/temporal';
import { runCliOn, type CliResult } from '../helpers/cli';

const exec = promisify(execFile);
// Registered first: its server is up before the platform's registry is built on it.
const mlflow = useMlflow();
const platform = usePromotionPlatform({
  registry: (home) =>
    createRegistry(
      parsePlatformConfig({
        registry: {
          driver: 'mlflow',
          mlflow: { trackingUri: mlflow.server.url, cacheDir: path.join(home, 'mlflow-cache') },
        },
      }).registry,
    ),
});
const registry = (): MlflowRegistry => platform.deps.registry as MlflowRegistry;
const demo = (v: number): string => path.join(MODELS_DIR, `fraud-v${v}.onnx`);

/** v1 pushed by runway and serving production; the candidates after it pushed too, unless told. */
async function baseline(model: string, spec: ModelSpec, candidates: number[], serve = true): Promise<void> {
  await registry().push(model, demo(1), { version: '1' });
  for (const v of candidates) await registry().push(model, demo(v), { version: String(v) });
  await registry().setAlias(model, 'production', '1');
  await registry().setStatus(model, '1', 'production', 'test baseline');
  if (serve) await serveAtFull(platform.deps, spec, '1', 1);
}

function runway(args: string[]): Promise<CliResult> {
  return runCliOn(platform.home, args, { RUNWAY_TASK_QUEUE: platform.taskQueue, RUNWAY_LOG_LEVEL: 'warn' });
}

describe('promotion with the mlflow registry', () => {
  it('refuses a tampered artifact before anything serves', { timeout: 180_000 }, async () => {
    const model = 'fd-mlflow-tamper';
    const spec = testSpec(model);
    await baseline(model, spec, [2], false);
    const v2 = await registry().get(model, '2');
    const stored = path.join(mlflow.server.artifactsDir, v2!.source!.replace(/^mlflow-artifacts:\/+/, ''));
    fs.appendFileSync(stored, Buffer.from('not the model that was pushed'));
    await platform.start(spec, '2');
    const outcome = await settledOutcome(platform, model);
    expect(outcome).toMatch(/^failed: .*prepareCandidate: .*modified after runway recorded its digest/);
    expect(outcome).toContain(v2!.sha256);
    expect(await platform.deps.fleet.list({ model })).toEqual([]);
  });

  it(
    'promotes a version its training job registered; aliases move at graduation and back at rollback; lineage in status and audit',
    { timeout: 300_000 },
    async () => {
      const model = 'fd-mlflow';
      const spec = testSpec(model, { shadow: { enabled: false }, rollback: { scaleDownDelay: '1s' } });
      await baseline(model, spec, []);
      // v2 comes from a "training job": MLflow's Python client logs a run and registers the file
      const { stdout } = await exec(
        MLFLOW_PYTHON,
        [path.join(projectRoot, 'test', 'python', 'mlflow_register.py'), mlflow.server.url, model, demo(2)],
        { timeout: 120_000 },
      );
      const trained = JSON.parse(stdout.trim().split('\n').pop()!) as { run_id: string; version: string };
      expect(trained.version).toBe('2');

      const traffic = platform.traffic(model);
      await platform.start(spec, '2');
      await platform.approveWhenAsked(model);
      await waitForStatus(platform, model, (s) => s.stage === 'canary', 120_000);
      const status = await runway(['status', model]);
      expect(status.code, status.stderr).toBe(0);
      expect(status.stdout).toContain(`run ${trained.run_id} (train-${model})`);
      expect(status.stdout).toContain('commit 0a1b2c3d4e5f');
      expect(status.stdout).toMatch(/dataset fraud-2026-11 digest \S+ \[training\] from /);
      expect(status.stdout).toContain('params learning_rate=0.05, trees=200');
      expect(status.stdout).toContain('metrics val_auc=0.91');
      expect((await registry().aliases(model)).staging).toBe('2');

      const result = await platform.result(model);
      expect(result).toMatchObject({ outcome: 'promoted' });
      expect(await registry().aliases(model)).toEqual({ production: '2', previous: '1' });
      expect(await registry().get(model, '2')).toMatchObject({
        status: 'production',
        statusReason: 'graduated',
      });
      expect(await registry().get(model, '1')).toMatchObject({
        status: 'archived',
        statusReason: 'replaced by v2',
      });

      const rollback = await startRollback(platform.client, platform.taskQueue, {
        model,
        by: 'frank',
        reason: 'conversion dropped',
        serving: spec.serving,
      });
      const back = (await rollback.result()) as RollbackWorkflowResult;
      await traffic.stop();
      expect(back).toMatchObject({ from: '2', to: '1' });
      expect(await platform.routeOf(model)).toEqual([['v1', 100]]);
      expect(await registry().aliases(model)).toEqual({ production: '1' });
      expect(await registry().get(model, '2')).toMatchObject({
        status: 'rejected',
        statusReason: 'rollback by frank: conversion dropped',
      });

      // the audit reads the lineage from the history: with the MLflow server gone it is all there
      await mlflow.server.stop();
      try {
        const doc = await auditModel(platform.client, { model, replay: false });
        const promotion = doc.promotions.find((p) => p.workflowId === promotionWorkflowId(model));
        expect(promotion && 'lineage' in promotion ? promotion.lineage : undefined).toMatchObject({
          runId: trained.run_id,
          gitCommit: '0a1b2c3d4e5f',
          params: { learning_rate: '0.05', trees: '200' },
          metrics: { val_auc: 0.91 },
          datasets: [expect.objectContaining({ name: 'fraud-2026-11', context: 'training' })],
        });
        const md = await runway(['audit', model, '--no-replay']);
        expect(md.code, md.stderr).toBe(0);
        expect(md.stdout).toContain('- lineage (recorded at prepare time):');
        expect(md.stdout).toContain(`  - run ${trained.run_id} (train-${model})`);
        expect(md.stdout).toContain('  - commit 0a1b2c3d4e5f');
      } finally {
        await mlflow.server.start();
      }
    },
  );

  it(
    'the MLflow server down mid-promotion: the registry activity retries, saying why, and graduation goes on once it is back',
    { timeout: 300_000 },
    async () => {
      const model = 'fd-mlflow-down';
      const spec = testSpec(model, {
        shadow: { enabled: false },
        canary: {
          steps: [
            { weight: 10, pause: '4s' },
            { weight: 100, pause: '0s' },
          ],
        },
      });
      await baseline(model, spec, [2]);
      const traffic = platform.traffic(model);
      const handle = await platform.start(spec, '2');
      await platform.approveWhenAsked(model);
      await waitForStatus(platform, model, (s) => s.stage === 'canary', 120_000);
      await mlflow.server.stop();
      let restarted = false;
      try {
        // graduation needs the registry: its activity fails, is retried, and says what is wrong
        const pending = await expectEventually(
          async () => {
            const d = await handle.describe();
            const a = d.raw.pendingActivities?.find((p) => p.activityType?.name === 'updateRegistry');
            expect(a?.lastFailure?.message ?? '').toMatch(
              new RegExp(`MLflow tracking server at ${mlflow.server.url} is unreachable .*retried`),
            );
            return a!;
          },
          { timeoutMs: 90_000, intervalMs: 250 },
        );
        expect(Number(pending.attempt)).toBeGreaterThanOrEqual(2);
        expect(await platform.routeOf(model)).toEqual([['v2', 100]]);
        await mlflow.server.start();
        restarted = true;
      } finally {
        if (!restarted) await mlflow.server.start();
      }
      const result = await platform.result(model);
      await traffic.stop();
      expect(result).toMatchObject({ outcome: 'promoted' });
      expect(await registry().aliases(model)).toEqual({ production: '2', previous: '1' });
    },
  );
});
