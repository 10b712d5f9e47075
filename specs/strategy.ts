/**
 * Rollout strategies: each is a choice of traffic steps for the same runbook, not a copy of it.
 *
 * - `canary` (the default): the spec's `canary.steps`, e.g. 5 → 25 → 50 → 100%.
 * - `linear` (SageMaker's LINEAR): equal steps of `linear.stepPercent` every `linear.interval`.
 * - `blue-green` (Argo's and Flagger's blue-green, SageMaker's all-at-once): the candidate runs at
 *   full size beside the baseline, optionally takes preview traffic by header, then takes 100% at
 *   once; the guard watches it there for `blueGreen.watchAfterSwitch` while the baseline, still at
 *   full size, can take the traffic back at once.
 *
 * Canary and linear steps below 100% compare the candidate with the baseline; a blue-green preview
 * (the baseline serves everyone else, so the populations differ) and its switch (no baseline
 * traffic left) are judged by the SLO guard alone. Pure: workflow code imports it.
 */
import { formatDuration } from './duration';
import type { ModelSpec } from './schema';

export const STRATEGIES = ['canary', 'blue-green', 'linear'] as const;
export type Strategy = (typeof STRATEGIES)[number];

/** The canary steps a spec that names none walks (as written: durations as text). */
export const DEFAULT_CANARY_STEPS = [
  { weight: 5, pause: '5m' },
  { weight: 25, pause: '5m' },
  { weight: 50, pause: '5m' },
  { weight: 100, pause: '0s' },
] as const;

/** The header that sends a request to a blue-green candidate before the switch. */
export const PREVIEW_HEADER_DEFAULT = 'x-runway-preview';

/** Specs from before strategies (recorded histories, older clients) are canaries. */
export function strategyOf(spec: { strategy?: Strategy }): Strategy {
  return spec.strategy ?? 'canary';
}

/** Linear weights: stepPercent, 2 × stepPercent, … while below 100, then 100. */
export function linearWeights(stepPercent: number): number[] {
  if (!Number.isInteger(stepPercent) || stepPercent < 1 || stepPercent > 99) {
    throw new Error(`linear.stepPercent: expected an integer 1–99, got ${stepPercent}`);
  }
  const out: number[] = [];
  for (let w = stepPercent; w < 100; w += stepPercent) out.push(w);
  out.push(100);
  return out;
}

/** One step of traffic as the runbook walks it. */
export interface TrafficStep {
  /** Candidate percent. */
  weight: number;
  /** How long the step holds while the analysis looks, ms. */
  pause: number;
  /** The comparison with the baseline judges this step (the baseline serves the rest of its traffic). */
  compare: boolean;
  /** Requests carrying this header (with this value, when set) go to the candidate whatever the weights. */
  preview?: { header: string; value?: string };
  /**
   * Blue-green's switch: held at 100% under the SLO guard before graduation. In the other
   * strategies a 100% step is graduation itself.
   */
  held: boolean;
  /** What the step is called in traffic changes, details and status. */
  label: string;
}

/** What a strategy's fields look like once parsed (what the workflow runs on). */
type StrategySpec = Pick<ModelSpec, 'canary'> & {
  strategy?: Strategy;
  blueGreen?: ModelSpec['blueGreen'];
};

/**
 * The steps the spec's strategy walks between shadow (or integration) and graduation. For canary
 * and linear they are `canary.steps` one for one (the schema derives linear's), so a step index
 * means the same in both lists and in specs recorded before strategies existed.
 */
export function trafficSteps(spec: StrategySpec): TrafficStep[] {
  const strategy = strategyOf(spec);
  if (strategy === 'blue-green') {
    const bg = spec.blueGreen;
    const steps: TrafficStep[] = [];
    if (bg?.preview) {
      const { header, value, duration } = bg.preview;
      steps.push({
        weight: 0,
        pause: duration,
        compare: false,
        preview: value === undefined ? { header } : { header, value },
        held: true,
        label: `blue-green preview: candidate at 0%, requests with ${header}${value === undefined ? '' : `: ${value}`} to it`,
      });
    }
    steps.push({
      weight: 100,
      pause: bg?.watchAfterSwitch ?? 0,
      compare: false,
      held: true,
      label: 'blue-green switch: candidate at 100%, baseline kept at full size',
    });
    return steps;
  }
  return spec.canary.steps.map((s, i) => ({
    weight: s.weight,
    pause: s.pause,
    compare: true,
    held: false,
    label: `${strategy === 'linear' ? 'linear' : 'canary'} step ${i + 1}: ${s.weight}%`,
  }));
}

/**
 * Candidate weights of the steps whose comparison spends the false-rollback budget: canary and
 * linear steps below 100%. Blue-green's steps are judged by the guard alone, so none.
 */
export function comparingWeights(spec: StrategySpec): number[] {
  return trafficSteps(spec).map((s) => (s.compare ? s.weight : 100));
}

/**
 * The steps as people read them, e.g. `5%/5m`, `preview by x-runway-preview 0%/5m`, `100%/5m`
 * (a held 100% step: blue-green's switch); graduation itself is left out.
 */
export function stepTexts(spec: StrategySpec): string[] {
  return trafficSteps(spec)
    .filter((s) => s.weight < 100 || s.held)
    .map(
      (s) => `${s.preview ? `preview by ${s.preview.header} ` : ''}${s.weight}%/${formatDuration(s.pause)}`,
    );
}

/** Which strategy a top-level field belongs to, for the refusal of one strategy's field under another. */
const OWNED: { path: string[]; strategy: Strategy; what: string }[] = [
  { path: ['canary', 'steps'], strategy: 'canary', what: 'the canary strategy’s steps' },
  { path: ['linear'], strategy: 'linear', what: 'the linear strategy’s settings' },
  { path: ['blueGreen'], strategy: 'blue-green', what: 'the blue-green strategy’s settings' },
];

const HOW: Record<Strategy, string> = {
  canary: 'walks canary.steps',
  linear: 'walks equal steps of linear.stepPercent every linear.interval',
  'blue-green': 'switches 0 → 100% at once, after blueGreen.preview when set',
};

/** What the schema's cross-strategy check reads: the spec as written (fields absent when not written). */
export interface WrittenStrategyFields {
  strategy: Strategy;
  canary: { steps?: unknown };
  linear?: unknown;
  blueGreen?: unknown;
  experiment: { kind: string };
}

/** Fields of one strategy written under another, and what a strategy needs but lacks. */
export function strategyProblems(spec: WrittenStrategyFields): { path: string[]; message: string }[] {
  const out: { path: string[]; message: string }[] = [];
  const s = spec.strategy;
  for (const field of OWNED) {
    if (field.strategy === s) continue;
    const value = field.path.reduce<unknown>(
      (v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined),
      spec,
    );
    if (value === undefined) continue;
    out.push({
      path: field.path,
      message: `${field.path.join('.')} is ${field.what}, but strategy is ${s} (which ${HOW[s]}): remove it, or set strategy: ${field.strategy}`,
    });
  }
  if (s === 'linear' && spec.linear === undefined) {
    out.push({
      path: ['linear'],
      message: 'strategy linear needs linear.stepPercent (e.g. 20; linear.interval defaults to 5m)',
    });
  }
  if (s === 'blue-green' && spec.experiment.kind !== 'none') {
    out.push({
      path: ['experiment', 'kind'],
      message: `an experiment (${spec.experiment.kind}) splits traffic between the versions, but strategy blue-green switches all of it at once: use strategy canary or linear, or experiment.kind none`,
    });
  }
  return out;
}
