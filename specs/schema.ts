/**
 * ModelSpec: what a model needs to be promoted safely. Platform teams write it in YAML next to the
 * model's code; `runway spec validate` checks it and `runway spec schema` gives editors completion.
 *
 * The schema's input is what people write (durations as `15m`); its output is what the workflow
 * runs on (durations in milliseconds, defaults filled in). Every default is documented in
 * docs/modelspec.md, which the tests keep in step with this file.
 */
import { z } from 'zod';
import { FILTER_NAMES } from '../notifications/events';
import { DURATION_PATTERN, parseDuration } from './duration';
import { SERVING_DEFAULTS, UNIT_HEADER_DEFAULT } from './serving-defaults';
import {
  DEFAULT_CANARY_STEPS,
  linearWeights,
  PREVIEW_HEADER_DEFAULT,
  STRATEGIES,
  strategyProblems,
} from './strategy';

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
    threads: positiveInt()
      .max(256)
      .optional()
      .describe(
        "intra-op threads per session; default: the cores divided among the instances (on Kubernetes, the CPU limit's cores)",
      ),
    spinWait: z
      .boolean()
      .optional()
      .describe(
        "let onnxruntime's idle threads spin-wait for work: lower latency for a lone client on dedicated cores, CPU taken from the HTTP thread (and a CPU limit) under load. Default off",
      ),
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

/** Evaluation metrics by name (activities/evaluation-metrics.ts computes them). */
export const METRIC_NAMES = [
  'accuracy',
  'auc',
  'precision',
  'recall',
  'f1',
  'logloss',
  'top1',
  'topk',
  'macro_f1',
  'rmse',
  'mae',
  'r2',
] as const;
/** Metrics where smaller is better: their gates take `max`, not `min`. */
const LOWER_IS_BETTER = ['logloss', 'rmse', 'mae'];
const METRIC_TASKS: Record<(typeof METRIC_NAMES)[number], string[]> = {
  accuracy: ['binary', 'multiclass'],
  auc: ['binary'],
  precision: ['binary'],
  recall: ['binary'],
  f1: ['binary'],
  logloss: ['binary'],
  top1: ['multiclass'],
  topk: ['multiclass'],
  macro_f1: ['multiclass'],
  rmse: ['regression'],
  mae: ['regression'],
  r2: ['regression'],
};

const gate = z
  .object({
    metric: z
      .enum(METRIC_NAMES)
      .describe(
        'binary: accuracy, auc, precision, recall, f1 (at the threshold), logloss; multiclass: top1 (= accuracy), topk, macro_f1; regression: rmse, mae, r2',
      ),
    k: z.number().int().min(2).optional().describe('topk: how many top classes count as a hit'),
    min: z
      .number()
      .optional()
      .describe('the candidate fails below this value (metrics where larger is better)'),
    max: z.number().optional().describe('the candidate fails above this value (logloss, rmse, mae)'),
    maxRegression: z
      .number()
      .min(0)
      .default(0)
      .describe("largest allowed change for the worse against production (absolute, in the metric's unit)"),
  })
  .strict();

