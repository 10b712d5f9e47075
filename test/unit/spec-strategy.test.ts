/**
 * Strategies in the ModelSpec: each is a choice of traffic steps (specs/strategy.ts), and a field
 * that belongs to one strategy is refused under another, naming the field, its line and the way out.
 */
import { describe, expect, it } from 'vitest';
import { splitFalseRollbackRate } from '../../specs/false-rollbacks';
import path from 'node:path';
import { loadSpecFile, loadSpecText, SpecError } from '../../specs/load';
import { comparingWeights, linearWeights, stepTexts, trafficSteps } from '../../specs/strategy';
import { parseRoute, RouteValidationError } from '../../serving/router/schema';
import { BuiltinTrafficRouter } from '../../serving/traffic/builtin';
import { GatewayApiTrafficRouter, httpRouteFor } from '../../serving/traffic/gateway-api';
import { IstioTrafficRouter } from '../../serving/traffic/istio';
import { unsupportedNeeds } from '../../serving/traffic/router';

const base = `
name: churn-model
owner: growth
model:
  signature:
    inputs: [{ name: x, datatype: FP32, shape: [-1, 4] }]
    outputs: [{ name: y, datatype: FP32, shape: [-1, 1] }]
slos: { p99LatencyMs: 40, errorRate: 0.01 }
evaluation: { dataset: data/eval.json, min: 0.7 }
`;

function problemsOf(text: string): SpecError['problems'] {
  try {
    loadSpecText(text, 'spec.yaml');
  } catch (err) {
    if (err instanceof SpecError) return err.problems;
    throw err;
  }
  throw new Error('expected the spec to be refused');
}

describe('strategy: canary (the default)', () => {
  it('a spec without a strategy walks canary.steps, written or default, as before', () => {
    const spec = loadSpecText(base, 'spec.yaml');
    expect(spec.strategy).toBe('canary');
    expect(trafficSteps(spec).map((s) => [s.weight, s.compare, s.held])).toEqual([
      [5, true, false],
      [25, true, false],
      [50, true, false],
      [100, true, false],
    ]);
    const written = loadSpecText(
      `${base}canary:\n  steps: [{ weight: 10, pause: 1m }, { weight: 100, pause: 0s }]\n`,
      's',
    );
    expect(stepTexts(written)).toEqual(['10%/1m']);
  });

  it('a spec recorded before strategies (no strategy field) is a canary', () => {
    const spec = loadSpecText(base, 'spec.yaml') as Parameters<typeof trafficSteps>[0];
    const old = { ...spec, strategy: undefined };
    expect(trafficSteps(old).map((s) => s.label)).toEqual(trafficSteps(spec).map((s) => s.label));
  });
});

describe('strategy: linear', () => {
  it('derives equal steps of stepPercent every interval, ending at 100', () => {
    expect(linearWeights(20)).toEqual([20, 40, 60, 80, 100]);
    expect(linearWeights(30)).toEqual([30, 60, 90, 100]);
    expect(linearWeights(99)).toEqual([99, 100]);
    const spec = loadSpecText(`${base}strategy: linear\nlinear: { stepPercent: 25, interval: 2m }\n`, 's');
    expect(spec.canary.steps).toEqual([
      { weight: 25, pause: 120_000 },
      { weight: 50, pause: 120_000 },
      { weight: 75, pause: 120_000 },
      { weight: 100, pause: 0 },
    ]);
    expect(trafficSteps(spec).every((s) => s.compare && !s.held)).toBe(true);
    expect(trafficSteps(spec)[1]?.label).toBe('linear step 2: 50%');
  });

  it('its steps share the false-rollback budget like canary steps', () => {
    const spec = loadSpecText(`${base}strategy: linear\nlinear: { stepPercent: 20 }\n`, 's');
    const split = splitFalseRollbackRate(0.01, comparingWeights(spec), false);
    // four comparing steps (20, 40, 60, 80); 100% graduates and spends nothing
    expect(split.steps.map((a) => a !== null)).toEqual([true, true, true, true, false]);
    const total = split.steps.reduce<number>((sum, a) => sum + (a ?? 0), 0);
    expect(total).toBeCloseTo(0.01, 12);
  });

  it('needs linear.stepPercent, an integer 1–99', () => {
    expect(problemsOf(`${base}strategy: linear\n`)).toEqual([
      expect.objectContaining({
        path: 'linear',
        message: expect.stringMatching(/needs linear\.stepPercent/),
      }),
    ]);
    expect(problemsOf(`${base}strategy: linear\nlinear: { stepPercent: 100 }\n`)[0]).toMatchObject({
      path: 'linear.stepPercent',
    });
    expect(problemsOf(`${base}strategy: linear\nlinear: { stepPercent: 20, every: 1m }\n`)[0]).toMatchObject({
      path: 'linear.every',
      message: 'unknown field every',
    });
  });
});

