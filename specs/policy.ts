/**
 * The platform policy: per model name or glob, the gates a ModelSpec may not weaken. The spec
 * comes from whoever starts the promotion, the policy from whoever runs the platform, so the
 * worker checks the one against the other before anything deploys (the prepareCandidate
 * activity) and the history records the policy in force.
 *
 * Every entry whose pattern matches a model applies: for each rule the strictest value wins, so
 * a narrow entry can tighten a catch-all (`"*"`) but never loosen it. Pure: no I/O.
 */
import { z } from 'zod';
import type { ModelSpec } from './schema';

const name = z.string().trim().min(1, 'expected a non-empty name');

export const policyRulesSchema = z
  .object({
    /** The fewest distinct approvals a spec may ask for (`approval.required`). */
    minApprovals: z.number().int().min(0).optional(),
    /** Who may approve, from the platform rather than the spec. */
    approvers: z.array(name).min(1, 'expected at least one approver').optional(),
    /**
     * `policy` (default): only these approvers; a spec may list a subset, never anyone else.
     * `merge`: these approvers and the spec's.
     */
    approversFrom: z.enum(['policy', 'merge']).optional(),
    /** The spec must run the shadow step (`shadow.enabled`, a mirror above 0%). */
    requireShadow: z.boolean().optional(),
    /** The canary must compare the candidate against the baseline (`canary.analysis.compare`). */
    requireAnalysis: z.boolean().optional(),
    /** The largest first canary step, in percent of traffic (`canary.steps[0].weight`). */
    maxFirstCanaryStep: z.number().int().min(1).max(100).optional(),
    /** `false`: promote-full is refused on these models' promotions. */
    allowPromoteFull: z.boolean().optional(),
    /** `false`: a spec may not proceed without evidence (`rollback.onInconclusive`, an A/B's `onTimeout`). */
    allowProceedOnInconclusive: z.boolean().optional(),
    /** The spec's approvals must be signed (`approval.identity: signed`). */
    requireSignedApprovals: z.boolean().optional(),
  })
  .strict()
  .refine((r) => r.approversFrom === undefined || r.approvers !== undefined, {
    message: 'approversFrom needs an approvers list',
    path: ['approversFrom'],
  });

export type PolicyRules = z.output<typeof policyRulesSchema>;
export type PolicyRule = keyof PolicyRules;

/** Model names are lowercase letters, digits and dashes; a pattern adds `*` and `?`. */
const PATTERN = /^[a-z0-9*?-]+$/;

// The keys are checked by hand: zod's own message for a bad record key says only "Invalid key".
export const platformPolicySchema = z.record(z.string(), policyRulesSchema).superRefine((policy, ctx) => {
  for (const key of Object.keys(policy)) {
    if (!PATTERN.test(key))
      ctx.addIssue({
        code: 'custom',
        path: [key],
        message:
          'expected a model name or a glob of one (lowercase letters, digits, -, * and ?), e.g. fraud-*',
      });
  }
});

/** Pattern → rules, as the platform config's `policy` mapping holds them. */
export type PlatformPolicy = z.output<typeof platformPolicySchema>;

/** What the history records: the matched entries, the strictest rules, and whom they came from. */
export interface PolicyInForce {
  model: string;
  /** The entries whose pattern matched the model, in the config's order; empty: no policy. */
  matched: string[];
  /** The strictest value of each rule over the matched entries (unset rules are absent). */
  rules: PolicyRules;
  /** The entry each rule's value came from. */
  from: Partial<Record<PolicyRule, string>>;
  /** Who may approve this promotion under the policy (empty: the spec's list, or anyone). */
  approvers: string[];
}

export interface PolicyViolation {
  rule: PolicyRule;
  /** The ModelSpec field that weakens it, e.g. `shadow.enabled`. */
  field: string;
  /** The policy entry (pattern) the rule came from. */
  entry: string;
  message: string;
}

/** `*` any run of characters, `?` one; everything else literal (patterns hold no other specials). */
export function matchesPattern(pattern: string, model: string): boolean {
  const re = new RegExp(`^${pattern.replaceAll('*', '.*').replaceAll('?', '.')}$`);
  return re.test(model);
}