const evaluation = z
  .object({
    dataset: z
      .string()
      .min(1)
      .describe(
        'held-out set: .json { features: number[][], labels: number[] }, .csv with a header, .npz (arrays by name) or .npy (with labelsFile)',
      ),
    task: z
      .enum(['binary', 'multiclass', 'regression'])
      .default('binary')
      .describe(
        'what the model predicts: binary (positive-class score), multiclass (class scores), regression (a value)',
      ),
    input: z.string().default('features').describe('model input the rows feed (when `inputs` is not set)'),
    inputs: z
      .record(z.string(), z.union([z.string(), z.array(z.string()).min(1)]))
      .optional()
      .describe(
        'multi-input models: model input → CSV columns, or the JSON key / .npz array that holds it; default: the `input` gets every column but the label and slice column (CSV) or `features`',
      ),
    output: z.string().default('score').describe('model output holding the scores (or the predicted value)'),
    label: z
      .string()
      .optional()
      .describe('label column or key (default: `label` in CSV, `labels` otherwise)'),
    labelsFile: z.string().optional().describe('.npy dataset: the labels in their own .npy'),
    metric: z
      .enum(['accuracy', 'auc'])
      .default('accuracy')
      .describe('the one metric when `metrics` is not set'),
    threshold: fraction('score at or above which a row is predicted positive').default(0.5),
    min: fraction('the candidate fails below this metric value (with `metric`)').optional(),
    maxRegression: z
      .number()
      .min(0)
      .max(1)
      .default(0)
      .describe('largest allowed drop below the production version (absolute, with `metric`)'),
    metrics: z
      .array(gate)
      .min(1)
      .optional()
      .describe(
        'several metrics, each a gate on the candidate and on its regression; replaces metric/min/maxRegression',
      ),
    slices: z
      .object({
        column: z.string().min(1).describe('column (or key) whose values split the rows, e.g. country'),
        minRows: positiveInt().default(30).describe('slices with fewer rows are reported and not judged'),
      })
      .strict()
      .optional()
      .describe('every gate also per value of a column (fairness checks)'),
    bootstrap: z
      .object({
        resamples: z
          .number()
          .int()
          .min(0)
          .max(100_000)
          .default(1000)
          .describe('paired bootstrap resamples; 0 compares the point values only'),
        confidence: z
          .number()
          .min(0.5)
          .max(0.9999)
          .default(0.95)
          .describe('one-sided confidence that a regression is real'),
        seed: z
          .number()
          .int()
          .min(0)
          .default(1)
          .describe('the resampling seed: the same data gives the same verdict'),
      })
      .strict()
      .prefault({})
      .describe('a regression beyond maxRegression fails only when the bootstrap says it is real, not noise'),
  })
  .strict()
  .superRefine((e, ctx) => {
    if (e.metrics && e.min !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['metrics'],
        message: 'set either min (with metric) for one metric, or metrics for several, not both',
      });
    }
    if (!e.metrics && e.min === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['min'],
        message: 'expected min (with metric), or a metrics list',
      });
    }
    if (!e.metrics && e.task !== 'binary') {
      ctx.addIssue({
        code: 'custom',
        path: ['metrics'],
        message: `task ${e.task} needs a metrics list (metric/min are the binary shorthand)`,
      });
    }
    (e.metrics ?? []).forEach((g, i) => {
      if (!METRIC_TASKS[g.metric].includes(e.task)) {
        ctx.addIssue({
          code: 'custom',
          path: ['metrics', i, 'metric'],
          message: `${g.metric} does not apply to a ${e.task} model; expected one of ${METRIC_NAMES.filter((m) => METRIC_TASKS[m].includes(e.task)).join(', ')}`,
        });
      }
      if (g.metric === 'topk' && g.k === undefined)
        ctx.addIssue({ code: 'custom', path: ['metrics', i, 'k'], message: 'topk needs k (e.g. 5)' });
      const lower = LOWER_IS_BETTER.includes(g.metric);
      if (lower && g.min !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['metrics', i, 'min'],
          message: `${g.metric}: smaller is better, use max`,
        });
      if (!lower && g.max !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['metrics', i, 'max'],
          message: `${g.metric}: larger is better, use min`,
        });
    });
    if (e.dataset.endsWith('.npy') && !e.labelsFile) {
      ctx.addIssue({
        code: 'custom',
        path: ['labelsFile'],
        message: "a .npy dataset needs labelsFile (the labels' .npy)",
      });
    }
  });

