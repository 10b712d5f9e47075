/**
 * A TrafficRouter declares what it can do; a spec that needs more is refused by the first activity
 * of the promotion (prepareCandidate), before anything deploys, naming the spec field and the router.
 */
import { ApplicationFailure } from '@temporalio/common';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createActivities, type ActivityDeps } from '../../activities';
import { createLogger } from '../../common/log';
import { FileRegistry } from '../../registry/file';
import type { FleetDriver } from '../../serving/fleet/driver';
import type { MetricsSource } from '../../serving/metrics/source';
import { GatewayApiTrafficRouter } from '../../serving/traffic/gateway-api';
import { BuiltinTrafficRouter } from '../../serving/traffic/builtin';
import { unsupportedNeeds, type SpecTrafficNeeds } from '../../serving/traffic/router';
import { MODELS_DIR, testSpec } from '../helpers/promotion';

const gateway = new GatewayApiTrafficRouter({ namespace: 'models', parentRefs: [{ name: 'gw' }] });
const builtin = new BuiltinTrafficRouter({ url: 'http://127.0.0.1:1' });
const needs = (experiment: SpecTrafficNeeds['experiment']['kind'], shadow = true): SpecTrafficNeeds => ({
  shadow: { enabled: shadow, mirrorPercent: 10 },
  experiment: { kind: experiment },
});

describe('router capabilities against what a spec needs', () => {
  it('the runway router runs everything; gateway-api runs canaries with a shadow', () => {
    for (const kind of ['none', 'ab', 'bandit'] as const)
      expect(unsupportedNeeds(needs(kind), builtin)).toEqual([]);
    expect(unsupportedNeeds(needs('none'), gateway)).toEqual([]);
  });

  it('an A/B or a bandit on gateway-api is refused, naming the field and the router', () => {
    expect(unsupportedNeeds(needs('ab'), gateway)).toEqual([
      'experiment.kind: ab needs sticky assignment by header, which router.driver "gateway-api" does not provide',
      'experiment.kind: ab needs per-request rewards (POST /v1/feedback), which router.driver "gateway-api" does not provide',
    ]);
    expect(unsupportedNeeds(needs('bandit'), gateway)).toHaveLength(2);
  });

  it('a shadow needs mirroring', () => {
    const noMirror = {
      kind: 'weights-only',
      capabilities: { weights: true, mirror: false, sticky: false, feedback: false, preview: false },
    };
    expect(unsupportedNeeds(needs('none'), noMirror)).toEqual([
      'shadow.enabled needs request mirroring, which router.driver "weights-only" does not provide',
    ]);
    expect(unsupportedNeeds(needs('none', false), noMirror)).toEqual([]);
  });
});

describe('prepareCandidate refuses before anything deploys', () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-caps-'));
  afterAll(() => fs.rmSync(home, { recursive: true, force: true }));
  const calls: string[] = [];
  // The fleet and metrics must not be touched: a recording stand-in shows that they are not.
  const fleet = new Proxy({}, { get: (_t, p) => () => calls.push(String(p)) }) as unknown as FleetDriver;
  const metrics = { snapshot: () => calls.push('snapshot') } as unknown as MetricsSource;
  const deps = (router: ActivityDeps['router']): ActivityDeps => ({
    registry: new FileRegistry(path.join(home, 'registry')),
    fleet,
    router,
    metrics,
    logger: createLogger('test', () => {}),
  });

  it('an A/B spec on gateway-api fails permanently with the field and the router', async () => {
    const acts = createActivities(deps(gateway));
    const spec = testSpec('caps-ab', { experiment: { kind: 'ab' } });
    const err = await acts
      .prepareCandidate({ model: 'caps-ab', version: '2', spec })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    expect((err as ApplicationFailure).type).toBe('RouterUnsupported');
    expect((err as Error).message).toMatch(
      /experiment\.kind: ab needs sticky assignment by header, which router\.driver "gateway-api" does not provide/,
    );
    expect(calls).toEqual([]);
  });

  it('a canary spec on gateway-api goes on to verify the artifacts', async () => {
    const registry = new FileRegistry(path.join(home, 'registry'));
    await registry.push('caps-canary', path.join(MODELS_DIR, 'fraud-v2.onnx'), {
      version: '2',
      source: 'tests',
    });
    const acts = createActivities(deps(gateway));
    const spec = testSpec('caps-canary');
    const prep = await acts.prepareCandidate({ model: 'caps-canary', version: '2', spec });
    expect(prep.candidate.version).toBe('2');
    expect(calls).toEqual([]);
  });
});