/** The strictest combination of every entry that matches `model`. */
export function policyFor(policy: PlatformPolicy | undefined, model: string): PolicyInForce {
  const matched = Object.keys(policy ?? {}).filter((p) => matchesPattern(p, model));
  const rules: PolicyRules = {};
  const from: PolicyInForce['from'] = {};
  const take = <K extends PolicyRule>(rule: K, value: PolicyRules[K], entry: string, stricter: boolean) => {
    if (value === undefined || (rules[rule] !== undefined && !stricter)) return;
    rules[rule] = value;
    from[rule] = entry;
  };
  for (const entry of matched) {
    const r = (policy ?? {})[entry] as PolicyRules;
    take('minApprovals', r.minApprovals, entry, (r.minApprovals ?? 0) > (rules.minApprovals ?? 0));
    take(
      'maxFirstCanaryStep',
      r.maxFirstCanaryStep,
      entry,
      (r.maxFirstCanaryStep ?? 100) < (rules.maxFirstCanaryStep ?? 100),
    );
    for (const flag of ['requireShadow', 'requireAnalysis', 'requireSignedApprovals'] as const)
      take(flag, r[flag], entry, r[flag] === true && rules[flag] !== true);
    for (const flag of ['allowPromoteFull', 'allowProceedOnInconclusive'] as const)
      take(flag, r[flag], entry, r[flag] === false && rules[flag] !== false);
    if (r.approvers) {
      // Two entries that name approvers: only those both name may approve.
      const list = rules.approvers
        ? rules.approvers.filter((a) => r.approvers?.includes(a))
        : [...r.approvers];
      rules.approvers = list;
      from.approvers = from.approvers ? `${from.approvers}, ${entry}` : entry;
      const mode = r.approversFrom ?? 'policy';
      if (rules.approversFrom !== 'policy') {
        rules.approversFrom = mode;
        from.approversFrom = entry;
      }
    }
  }
  return { model, matched, rules, from, approvers: rules.approvers ?? [] };
}

/**
 * Checks a spec against the policy in force: every way it weakens a rule, naming the rule, the
 * field and the entry. Also settles who may approve (`approvers` of the result).
 */
export function checkSpec(
  spec: ModelSpec,
  inForce: PolicyInForce,
): { policy: PolicyInForce; violations: PolicyViolation[] } {
  const { rules, from } = inForce;
  const violations: PolicyViolation[] = [];
  const violate = (rule: PolicyRule, field: string, message: string) =>
    violations.push({ rule, field, entry: from[rule] ?? '?', message });
  const a = spec.approval;
  // Specs recorded before these fields existed: their defaults.
  const operators = a.operators ?? [];

  if (rules.minApprovals !== undefined && a.required < rules.minApprovals)
    violate('minApprovals', 'approval.required', `is ${a.required}, expected at least ${rules.minApprovals}`);

  let approvers = a.approvers;
  if (rules.approvers) {
    const listed = rules.approvers;
    if (listed.length === 0) {
      violate(
        'approvers',
        'approval.approvers',
        `the matching entries (${from.approvers}) share no approver`,
      );
    } else if (rules.approversFrom === 'merge') {
      approvers = [...new Set([...listed, ...a.approvers])];
    } else {
      const outside = (names: string[]) => names.filter((n) => !listed.includes(n));
      if (outside(a.approvers).length)
        violate(
          'approvers',
          'approval.approvers',
          `lists ${outside(a.approvers).join(', ')}, not among the policy's approvers (${listed.join(', ')})`,
        );
      if (outside(operators).length)
        violate(
          'approvers',
          'approval.operators',
          `lists ${outside(operators).join(', ')}, not among the policy's approvers (${listed.join(', ')})`,
        );
      // A spec may narrow the policy's list, never widen it.
      approvers = a.approvers.length ? a.approvers.filter((n) => listed.includes(n)) : [...listed];
    }
    if (approvers.length > 0 && a.required > approvers.length)
      violate(
        'approvers',
        'approval.required',
        `is ${a.required}, but only ${approvers.length} may approve under the policy (${approvers.join(', ')})`,
      );
  }

  if (rules.requireShadow) {
    if (!spec.shadow.enabled) violate('requireShadow', 'shadow.enabled', 'is false, expected true');
    else if (spec.shadow.mirrorPercent <= 0)
      violate('requireShadow', 'shadow.mirrorPercent', 'is 0: the shadow would see no traffic');
  }
  if (rules.requireAnalysis && !spec.canary.analysis.compare)
    violate('requireAnalysis', 'canary.analysis.compare', 'is false, expected true');
  const first = spec.canary.steps[0]?.weight;
  if (rules.maxFirstCanaryStep !== undefined && first !== undefined && first > rules.maxFirstCanaryStep)
    violate(
      'maxFirstCanaryStep',
      'canary.steps[0].weight',
      `is ${first}%, expected at most ${rules.maxFirstCanaryStep}%`,
    );
  if (rules.allowProceedOnInconclusive === false) {
    if (spec.rollback.onInconclusive === 'proceed')
      violate(
        'allowProceedOnInconclusive',
        'rollback.onInconclusive',
        'is proceed, expected pause or rollback',
      );
    if (spec.experiment.kind === 'ab' && spec.experiment.onTimeout === 'proceed')
      violate('allowProceedOnInconclusive', 'experiment.onTimeout', 'is proceed, expected keep_baseline');
  }
  if (rules.requireSignedApprovals && (a.identity ?? 'payload') !== 'signed')
    violate('requireSignedApprovals', 'approval.identity', `is ${a.identity ?? 'payload'}, expected signed`);

  return { policy: { ...inForce, approvers: rules.approvers ? approvers : [] }, violations };
}

/** One line per violation: "shadow.enabled is false, expected true (platform policy fraud-*: requireShadow)". */
export function describeViolations(model: string, violations: PolicyViolation[]): string {
  const lines = violations.map((v) => `${v.field} ${v.message} (platform policy '${v.entry}': ${v.rule})`);
  return `the platform policy refuses this spec of ${model}: ${lines.join('; ')}`;
}
