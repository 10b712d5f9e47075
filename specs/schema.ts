/**
 * ModelSpec: what a model needs to be promoted safely. Platform teams write it in YAML next to the
 * model's code; `runway spec validate` checks it and `runway spec schema` gives editors completion.
 *
 * The schema's input is what people write (durations as `15m`); its output is what the workflow
 * runs on (durations in milliseconds, defaults filled in). Every default is documented in
 * docs/modelspec.md, which the tests keep in step with this file.
 */
import { z } from 'zod';
import { DURATION_PATTERN, parseDuration } from './duration';
import { SERVING_DEFAULTS, UNIT_HEADER_DEFAULT } from './serving-defaults';

const duration = (what: string) =>
  z
    .string()
    .regex(DURATION_PATTERN, `expected a duration such as 30s, 15m, 24h or 1h30m (${what})`)
    .transform((text) => parseDuration(text))
    .describe(`${what}; a duration such as 30s, 15m, 24h`);

const fraction = (what: string) => z.number().min(0).max(1).describe(`${what}, between 0 and 1`);
const positiveInt = () => z.number().int().positive();

export const MODEL_NAME = /^[a-z0-9]([a-z0-9-]{0,51}[a-z0-9])?$/;

const datatype = z.enum([
  'BOOL',
  'UINT8',
  'INT8',
  'INT16',
  'INT32',
  'INT64',
  'FP16',
  'FP32',
  'FP64',
  'BYTES',
]);

const tensorSpec = z
  .object({
    name: z.string().min(1).describe('tensor name as the model declares it'),
    datatype: datatype.describe('Open Inference Protocol datatype'),
    shape: z.array(z.number().int().min(-1)).min(1).describe('dimensions; -1 for a dynamic one (the batch)'),
  })
  .strict();

const signature = z
  .object({
    inputs: z.array(tensorSpec).min(1),
    outputs: z.array(tensorSpec).min(1),
  })
  .strict()
  .describe('the model contract the integration test checks against the served metadata');

const batching = z
  .object({
    maxBatchSize: positiveInt()
      .max(4096)
      .default(SERVING_DEFAULTS.batching.maxBatchSize)
      .describe('most rows merged into one model run'),
    preferredBatchSizes: z
      .array(positiveInt())
      .default([...SERVING_DEFAULTS.batching.preferredBatchSizes])
      .describe('batch sizes that dispatch at once, without waiting for the queue delay'),
    maxQueueDelayMs: z
      .number()
      .min(0)
      .max(10_000)
      .default(SERVING_DEFAULTS.batching.maxQueueDelayMs)
      .describe('longest a request waits for others to batch with'),
    maxQueueSize: positiveInt()
      .default(SERVING_DEFAULTS.batching.maxQueueSize)
      .describe('queued requests beyond this are refused at once (503)'),
  })
  .strict();

const serving = z
  .object({
    replicas: positiveInt()
      .max(100)
      .default(SERVING_DEFAULTS.replicas)
      .describe('replicas of each version in production'),
    device: z
      .enum(['cpu', 'cuda'])
      .default(SERVING_DEFAULTS.device)
      .describe('cuda falls back to cpu, with one log line, where unavailable'),
    instances: positiveInt()
      .max(64)
      .default(SERVING_DEFAULTS.instances)
      .describe('inference sessions (worker threads) per replica'),
    threads: positiveInt().max(256).optional().describe('intra-op threads per session'),
    batching: batching.prefault({}),
    resources: z
      .object({
        cpu: z
          .string()
          .default(SERVING_DEFAULTS.resources.cpu)
          .describe('Kubernetes CPU request and limit per replica'),
        memory: z
          .string()
          .default(SERVING_DEFAULTS.resources.memory)
          .describe('Kubernetes memory request and limit per replica'),
        gpu: z
          .number()
          .int()
          .min(0)
          .default(SERVING_DEFAULTS.resources.gpu)
          .describe('nvidia.com/gpu per replica (Kubernetes)'),
      })
      .strict()
      .prefault({}),
  })
  .strict();

const slos = z
  .object({
    p99LatencyMs: z.number().positive().describe('candidate p99 latency limit, milliseconds'),
    errorRate: fraction('candidate server-error rate limit'),
    minRequests: positiveInt()
      .default(20)
      .describe('requests an interval needs before the guard may judge it; fewer is inconclusive'),
  })
  .strict();