const approval = z
  .object({
    required: z.number().int().min(0).default(1).describe('distinct approvals needed; 0 skips the step'),
    approvers: z.array(z.string().min(1)).default([]).describe('allow-list; empty allows anyone'),
    allowSelfApproval: z.boolean().default(false).describe('may whoever started the promotion approve it'),
    timeout: duration('how long to wait before the promotion expires').prefault('24h'),
    operators: z
      .array(z.string().min(1))
      .default([])
      .describe(
        'beside the approvers, who may take the controls that skip or overrule the analysis (promote-full, resume past an inconclusive pause); with neither list, anyone may',
      ),
    brakes: z
      .enum(['anyone', 'operators'])
      .default('anyone')
      .describe(
        'who may pause and roll back: anyone (each pull recorded), or only the operators and approvers',
      ),
    identity: z
      .enum(['payload', 'signed'])
      .default('payload')
      .describe(
        'how a decision proves who made it: `payload` trusts the name in it; `signed` needs an ed25519 signature by a key of that name in the platform keyring (runway keys init); the platform policy may require signed',
      ),
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
    minDecisionAgreement: fraction(
      'share of mirrored outputs whose decision (same side of evaluation.threshold) must agree; 0 reports it only',
    ).default(0),
    maxShift: z
      .number()
      .min(0)
      .max(0.5)
      .default(0.2)
      .describe(
        'of the outputs that moved beyond the tolerance (or decisions that flipped), the share moving one way may exceed one half by this much before the sequential shift test fails the shadow (0.2: up to 70% one way; 0.5 turns it off)',
      ),
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
    method: z
      .enum(['sequential', 'interval'])
      .default('sequential')
      .describe(
        "sequential: each look judges everything seen so far with anytime-valid tests (errors over all the promotion's canary steps, latency over the step), one crossing rolls back; interval: each interval judged alone, failureLimit fails in a row (the analysis before 0.2)",
      ),
    falseRollbackRate: z
      .number()
      .gt(0)
      .max(0.2)
      .default(0.01)
      .describe(
        'sequential: chance that a candidate as good as the baseline is rolled back by the comparison, over the whole promotion (60% to one error test over all steps, the rest split across steps for latency; docs/analysis.md)',
      ),
    confidence: z
      .number()
      .min(0.5)
      .max(0.9999)
      .default(0.98)
      .describe('interval method only: confidence of each comparison at each look'),
    maxErrorRateIncrease: z
      .number()
      .min(0)
      .lt(1)
      .default(0)
      .describe(
        'allowed absolute increase of the error rate over the baseline (0.001 = 0.1 percentage point); with the relative allowance, the larger applies',
      ),
    maxRelativeErrorRateIncrease: z
      .number()
      .min(0)
      .default(0.2)
      .describe(
        'sequential: allowed relative increase of the error rate (0.2 = 20% more errors than the baseline)',
      ),
    latencyEquality: z
      .boolean()
      .default(true)
      .describe(
        'sequential: also fail a candidate whose latency distribution changed shape beyond the tolerance (faster or narrower too), not only a slower one',
      ),
    maxLatencyIncrease: z
      .number()
      .min(0)
      .default(0.1)
      .describe('allowed relative increase of latency over the baseline (0.1 = 10%)'),
    minLatencyIncreaseMs: z
      .number()
      .min(0)
      .default(1)
      .describe(
        'latency differences below this many ms never fail, however large relatively (sub-ms noise; the router histogram resolves 0.5 ms at the bottom)',
      ),
    minSamples: positiveInt().default(50).describe('requests per variant before a comparison may judge'),
    maxCostIncrease: z
      .number()
      .min(0)
      .optional()
      .describe(
        'allowed relative increase of the cost per 1,000 inferences over the baseline at full load (0.2 = 20% dearer); needs prices in the platform config (cost); unset: cost is shown, never judged',
      ),
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
    // No default in the schema itself: whether steps were written decides whether a linear or
    // blue-green spec wrongly carries them; the spec's transform fills the default below.
    steps: z
      .array(canaryStep)
      .min(1)
      .optional()
      .describe('strategy canary: traffic steps in order; the last one should be 100'),
    interval: duration('how often the SLO guard and analysis look').prefault('1m'),
    failureLimit: positiveInt()
      .default(2)
      .describe(
        'consecutive failed intervals of the SLO guard that roll back (and of the comparison with method interval); a sequential comparison needs one crossing',
      ),
    analysis: analysis.prefault({}),
  })
  .strict();

const finiteNumber = z.number().refine(Number.isFinite, 'expected a finite number');

/**
 * What a reward may be. `binary`: 0 or 1 (a conversion; what a Beta-Bernoulli bandit models).
 * `bounded`: a continuous metric in [min, max], scaled to [0, 1] by the router before counting.
 */
const rewardShape = z
  .union([
    z.literal('binary'),
    z
      .object({
        bounded: z
          .object({
            min: finiteNumber.describe('smallest reward a client may send'),
            max: finiteNumber.describe('largest reward a client may send'),
          })
          .strict()
          .refine((b) => b.min < b.max && Number.isFinite(b.max - b.min), {
            message: 'expected min < max with a finite difference',
            path: ['max'],
          }),
      })
      .strict(),
  ])
  .describe(
    'rewards the router accepts: binary (0 or 1) or { bounded: { min, max } } for a continuous metric; anything else is refused with 400. Default: binary for a bandit, { bounded: { min: 0, max: 1 } } for an A/B',
  );

export type RewardShape = z.output<typeof rewardShape>;

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
    reward: rewardShape.optional(),
    maxFeedbackRejected: fraction(
      "share of a variant's feedback the router may refuse (repeats, rewards outside the shape) before the experiment stops trusting it and stays inconclusive",
    ).default(0.1),
  })
  .strict()
  // The reward shape defaults by kind, so a bandit gets 0/1 and an A/B keeps the [0, 1] it always took.
  .transform((e) => ({
    ...e,
    reward: e.reward ?? (e.kind === 'ab' ? { bounded: { min: 0, max: 1 } } : ('binary' as RewardShape)),
  }));

