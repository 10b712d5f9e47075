/**
 * One run of the promotion: its input, carried state and per-run bookkeeping, and the moves every
 * stage makes (enter a stage, route traffic, show progress in the Temporal UI). Stage modules take
 * a Promotion and read like the runbook's steps.
 */
import { log, patched, setCurrentDetails, upsertMemo, upsertSearchAttributes } from '@temporalio/workflow';
import type { PreparedPromotion, TrafficVariant, VersionRef } from '../../activities/contracts';
import type { ModelSpec } from '../../specs/schema';
import { strategyOf, type Strategy } from '../../specs/strategy';
import type { Outcome, PromotionControls, PromotionInput, PromotionState, Stage, Verdict } from '../api';
import { quick, run, slow } from '../activity-calls';
import { deploymentName, variantName } from '../deployments';
import { RunwayOutcome, RunwayStage } from '../search-attributes';
import { initialState } from './state';

export type Mirror = { variant: string; percent: number; tolerance?: number; threshold?: number };

export class Promotion {
  readonly spec: ModelSpec;
  readonly model: string;
  readonly version: string;
  /** The candidate's variant in the route: `v7`. */
  readonly candidate: string;
  /** Which traffic steps the promotion walks (specs/strategy.ts); specs from before it: canary. */
  readonly strategy: Strategy;
  readonly state: PromotionState;
  /** Requests from people, carried with the state. */
  readonly controls: PromotionControls;
  /** Artifacts and baseline, verified at the start of every run. */
  prepared?: PreparedPromotion;
  outcome?: { outcome: Outcome; reason: string };
  /** Every verdict this run reached, for the result. */
  readonly verdicts: Verdict[] = [];
  /** Query-only bookkeeping (no commands), so replay is unaffected. */
  readonly stagesEntered: Stage[] = [];
  /**
   * Controls are checked for authority (authority.ts) and a refused one is recorded and ignored.
   * Runs started before the check take every control, as they did when recorded.
   */
  readonly authority: boolean;

  constructor(readonly input: PromotionInput) {
    this.spec = input.spec;
    this.model = input.spec.name;
    this.version = input.version;
    this.candidate = variantName(input.version);
    this.strategy = strategyOf(input.spec);
    this.state = input.resume ?? initialState();
    this.controls = this.state.controls ??= {};
    this.authority = patched('control-authority');
  }

  /**
   * The spec's `notify` for the notify activity. A promotion started before the field existed has
   * none in its input, whatever the type says.
   */
  get notifyRoute(): { route: NonNullable<ModelSpec['notify']> } | Record<string, never> {
    const route = (this.spec as Partial<ModelSpec>).notify;
    return route && (route.webhooks || route.events) ? { route } : {};
  }

  get baseline(): VersionRef | undefined {
    return this.prepared?.baseline;
  }

  /** True when the carried state is at one of these stages (a continued run skips what is done). */
  at(...stages: Stage[]): boolean {
    return stages.includes(this.state.stage);
  }

  enter(stage: Stage, detail?: string): void {
    this.state.stage = stage;
    this.stagesEntered.push(stage);
    upsertSearchAttributes([{ key: RunwayStage, value: stage }]);
    log.info(`stage ${stage}${detail ? `: ${detail}` : ''}`);
    this.refreshDetails(detail);
  }

  /**
   * The outcome where people look for it: the RunwayOutcome search attribute (a column the UI's
   * list can show), a memo with the reason (describe, `temporal workflow list`), and the details.
   * "Completed" alone would read as success for a rejected or rolled-back promotion.
   */
  recordOutcome(final: { outcome: Outcome; reason: string }, done = false): void {
    // One upsert, as before the memo: the stage goes to `done` in the same command when asked.
    upsertSearchAttributes([
      ...(done ? [{ key: RunwayStage, value: 'done' }] : []),
      { key: RunwayOutcome, value: final.outcome },
    ]);
    if (patched('outcome-memo')) upsertMemo({ outcome: final.outcome, reason: final.reason });
    this.refreshDetails(`outcome: ${final.outcome} — ${final.reason}`);
  }

  /** Verdicts that decide the current step: shown in status and kept for the result. */
  judged(...current: Verdict[]): void {
    this.state.lastVerdicts = current;
    this.verdicts.push(...current);
  }

  /** What the Temporal UI shows in the workflow's details. */
  refreshDetails(extra?: string): void {
    const { state } = this;
    const weights = Object.entries(state.weights)
      .map(([v, w]) => `${v} ${w}%`)
      .join(', ');
    const mirror = state.mirror;
    const lines = [
      `**${this.model}** v${this.version} — stage **${state.stage}**${state.paused ? ' (PAUSED)' : ''}${this.strategy === 'canary' ? '' : ` (strategy ${this.strategy})`}`,
      weights
        ? `traffic: ${weights}${mirror ? `; mirror ${mirror.percent}% → ${mirror.variant}` : ''}${state.preview ? `; preview by ${state.preview.header} → ${this.candidate}` : ''}`
        : '',
      state.pendingAction ? `waiting for: ${state.pendingAction}` : '',
      ...state.lastVerdicts.map((v) => `${v.check}: ${v.result} — ${v.reason}`),
      extra ?? '',
    ].filter(Boolean);
    setCurrentDetails(lines.join('\n\n'));
  }

  /**
   * Routes traffic; `withMirror` is explicit (undefined = no mirror) so no stale shadow lingers,
   * and so is a preview (undefined = none). Under blue-green every version keeps its full size.
   */
  async setTraffic(
    variants: TrafficVariant[],
    reason: string,
    withMirror: Mirror | undefined,
    preview?: { header: string; value?: string },
  ): Promise<void> {
    await run(
      'setTraffic',
      `route ${variants.map((v) => `${v.name}=${v.weight}%`).join(' ')}: ${reason}`,
      // A route change scales the fleet around it (scaleWithWeight) and waits for the rollout:
      // minutes on a GPU cluster, past quick's 30 s. Older runs keep the options they recorded.
      patched('traffic-waits-for-rollouts') ? slow : quick,
      {
        model: this.model,
        variants,
        mirror: withMirror,
        sticky: { header: this.spec.experiment.unitHeader },
        // Only a field of the activity's input (absent in specs older than reward shapes): no new command.
        reward: this.spec.experiment.reward,
        // Fields of the activity's input alone (no new command), only for the strategies that use them.
        ...(preview ? { preview: { variant: this.candidate, ...preview } } : {}),
        ...(this.strategy === 'blue-green' ? { sizing: 'full' as const } : {}),
        reason,
      },
    );
    const { state } = this;
    state.mirror = withMirror;
    state.preview = preview;
    state.weights = Object.fromEntries(variants.map((v) => [v.name, v.weight]));
    state.trafficChanges.push({
      at: new Date().toISOString(),
      stage: state.stage,
      weights: state.weights,
      mirror: withMirror,
      ...(preview ? { preview } : {}),
      reason,
    });
    this.refreshDetails();
  }

  /** The candidate at `candidateWeight`%, the baseline (if any) at the rest. */
  split(candidateWeight: number): TrafficVariant[] {
    const base = this.baseline;
    const variants: TrafficVariant[] = [];
    if (base) {
      variants.push({
        name: variantName(base.version),
        deployment: deploymentName(this.model, base.version, 'production'),
        weight: 100 - candidateWeight,
      });
    }
    variants.push({
      name: this.candidate,
      deployment: deploymentName(this.model, this.version, 'production'),
      weight: base ? candidateWeight : 100,
    });
    return variants;
  }
}
