import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../specs/duration';
import { loadSpecFile, loadSpecText, SpecError, specJsonSchema } from '../../specs/load';

const example = path.join(__dirname, '../../specs/examples/fraud-detector.yaml');
const minimal = `
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

describe('durations', () => {
  it('parses the forms people write', () => {
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('15m')).toBe(900_000);
    expect(parseDuration('24h')).toBe(86_400_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('1.5s')).toBe(1500);
  });
  it('refuses garbage with the accepted forms in the message', () => {
    expect(() => parseDuration('5 minutes')).toThrow(/ms\|s\|m\|h\|d/);
    expect(() => parseDuration('')).toThrow();
    expect(() => parseDuration('10')).toThrow();
  });
  it('formats compactly', () => {
    expect(formatDuration(90_000)).toBe('1m30s');
    expect(formatDuration(250)).toBe('250ms');
  });
});

describe('ModelSpec', () => {
  it('loads the example with defaults filled and durations in ms', () => {
    const { spec, sha256 } = loadSpecFile(example);
    expect(spec.name).toBe('fraud-detector');
    expect(spec.canary.steps.map((s) => s.weight)).toEqual([10, 25, 50, 100]);
    expect(spec.canary.steps[0]?.pause).toBe(15_000);
    expect(spec.canary.interval).toBe(5_000);
    expect(spec.approval.timeout).toBe(30 * 60_000);
    expect(spec.serving.batching.maxQueueSize).toBe(1024);
    expect(path.isAbsolute(spec.evaluation.dataset)).toBe(true);
    expect(sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('fills every section from defaults for a minimal spec', () => {
    const spec = loadSpecText(minimal, 'min.yaml');
    expect(spec.canary.steps.map((s) => [s.weight, s.pause])).toEqual([
      [5, 300_000],
      [25, 300_000],
      [50, 300_000],
      [100, 0],
    ]);
    expect(spec.approval).toMatchObject({
      required: 1,
      approvers: [],
      allowSelfApproval: false,
      timeout: 86_400_000,
    });
    expect(spec.experiment.kind).toBe('none');
    expect(spec.canary.analysis.confidence).toBe(0.98);
    expect(spec.rollback.scaleDownDelay).toBe(3_600_000);
  });

  it('names the field, the line and what was expected for each problem', () => {
    const problems = problemsOf(
      minimal.replace('p99LatencyMs: 40', 'p99LatencyMs: -4') + 'canary:\n  interval: soon\n',
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: 'slos.p99LatencyMs', line: 8 }),
        expect.objectContaining({
          path: 'canary.interval',
          message: expect.stringMatching(/duration/),
          line: 11,
        }),
      ]),
    );
  });

  it('refuses unknown fields instead of ignoring a typo', () => {
    const problems = problemsOf(minimal + 'canaryy: {}\n');
    expect(problems[0]?.message).toMatch(/unknown field.*canaryy/);
  });

  it('says what a wrong value is instead of calling it missing, and echoes an enum value', () => {
    const problems = problemsOf(
      minimal.replace('p99LatencyMs: 40', 'p99LatencyMs: fast') + 'experiment: { kind: abtest }\n',
    );
    expect(problems).toEqual([
      { path: 'slos.p99LatencyMs', line: 8, message: 'expected a number, got the string "fast"' },
      {
        path: 'experiment.kind',
        line: 10,
        message: 'expected one of none, ab, bandit, got the string "abtest"',
      },
    ]);
    expect(problemsOf(minimal.replace('owner: growth\n', ''))).toEqual([
      expect.objectContaining({ path: 'owner', message: 'required (expected a string)' }),
    ]);
  });

  it('reports an unknown field at its own line, with a suggestion when one known field is close', () => {
    const text = minimal + 'approvall:\n  required: 1\ncanary:\n  interval: 5s\n  failurLimit: 3\nzzz: 1\n';
    expect(problemsOf(text)).toEqual([
      { path: 'approvall', line: 10, message: 'unknown field approvall; did you mean `approval`?' },
      {
        path: 'canary.failurLimit',
        line: 14,
        message: 'unknown field failurLimit; did you mean `failureLimit`?',
      },
      { path: 'zzz', line: 15, message: 'unknown field zzz' },
    ]);
    // a swapped pair of letters is one slip, inside a list item too
    const swapped = minimal.replace('inputs: [{ name: x', 'inputs: [{ nmae: x');
    expect(problemsOf(swapped)).toContainEqual({
      path: 'model.signature.inputs[0].nmae',
      line: 6,
      message: 'unknown field nmae; did you mean `name`?',
    });
  });

  it('refuses canary weights that do not increase and batch sizes above the maximum', () => {
    const bad =
      minimal +
      'canary:\n  steps: [{ weight: 50, pause: 1m }, { weight: 20, pause: 1m }]\nserving:\n  batching: { maxBatchSize: 4, preferredBatchSizes: [8] }\n';
    const paths = problemsOf(bad).map((p) => p.path);
    expect(paths).toContain('canary.steps[1].weight');
    expect(paths).toContain('serving.batching.preferredBatchSizes');
  });

  it('refuses more required approvals than approvers', () => {
    const problems = problemsOf(minimal + 'approval: { required: 3, approvers: [alice] }\n');
    expect(problems.map((p) => p.path)).toContain('approval.required');
  });

  it('reports YAML syntax errors with their line', () => {
    const problems = problemsOf('name: x\nowner: [unclosed\n');
    expect(problems[0]?.message).toMatch(/YAML syntax/);
    expect(problems[0]?.line).toBeGreaterThan(0);
  });

  it('says clearly when the file cannot be read', () => {
    const missing = path.join(os.tmpdir(), 'runway-no-such-spec.yaml');
    expect(() => loadSpecFile(missing)).toThrow(/cannot read spec .*ENOENT/);
  });

  it('exports a JSON Schema editors can use, with durations as strings', () => {
    const schema = specJsonSchema() as {
      properties: Record<string, { properties?: Record<string, unknown> }>;
    };
    expect(schema.properties.canary?.properties?.interval).toMatchObject({ type: 'string' });
    expect(Object.keys(schema.properties)).toEqual(
      expect.arrayContaining(['name', 'slos', 'evaluation', 'approval', 'canary', 'experiment', 'rollback']),
    );
  });

  it('keeps the committed JSON Schema in step with the code', () => {
    const committed = JSON.parse(
      fs.readFileSync(path.join(__dirname, '../../specs/modelspec.schema.json'), 'utf8'),
    );
    expect(committed).toEqual(specJsonSchema());
  });
});

describe('ModelSpec reference', () => {
  it('docs/modelspec.md lists every field with its default, generated from the schema', async () => {
    const { modelSpecReference } = await import('../../specs/reference');
    const committed = fs.readFileSync(path.join(__dirname, '../../docs/modelspec.md'), 'utf8');
    expect(committed).toBe(modelSpecReference());
    expect(committed).toMatch(/`canary\.analysis\.confidence` .* `0\.98`/);
  });
});