const linear = z
  .object({
    stepPercent: z
      .number()
      .int()
      .min(1)
      .max(99)
      .describe('strategy linear: candidate percent added at each step (20: 20, 40, 60, 80, 100)'),
    interval: duration('strategy linear: how long each step holds while the analysis watches').prefault('5m'),
  })
  .strict()
  .describe('strategy linear only');

const preview = z
  .object({
    header: z
      .string()
      .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'expected a valid HTTP header name')
      .default(PREVIEW_HEADER_DEFAULT)
      .describe('requests carrying this header go to the candidate before the switch'),
    value: z
      .string()
      .min(1)
      .optional()
      .describe('only requests whose header has this value (default: any value)'),
    duration: duration('how long the preview runs, the SLO guard judging the preview traffic').prefault('5m'),
  })
  .strict();

const blueGreen = z
  .object({
    preview: preview
      .optional()
      .describe('preview traffic by header before the switch (the candidate otherwise at 0%)'),
    watchAfterSwitch: duration(
      'how long the SLO guard watches the candidate at 100% before graduation; a breach switches back to the full-size baseline at once',
    ).prefault('5m'),
  })
  .strict()
  .describe('strategy blue-green only');

const rollback = z
  .object({
    scaleDownDelay: duration('how long the old version keeps running after graduation').prefault('1h'),
    onInconclusive: z
      .enum(['pause', 'rollback', 'proceed'])
      .default('pause')
      .describe('what a step does when the analysis stays inconclusive past maxInconclusive'),
  })
  .strict();

/** One multi-window burn-rate alert: both windows must burn the budget `factor` times too fast. */
const burnAlert = z
  .object({
    factor: z.number().positive().describe('burn rate (times the sustainable rate) both windows must reach'),
    long: duration('the long window, which says the burn is significant'),
    short: duration(
      'the short window, which says it is still happening (and ends the alert soon after it stops)',
    ),
  })
  .strict();

const drift = z
  .object({
    enabled: z.boolean().default(true).describe('keep input and prediction histograms and judge their drift'),
    bins: z
      .number()
      .int()
      .min(2)
      .max(50)
      .default(10)
      .describe("bins per feature: edges at the evaluation dataset's quantiles, taken at deploy time"),
    edges: z
      .record(z.string(), z.array(finiteNumber).min(1))
      .optional()
      .describe("bin edges by feature name (or `prediction`) instead of the dataset's quantiles"),
    features: z
      .array(z.string().min(1))
      .optional()
      .describe("names of the input's columns, in order (default f0, f1, ...)"),
    sampleRate: fraction('share of requests whose rows the model server counts into its histograms').default(
      0.1,
    ),
    window: duration('span of traffic each drift judgement covers (tumbling windows)').prefault('1h'),
    minSamples: positiveInt()
      .default(500)
      .describe(
        'sampled rows a window needs before it is judged (fewer: PSI noise alone passes 0.1 on some feature in about 1 window in 4 at 200 rows; bench/results/watch-*.md)',
      ),
    notice: z.number().positive().default(0.1).describe('PSI from which a feature is reported (notify)'),
    act: z.number().positive().default(0.25).describe('PSI from which the action runs'),
    ksAlpha: z
      .number()
      .gt(0)
      .lt(0.5)
      .default(0.001)
      .describe(
        'binned Kolmogorov-Smirnov test: a shift also needs p below this to act (no action on noise)',
      ),
    action: z
      .enum(['notify', 'retrain', 'rollback'])
      .default('notify')
      .describe('what a drift at `act` does: notify, retrain (POST the numbers to webhook) or rollback'),
    webhook: z
      .string()
      .url()
      .optional()
      .describe("action retrain: the training pipeline's URL; runway POSTs the drift report as JSON"),
  })
  .strict()
  .superRefine((d, ctx) => {
    if (d.action === 'retrain' && !d.webhook)
      ctx.addIssue({ code: 'custom', path: ['webhook'], message: 'action retrain needs a webhook URL' });
    if (d.act < d.notice)
      ctx.addIssue({ code: 'custom', path: ['act'], message: `expected act ≥ notice (${d.notice})` });
    for (const [name, edges] of Object.entries(d.edges ?? {})) {
      const i = edges.findIndex((e, k) => k > 0 && e <= edges[k - 1]!);
      if (i > 0)
        ctx.addIssue({ code: 'custom', path: ['edges', name, i], message: 'expected increasing edges' });
    }
  });

