/**
 * `npm run bench:strategies`: what blue-green's instant switch and instant revert cost, beside the
 * canary as the reference, measured side by side in one run on the embedded platform (Temporal dev
 * server, router, local fleet of `runway serve` processes, synthetic traffic).
 *
 * Each round promotes the failing demo v5 (errors on ~5% of rows) over v1 twice at once: once
 * blue-green (no preview: 0 → 100% at once, the guard watching) and once canary (one 50% step).
 * Both are rolled back by the SLO guard. From each history's server timestamps
 * (audit/route-timing.ts):
 * - the traffic move: blue-green's switch to 100%, the canary's route change to 50%
 *   (setTraffic scheduled → completed: the fleet sized around it, the route set at the router);
 * - the revert: from the look whose verdict rolled back to the route back on the baseline.
 *
 * On the local fleet every version keeps its full size in both strategies, so the ratios say what
 * the control path costs; on Kubernetes with scaleWithWeight a canary's revert also waits for the
 * baseline's scale-up, which blue-green never needs (its baseline stays at full size).
 * Writes bench/results/strategies-<date>.json and .md.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { fetchChain } from '../audit/fetch';
import { revertTiming, routeChanges } from '../audit/route-timing';
import { startPromotion } from '../cli/start';
import { createLogger } from '../common/log';
import { projectRoot } from '../common/paths';
import { startTraffic } from '../demo/traffic';
import { parseSpec } from '../specs/load';
import type { ModelSpecInput } from '../specs/schema';
import { promotionWorkflowId, type PromotionResult } from '../workflows/api';
import { loadPlatformConfig } from '../workers/config';
import { serveAtFull, startPlatform } from '../workers/platform';

const log = createLogger('bench-strategies');

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const ROUNDS = Number(flag('rounds', '3'));
const RPS = Number(flag('rps', '60'));
const MODELS = path.join(projectRoot, 'demo', 'models');

function spec(name: string, strategy: 'blue-green' | 'canary') {
  const input: ModelSpecInput = {
    name,
    owner: 'bench',
    model: {
      signature: {
        inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 8] }],
        outputs: [{ name: 'score', datatype: 'FP32', shape: [-1, 1] }],
      },
    },
    serving: { replicas: 1 },
    slos: { p99LatencyMs: 2000, errorRate: 0.02, minRequests: 5 },
    evaluation: { dataset: path.join(MODELS, 'eval.json'), min: 0.8, maxRegression: 0.1 },
    approval: { required: 0 },
    integration: { latencyRequests: 5, maxP99LatencyMs: 5000 },
    shadow: { enabled: false },
    canary: {
      interval: '2s',
      failureLimit: 2,
      analysis: { compare: false },
      ...(strategy === 'canary'
        ? {
            steps: [
              { weight: 50, pause: '30s' },
              { weight: 100, pause: '0s' },
            ],
          }
        : {}),
    },
    ...(strategy === 'blue-green' ? { strategy, blueGreen: { watchAfterSwitch: '30s' } } : {}),
    rollback: { scaleDownDelay: '1s', onInconclusive: 'proceed' },
  };
  return parseSpec(input, `bench spec ${name}`);
}

interface Sample {
  strategy: 'blue-green' | 'canary';
  round: number;
  outcome: string;
  moveMs: number | null;
  revertMs: number | null;
}

const median = (xs: number[]): number | null => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function main(): Promise<void> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-bench-strategies-'));
  process.env.RUNWAY_HOME = home;
  const config = loadPlatformConfig({ file: null, env: { RUNWAY_HOME: home } });
  const platform = await startPlatform({ config, routerPort: 0, logger: log });
  const connection = await Connection.connect(platform.temporal.connectionOptions);
  const client = new Client({ connection, namespace: platform.temporal.namespace, identity: 'bench' });
  const samples: Sample[] = [];
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      const runs = (['blue-green', 'canary'] as const).map(async (strategy) => {
        const model = `${strategy === 'canary' ? 'cn' : 'bg'}-bench-${round}`;
        const s = spec(model, strategy);
        for (const v of ['1', '5']) {
          await platform.deps.registry.push(model, path.join(MODELS, `fraud-v${v}.onnx`), {
            version: v,
            source: 'bench',
          });
        }
        await platform.deps.registry.setAlias(model, 'production', '1');
        await serveAtFull(platform.deps, s, '1', 1);
        const traffic = startTraffic({
          baseUrl: platform.router.url,
          model,
          rps: RPS,
          feedback: false,
          durationMs: 5 * 60_000,
        });
        try {
          await startPromotion(
            client,
            platform.config.taskQueue,
            { spec: s, specSha256: 'bench', version: '5', triggeredBy: 'bench' },
            '1',
          );
          const result = (await client.workflow
            .getHandle(promotionWorkflowId(model))
            .result()) as PromotionResult;
          const events = (await fetchChain(client, promotionWorkflowId(model))).flatMap((r) => r.events);
          const move = routeChanges(events).find((c) =>
            c.reason.startsWith(strategy === 'canary' ? 'canary step 1' : 'blue-green switch'),
          );
          const sample: Sample = {
            strategy,
            round,
            outcome: `${result.outcome}: ${result.reason}`,
            moveMs: move?.ms ?? null,
            revertMs: revertTiming(events)?.ms ?? null,
          };
          log.info('measured', { ...sample });
          samples.push(sample);
        } finally {
          await traffic.stop();
          for (const d of await platform.deps.fleet.list({ model }))
            await platform.deps.fleet.teardown(d.name);
        }
      });
      await Promise.all(runs);
    }
  } finally {
    await connection.close();
    await platform.stop();
    fs.rmSync(home, { recursive: true, force: true });
  }

  const of = (strategy: Sample['strategy'], key: 'moveMs' | 'revertMs'): number | null =>
    median(samples.filter((s) => s.strategy === strategy && s[key] !== null).map((s) => s[key]!));
  const ratio = (a: number | null, b: number | null): number | null =>
    a !== null && b !== null && b > 0 ? Math.round((a / b) * 100) / 100 : null;
  const summary = {
    blueGreen: { switchMs: of('blue-green', 'moveMs'), revertMs: of('blue-green', 'revertMs') },
    canary: { stepMs: of('canary', 'moveMs'), revertMs: of('canary', 'revertMs') },
  };
  const ratios = {
    switchVsCanaryStep: ratio(summary.blueGreen.switchMs, summary.canary.stepMs),
    revertVsCanaryRevert: ratio(summary.blueGreen.revertMs, summary.canary.revertMs),
  };
  const date = new Date().toISOString().slice(0, 10);
  const out = {
    bench: 'strategies',
    date,
    machine: { cpus: os.cpus().length, node: process.version },
    rounds: ROUNDS,
    rps: RPS,
    samples,
    medians: summary,
    ratios,
  };
  const dir = path.join(projectRoot, 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `strategies-${date}.json`), JSON.stringify(out, null, 2) + '\n');
  const md = [
    `# Strategies: blue-green's switch and revert beside the canary (${date})`,
    '',
    `${ROUNDS} rounds, each promoting the failing demo v5 over v1 blue-green and canary at once, ${RPS} requests/s each, on the embedded platform (local fleet: every version at full size in both), ${os.cpus().length} CPUs. Times from the histories' server timestamps (audit/route-timing.ts); medians.`,
    '',
    '| measure | blue-green | canary (reference) | ratio |',
    '| --- | --- | --- | --- |',
    `| traffic move (switch to 100% / step to 50%): setTraffic scheduled → completed | ${summary.blueGreen.switchMs} ms | ${summary.canary.stepMs} ms | ${ratios.switchVsCanaryStep} |`,
    `| revert: failing look → route back on the baseline | ${summary.blueGreen.revertMs} ms | ${summary.canary.revertMs} ms | ${ratios.revertVsCanaryRevert} |`,
    '',
    'Outcomes: ' +
      samples.map((s) => `${s.strategy} round ${s.round}: ${s.outcome.split(':')[0]}`).join('; '),
    '',
  ].join('\n');
  fs.writeFileSync(path.join(dir, `strategies-${date}.md`), md);
  process.stdout.write(md);
}

main().catch((err: unknown) => {
  log.error('bench failed', { error: err instanceof Error ? err.stack : String(err) });
  process.exit(1);
});