const evaluation = z
  .object({
    dataset: z.string().min(1).describe('held-out set: JSON { features: number[][], labels: number[] }'),
    input: z.string().default('features').describe('model input the rows feed'),
    output: z.string().default('score').describe('model output holding the positive-class score'),
    metric: z.enum(['accuracy', 'auc']).default('accuracy').describe('what the evaluation compares'),
    threshold: fraction('score at or above which a row is predicted positive').default(0.5),
    min: fraction('the candidate fails below this metric value'),
    maxRegression: z
      .number()
      .min(0)
      .max(1)
      .default(0)
      .describe('largest allowed drop below the production version (absolute)'),
  })
  .strict();

const approval = z
  .object({
    required: z.number().int().min(0).default(1).describe('distinct approvals needed; 0 skips the step'),
    approvers: z.array(z.string().min(1)).default([]).describe('allow-list; empty allows anyone'),
    allowSelfApproval: z.boolean().default(false).describe('may whoever started the promotion approve it'),
    timeout: duration('how long to wait before the promotion expires').prefault('24h'),
  })
  .strict();

const integration = z
  .object({
    goldenSet: z
      .string()
      .optional()
      .describe('JSON { inputs, expected }; `{version}` in the path is replaced by the candidate version'),
    tolerance: z.number().min(0).default(1e-4).describe('absolute tolerance against expected outputs'),
    latencyRequests: positiveInt()
      .max(10_000)
      .default(50)
      .describe('sequential requests timed against the SLO'),
    maxP99LatencyMs: z
      .number()
      .positive()
      .optional()
      .describe(
        'p99 limit for the staging latency test; defaults to slos.p99LatencyMs (staging hardware may differ)',
      ),
  })
  .strict();

const shadow = z
  .object({
    enabled: z.boolean().default(true).describe('run the shadow step before the canary'),
    duration: duration('how long the shadow runs').prefault('10m'),
    mirrorPercent: z
      .number()
      .min(0)
      .max(100)
      .default(100)
      .describe('percent of live requests copied to the candidate'),
    minAgreement: fraction('share of mirrored requests whose outputs must agree').default(0.95),
    minComparisons: z.number().int().min(0).default(20).describe('comparisons needed to judge agreement'),
    tolerance: z
      .number()
      .min(0)
      .default(1e-4)
      .describe(
        'outputs agree when within this, absolutely or relative to the larger (a new model may differ)',
      ),
    maxP99LatencyMs: z
      .number()
      .positive()
      .optional()
      .describe('shadow p99 limit; defaults to slos.p99LatencyMs'),
  })
  .strict();

const canaryStep = z
  .object({
    weight: z.number().int().min(1).max(100).describe('percent of traffic on the candidate'),
    pause: duration('how long the step holds while the analysis watches'),
  })
  .strict();

const analysis = z
  .object({
    compare: z.boolean().default(true).describe('compare candidate against baseline statistically'),
    confidence: z.number().min(0.5).max(0.9999).default(0.98).describe('confidence of each comparison'),
    maxErrorRateIncrease: z
      .number()
      .min(0)
      .default(0.005)
      .describe('allowed absolute increase of the error rate over the baseline'),
    maxLatencyIncrease: z
      .number()
      .min(0)
      .default(0.1)
      .describe('allowed relative increase of latency over the baseline (0.1 = 10%)'),
    minLatencyIncreaseMs: z
      .number()
      .min(0)
      .default(5)
      .describe('latency differences below this many ms never fail, however large relatively (sub-ms noise)'),
    minSamples: positiveInt().default(50).describe('requests per variant before a comparison may judge'),
    maxInconclusive: z
      .number()
      .int()
      .min(0)
      .default(3)
      .describe('inconclusive intervals a step may extend by before pausing for a human'),
  })
  .strict();

const canary = z
  .object({
    steps: z
      .array(canaryStep)
      .min(1)
      .prefault([
        { weight: 5, pause: '5m' },
        { weight: 25, pause: '5m' },
        { weight: 50, pause: '5m' },
        { weight: 100, pause: '0s' },
      ])
      .describe('traffic steps in order; the last one should be 100'),
    interval: duration('how often the SLO guard and analysis look').prefault('1m'),
    failureLimit: positiveInt().default(2).describe('consecutive failed intervals that roll back'),
    analysis: analysis.prefault({}),
  })
  .strict();