const watch = z
  .object({
    duration: duration('how long the watch runs on a graduated version; 0s turns it off').prefault('24h'),
    interval: duration('how often the watch reads the counters').prefault('1m'),
    latencyTarget: z
      .number()
      .gt(0)
      .lt(1)
      .default(0.99)
      .describe('latency SLO: this share of requests answers within slos.p99LatencyMs (budget: the rest)'),
    page: z
      .array(burnAlert)
      .prefault([
        { factor: 14.4, long: '1h', short: '5m' },
        { factor: 6, long: '6h', short: '30m' },
      ])
      .describe("page alerts (default 14.4× over 1h and 5m, 6× over 6h and 30m: the SRE Workbook's)"),
    ticket: z
      .array(burnAlert)
      .prefault([{ factor: 3, long: '1d', short: '2h' }])
      .describe('ticket alerts, notify only (default 3× over 1d and 2h)'),
    onPage: z
      .enum(['rollback', 'notify'])
      .default('rollback')
      .describe('a page once the previous version has scaled down: roll back to it (redeployed) or notify'),
    drift: drift.prefault({}),
  })
  .strict();

const notify = z
  .object({
    webhooks: z
      .array(z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'expected a webhook name such as oncall-slack'))
      .optional()
      .describe(
        "which of the platform config's webhooks (notifications.webhooks[].name) hear about this model; unset: every webhook whose own filters select the event",
      ),
    events: z
      .array(
        z.string().refine((e) => FILTER_NAMES.includes(e), {
          message: `expected an event or kind: ${FILTER_NAMES.join(', ')}`,
        }),
      )
      .optional()
      .describe(
        'only these events or kinds (docs/notifications.md), e.g. [rolled_back, watch_alert]; unset: all',
      ),
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
    strategy: z
      .enum(STRATEGIES)
      .default('canary')
      .describe(
        'canary: canary.steps; linear: equal steps of linear.stepPercent every linear.interval; blue-green: the candidate at full size beside the baseline, optional preview by header, then 0 → 100% at once',
      ),
    linear: linear.optional(),
    blueGreen: blueGreen.optional(),
    shadow: shadow.prefault({}),
    canary: canary.prefault({}),
    experiment: experiment.prefault({}),
    rollback: rollback.prefault({}),
    watch: watch.prefault({}),
    notify: notify.prefault({}),
  })
  .strict()
  .superRefine((spec, ctx) => {
    for (const problem of strategyProblems(spec)) {
      ctx.addIssue({ code: 'custom', path: problem.path, message: problem.message });
    }
    const weights = (spec.canary.steps ?? []).map((s) => s.weight);
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
  })
  // The steps the strategy walks, derived once here so the workflow, status and audit read one list.
  .transform(({ canary, ...spec }) => ({
    ...spec,
    // A blue-green spec without the block runs on its defaults (no preview, the switch watched 5m).
    blueGreen: spec.strategy === 'blue-green' ? (spec.blueGreen ?? blueGreen.parse({})) : spec.blueGreen,
    canary: {
      ...canary,
      steps:
        spec.strategy === 'linear' && spec.linear
          ? linearWeights(spec.linear.stepPercent).map((weight) => ({
              weight,
              pause: weight < 100 ? spec.linear!.interval : 0,
            }))
          : spec.strategy === 'blue-green'
            ? [{ weight: 100, pause: 0 }]
            : (canary.steps ?? defaultCanarySteps()),
    },
  }));

/** What people write. */
export type ModelSpecInput = z.input<typeof modelSpecSchema>;
/** What the workflow runs on: defaults filled, durations in milliseconds, paths absolute. */
export type ModelSpec = z.output<typeof modelSpecSchema>;
export type CanaryStep = ModelSpec['canary']['steps'][number];

/** The canary strategy's steps when the spec names none, parsed (durations in ms). */
export function defaultCanarySteps(): { weight: number; pause: number }[] {
  return DEFAULT_CANARY_STEPS.map((s) => ({ weight: s.weight, pause: parseDuration(s.pause) }));
}
export type AnalysisSettings = ModelSpec['canary']['analysis'];
export type ExperimentSettings = ModelSpec['experiment'];
export type WatchSettings = ModelSpec['watch'];
export type BurnAlert = WatchSettings['page'][number];