describe('strategy: blue-green', () => {
  it('an optional preview at 0% by header, then the switch to 100%, both judged by the guard alone', () => {
    const spec = loadSpecText(
      `${base}strategy: blue-green\nblueGreen:\n  preview: { header: x-preview, value: qa, duration: 2m }\n  watchAfterSwitch: 3m\n`,
      's',
    );
    expect(
      trafficSteps(spec).map(({ weight, pause, compare, held, preview }) => ({
        weight,
        pause,
        compare,
        held,
        preview,
      })),
    ).toEqual([
      {
        weight: 0,
        pause: 120_000,
        compare: false,
        held: true,
        preview: { header: 'x-preview', value: 'qa' },
      },
      { weight: 100, pause: 180_000, compare: false, held: true, preview: undefined },
    ]);
    expect(stepTexts(spec)).toEqual(['preview by x-preview 0%/2m', '100%/3m']);
    // nothing compares, so nothing spends the comparison's budget
    expect(comparingWeights(spec)).toEqual([100, 100]);
  });

  it('defaults: no preview, the switch watched for 5 minutes', () => {
    const spec = loadSpecText(`${base}strategy: blue-green\n`, 's');
    expect(trafficSteps(spec).map((s) => [s.weight, s.pause])).toEqual([[100, 300_000]]);
    const withPreview = loadSpecText(`${base}strategy: blue-green\nblueGreen: { preview: {} }\n`, 's');
    expect(withPreview.blueGreen?.preview).toEqual({ header: 'x-runway-preview', duration: 300_000 });
  });

  it('needs routing by header for a preview: every provider here has it; one without is refused', () => {
    const needs = { shadow: { enabled: false, mirrorPercent: 0 }, experiment: { kind: 'none' as const } };
    const preview = { ...needs, strategy: 'blue-green', blueGreen: { preview: { header: 'x' } } };
    const gateway = new GatewayApiTrafficRouter({ namespace: 'models', parentRefs: [{ name: 'gw' }] });
    const istio = new IstioTrafficRouter({ namespace: 'models' });
    for (const router of [new BuiltinTrafficRouter({ url: 'http://127.0.0.1:1' }), gateway, istio])
      expect(unsupportedNeeds(preview, router)).toEqual([]);
    const plain = {
      kind: 'linkerd',
      capabilities: { weights: true, mirror: false, sticky: false, feedback: false, preview: false },
    };
    expect(unsupportedNeeds(preview, plain)).toEqual([
      'blueGreen.preview needs routing by request header, which router.driver "linkerd" does not provide',
    ]);
    // without a preview, blue-green is weights alone: a plain router runs it
    expect(unsupportedNeeds({ ...needs, strategy: 'blue-green', blueGreen: {} }, plain)).toEqual([]);
  });
});

describe('the example specs', () => {
  it('a linear and a blue-green example load, with the steps they say', () => {
    const examples = path.join(__dirname, '../../specs/examples');
    const linear = loadSpecFile(path.join(examples, 'fraud-detector-linear.yaml')).spec;
    expect(stepTexts(linear)).toEqual(['20%/15s', '40%/15s', '60%/15s', '80%/15s']);
    const blueGreen = loadSpecFile(path.join(examples, 'fraud-detector-blue-green.yaml')).spec;
    expect(stepTexts(blueGreen)).toEqual(['preview by x-runway-preview 0%/30s', '100%/30s']);
  });
});