const experiment = z
  .object({
    kind: z
      .enum(['none', 'ab', 'bandit'])
      .default('none')
      .describe('experiment between canary 50% and 100%: none, a sticky A/B, or a Thompson-sampling bandit'),
    split: z.number().int().min(1).max(99).default(50).describe('candidate percent during an A/B'),
    unitHeader: z
      .string()
      .min(1)
      .default(UNIT_HEADER_DEFAULT)
      .describe('request header carrying the sticky unit'),
    interval: duration('how often rewards are read').prefault('1m'),
    maxDuration: duration('longest the experiment may run').prefault('14d'),
    alpha: z.number().gt(0).lt(0.5).default(0.05).describe('A/B: type-I error of the sequential test'),
    minimumEffect: z.number().min(0).default(0).describe('A/B: smallest reward lift worth shipping'),
    onTimeout: z
      .enum(['keep_baseline', 'proceed'])
      .default('keep_baseline')
      .describe('A/B: what happens when maxDuration passes without a decision'),
    confidence: z
      .number()
      .min(0.5)
      .lt(1)
      .default(0.95)
      .describe('bandit: stop when one arm is best with this'),
    explorationFloor: z.number().int().min(0).max(49).default(5).describe('bandit: minimum percent per arm'),
    minRewards: z.number().int().min(0).default(100).describe('rewards per arm before any decision'),
  })
  .strict();

const rollback = z
  .object({
    scaleDownDelay: duration('how long the old version keeps running after graduation').prefault('1h'),
    onInconclusive: z
      .enum(['pause', 'rollback', 'proceed'])
      .default('pause')
      .describe('what a step does when the analysis stays inconclusive past maxInconclusive'),
  })
  .strict();

export const modelSpecSchema = z
  .object({
    apiVersion: z.literal('runway.dev/v1').default('runway.dev/v1').describe('schema version'),
    kind: z.literal('ModelSpec').default('ModelSpec').describe('document kind'),
    name: z
      .string()
      .regex(
        MODEL_NAME,
        'expected lowercase letters, digits and dashes, at most 53 characters, e.g. fraud-detector',
      ),
    owner: z.string().min(1).describe('team or person answerable for the model'),
    description: z.string().optional().describe('free text shown in status and audit'),
    model: z.object({ signature }).strict(),
    serving: serving.prefault({}),
    slos,
    evaluation,
    approval: approval.prefault({}),
    integration: integration.prefault({}),
    shadow: shadow.prefault({}),
    canary: canary.prefault({}),
    experiment: experiment.prefault({}),
    rollback: rollback.prefault({}),
  })
  .strict()
  .superRefine((spec, ctx) => {
    const weights = spec.canary.steps.map((s) => s.weight);
    weights.forEach((w, i) => {
      if (i > 0 && w <= (weights[i - 1] ?? 0)) {
        ctx.addIssue({
          code: 'custom',
          path: ['canary', 'steps', i, 'weight'],
          message: `expected weights to increase step by step; ${w} follows ${weights[i - 1]}`,
        });
      }
    });
    const preferred = spec.serving.batching.preferredBatchSizes.filter(
      (b) => b > spec.serving.batching.maxBatchSize,
    );
    if (preferred.length > 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['serving', 'batching', 'preferredBatchSizes'],
        message: `expected sizes ≤ maxBatchSize (${spec.serving.batching.maxBatchSize}); got ${preferred.join(', ')}`,
      });
    }
    if (spec.approval.approvers.length > 0 && spec.approval.required > spec.approval.approvers.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['approval', 'required'],
        message: `expected at most ${spec.approval.approvers.length} (the number of approvers listed)`,
      });
    }
  });

/** What people write. */
export type ModelSpecInput = z.input<typeof modelSpecSchema>;
/** What the workflow runs on: defaults filled, durations in milliseconds, paths absolute. */
export type ModelSpec = z.output<typeof modelSpecSchema>;
export type CanaryStep = ModelSpec['canary']['steps'][number];
export type AnalysisSettings = ModelSpec['canary']['analysis'];
export type ExperimentSettings = ModelSpec['experiment'];
