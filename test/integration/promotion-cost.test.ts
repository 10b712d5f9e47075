/**
 * Cost per 1,000 inferences in real promotions, turned on as a platform team would: prices in the
 * platform config (`cost`), the gate in the spec (`canary.analysis.maxCostIncrease`). A healthy v2
 * is promoted with a cost verdict at every canary look and an audit that prices the promotion's
 * own replica-hours; v4 (about 1,500× slower per row, inside a lax latency SLO) is rolled back by
 * the cost gate alone. Both histories are recorded for the replay test.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { auditModel } from '../../audit/fetch';
import type { CostVerdict } from '../../common/cost';
import { runwayBin } from '../../common/paths';
import { promotionWorkflowId } from '../../workflows/api';
import { recordHistory } from '../helpers/record';
import { testSpec, usePromotionPlatform } from '../helpers/promotion';
import { testTemporal } from '../helpers/temporal';

const PRICES = { currency: 'USD', perHour: { cpu: 0.04, memoryGiB: 0.005 } };
const platform = usePromotionPlatform({ platformConfig: () => ({ cost: PRICES }) });

/** The spec's default resources (1 CPU, 1Gi) at these prices: 0.045 $ per replica-hour. */
const REPLICA_PER_HOUR = 0.045;

describe.concurrent('cost per 1,000 inferences', () => {
  it(
    'a healthy candidate is promoted with its cost at every look, and the audit prices the promotion',
    { timeout: 240_000 },
    async () => {
      const model = 'fd-cost-ok';
      // A lax gate: v2 and v1 cost the same per inference, but a look's busy time is noisy.
      const spec = testSpec(model, { canary: { analysis: { maxCostIncrease: 3 } } });
      const { traffic } = await platform.launch(spec, '2', { rps: 60 });
      const result = await platform.result(model);
      await traffic.stop();
      await recordHistory(platform.client, promotionWorkflowId(model), 'cost-promote-v2');
      expect(result.outcome, result.reason).toBe('promoted');
      const costs = result.verdicts.filter((v): v is CostVerdict => v.check === 'cost');
      expect(costs.length, 'a cost verdict at every canary look').toBeGreaterThanOrEqual(3);
      const judged = costs.filter((c) => c.result === 'pass' && c.increase !== null);
      expect(judged.length).toBeGreaterThan(0);
      for (const c of judged) {
        expect(c.price).toMatchObject({ currency: 'USD', perHour: REPLICA_PER_HOUR });
        expect(c.candidate.replicas).toBe(1);
        expect(c.candidate.per1k).toBeGreaterThan(0);
        expect(c.candidate.utilisation).toBeGreaterThan(0);
        expect(c.baseline?.per1k).toBeGreaterThan(0);
        // One replica each over the same window: per 1k goes inversely with the requests served,
        // so a 10% canary on a whole replica pays ~9× the baseline's per inference.
        const ratio = c.candidate.per1k! / c.baseline!.per1k!;
        expect(ratio / (c.baseline!.requests / c.candidate.requests)).toBeCloseTo(1, 3);
        expect(c.reason).toMatch(
          /^candidate v2 [\d.]+ \$\/1k at \d+% utilisation vs baseline v1 [\d.]+ \$\/1k at \d+% utilisation; at full load/,
        );
      }
      const doc = await auditModel(platform.client, { model, replay: false });
      const cost = doc.promotions[0]!.cost;
      expect(cost.phases.map((p) => p.phase)).toEqual(['staging', 'shadow', 'canary']);
      for (const p of cost.phases) expect(p.replicaHours).toBeGreaterThan(0);
      expect(cost.price).toMatchObject({ perHour: REPLICA_PER_HOUR, source: 'history' });
      expect(cost.cost).toBeCloseTo(cost.replicaHours * REPLICA_PER_HOUR, 6);
      expect(doc.promotions[0]!.analyses.filter((a) => a.cost).length).toBe(costs.length);

      // The same report through the CLI, as one self-contained page.
      const out = path.join(platform.home, `${model}.html`);
      const { address } = await testTemporal();
      const r = spawnSync(
        process.execPath,
        [runwayBin, 'audit', model, '--format', 'html', '--out', out, '--no-replay'],
        {
          encoding: 'utf8',
          timeout: 90_000,
          env: {
            ...process.env,
            RUNWAY_HOME: platform.home,
            TEMPORAL_ADDRESS: address,
            RUNWAY_LOG_LEVEL: 'warn',
          },
        },
      );
      expect(r.status, r.stderr).toBe(0);
      const html = fs.readFileSync(out, 'utf8');
      expect(html).toMatch(/^<!doctype html>/);
      expect(html.match(/class="verdict-marker"/g)?.length).toBe(doc.promotions[0]!.analyses.length);
      expect(html).toContain('Cost of the promotion');
      expect(html, 'nothing on the page fetches').not.toMatch(/<script|<link|src=|href=|url\(/i);
    },
  );

  it(
    'a candidate dearer per inference than the gate allows is rolled back by the cost gate, with the numbers',
    { timeout: 240_000 },
    async () => {
      const model = 'fd-cost-gate';
      // v4 spends ~105 ms per row against v1's 0.07 ms: inside this lax latency SLO, so only
      // the cost gate can object, and far beyond its 50%.
      const spec = testSpec(model, {
        slos: { p99LatencyMs: 5000 },
        shadow: { enabled: false },
        canary: { analysis: { maxCostIncrease: 0.5 } },
      });
      const { traffic } = await platform.launch(spec, '4', { rps: 60 });
      const result = await platform.result(model);
      await traffic.stop();
      await recordHistory(platform.client, promotionWorkflowId(model), 'cost-rollback-v4');
      expect(result.outcome, result.reason).toBe('rolled_back');
      expect(result.reason).toMatch(
        /^automatic rollback at canary after 2 failed intervals — cost: candidate costs \+\d+% per inference at full load, over the limit \+50%: candidate v4 /,
      );
      const guards = result.verdicts.filter((v) => v.check === 'slo');
      expect(
        guards.every((v) => v.result !== 'fail'),
        'the SLO guard never failed',
      ).toBe(true);
      const failed = result.verdicts.filter(
        (v): v is CostVerdict => v.check === 'cost' && v.result === 'fail',
      );
      expect(failed.length).toBe(2);
      for (const f of failed) {
        expect(f.maxIncrease).toBe(0.5);
        expect(f.increase).toBeGreaterThan(0.5);
        expect(f.candidate.per1kAtFullLoad!).toBeGreaterThan(f.baseline!.per1kAtFullLoad! * 1.5);
      }
      expect(await platform.routeOf(model)).toEqual([['v1', 100]]);
    },
  );
});