describe("one strategy's fields under another", () => {
  it('refuses canary.steps under linear and blue-green, naming the field, its line and the way out', () => {
    const text = `${base}strategy: linear\nlinear: { stepPercent: 20 }\ncanary:\n  interval: 30s\n  steps: [{ weight: 5, pause: 1m }]\n`;
    expect(problemsOf(text)).toEqual([
      {
        path: 'canary.steps',
        line: 14,
        message:
          'canary.steps is the canary strategy’s steps, but strategy is linear (which walks equal steps of linear.stepPercent every linear.interval): remove it, or set strategy: canary',
      },
    ]);
    expect(problemsOf(`${base}strategy: blue-green\ncanary:\n  steps: [{ weight: 5, pause: 1m }]\n`)).toEqual(
      [
        expect.objectContaining({
          path: 'canary.steps',
          message: expect.stringMatching(/but strategy is blue-green/),
        }),
      ],
    );
  });

  it('refuses linear under canary and blue-green, and blueGreen under canary and linear', () => {
    expect(problemsOf(`${base}linear: { stepPercent: 20 }\n`)).toEqual([
      expect.objectContaining({
        path: 'linear',
        line: 10,
        message: expect.stringMatching(
          /^linear is the linear strategy’s settings, but strategy is canary .*set strategy: linear$/,
        ),
      }),
    ]);
    expect(problemsOf(`${base}strategy: blue-green\nlinear: { stepPercent: 20 }\n`)[0]).toMatchObject({
      path: 'linear',
    });
    expect(problemsOf(`${base}blueGreen: { watchAfterSwitch: 1m }\n`)[0]).toMatchObject({
      path: 'blueGreen',
      message: expect.stringMatching(/but strategy is canary .*set strategy: blue-green$/),
    });
    expect(
      problemsOf(
        `${base}strategy: linear\nlinear: { stepPercent: 20 }\nblueGreen: { watchAfterSwitch: 1m }\n`,
      )[0],
    ).toMatchObject({ path: 'blueGreen', message: expect.stringMatching(/but strategy is linear/) });
  });

  it('refuses an experiment under blue-green (it splits what blue-green switches at once)', () => {
    expect(problemsOf(`${base}strategy: blue-green\nexperiment: { kind: ab }\n`)).toEqual([
      expect.objectContaining({
        path: 'experiment.kind',
        message: expect.stringMatching(/strategy blue-green switches all of it at once/),
      }),
    ]);
  });

  it('shared analysis settings (canary.interval, canary.analysis) stay valid under every strategy', () => {
    const shared =
      'canary:\n  interval: 10s\n  failureLimit: 3\n  analysis: { maxRelativeErrorRateIncrease: 0.5 }\n';
    expect(
      loadSpecText(`${base}strategy: linear\nlinear: { stepPercent: 50 }\n${shared}`, 's').canary.interval,
    ).toBe(10_000);
    expect(loadSpecText(`${base}strategy: blue-green\n${shared}`, 's').canary.failureLimit).toBe(3);
  });

  it('refuses an unknown strategy with the accepted ones', () => {
    expect(problemsOf(`${base}strategy: big-bang\n`)[0]).toMatchObject({
      path: 'strategy',
      message: 'expected one of canary, blue-green, linear, got the string "big-bang"',
    });
  });
});

describe('gateway-api previews by a header match', () => {
  it('a rule matching the header (exact value, or any value) before the weighted rule', () => {
    const svc = (n: string): string => `http://fraud-v${n}-production.models.svc.cluster.local:80`;
    const route = {
      variants: [
        { name: 'v1', endpoints: [svc('1')], weight: 100 },
        { name: 'v2', endpoints: [svc('2')], weight: 0 },
      ],
      preview: { variant: 'v2', header: 'x-runway-preview', value: 'qa' },
    };
    const o = { namespace: 'models', parentRefs: [{ name: 'gw' }] };
    const rules = (httpRouteFor('fraud', route, o).spec as { rules: Record<string, unknown>[] }).rules;
    expect(rules).toHaveLength(2);
    expect(rules[0]).toEqual({
      matches: [
        {
          path: { type: 'PathPrefix', value: '/v2/models/fraud' },
          headers: [{ type: 'Exact', name: 'x-runway-preview', value: 'qa' }],
        },
      ],
      backendRefs: [{ kind: 'Service', name: 'fraud-v2-production', port: 80, weight: 1 }],
    });
    expect(rules[1]?.matches).toEqual([{ path: { type: 'PathPrefix', value: '/v2/models/fraud' } }]);
    const any = httpRouteFor(
      'fraud',
      { ...route, preview: { variant: 'v2', header: 'x-runway-preview' } },
      o,
    );
    expect(
      (any.spec as { rules: { matches: { headers?: unknown[] }[] }[] }).rules[0]?.matches[0]?.headers,
    ).toEqual([{ type: 'RegularExpression', name: 'x-runway-preview', value: '.+' }]);
  });
});

describe('the route carries a preview', () => {
  const variants = [
    { name: 'v1', endpoints: ['http://127.0.0.1:1'], weight: 100 },
    { name: 'v2', endpoints: ['http://127.0.0.1:2'], weight: 0 },
  ];
  it('to one of its variants with endpoints, by a valid header name', () => {
    expect(parseRoute({ variants, preview: { variant: 'v2', header: 'x-preview' } }).preview).toEqual({
      variant: 'v2',
      header: 'x-preview',
    });
    const refused = (route: unknown): string[] => {
      try {
        parseRoute(route);
      } catch (err) {
        if (err instanceof RouteValidationError) return err.issues.map((i) => `${i.path}: ${i.message}`);
        throw err;
      }
      return [];
    };
    expect(refused({ variants, preview: { variant: 'v3', header: 'x' } })).toEqual([
      'preview.variant: expected one of the route\'s variants (v1, v2), got "v3"',
    ]);
    expect(refused({ variants, preview: { variant: 'v2', header: 'bad header' } })).toEqual([
      'preview.header: expected a valid HTTP header name',
    ]);
    expect(
      refused({
        variants: [variants[0], { ...variants[1], endpoints: [] }],
        preview: { variant: 'v2', header: 'x' },
      }),
    ).toEqual(['preview.variant: expected the preview target "v2" to have endpoints']);
  });
});
