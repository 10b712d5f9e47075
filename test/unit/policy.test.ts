import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { projectRoot } from '../../common/paths';
import { parseSpec } from '../../specs/load';
import {
  checkSpec,
  describeViolations,
  matchesPattern,
  platformPolicySchema,
  policyFor,
  type PlatformPolicy,
} from '../../specs/policy';
import type { ModelSpecInput } from '../../specs/schema';
import { ConfigError, parsePlatformConfig } from '../../workers/config';
import { merge } from '../helpers/merge';

/** The platform policy (specs/policy.ts): which entries apply, the strictest rules, what a spec may not weaken. */

const spec = (name: string, overrides: Record<string, unknown> = {}) => {
  const base: ModelSpecInput = {
    name,
    owner: 'tests',
    model: {
      signature: {
        inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 8] }],
        outputs: [{ name: 'score', datatype: 'FP32', shape: [-1, 1] }],
      },
    },
    slos: { p99LatencyMs: 250, errorRate: 0.02 },
    evaluation: { dataset: '/data/eval.json', min: 0.8 },
    approval: { required: 2, approvers: ['alice', 'carol'], identity: 'signed' },
    rollback: { onInconclusive: 'pause' },
  };
  return parseSpec(merge(base, overrides), `spec ${name}`);
};

const STRICT: PlatformPolicy = {
  'fraud-*': {
    minApprovals: 2,
    approvers: ['alice', 'carol', 'dave'],
    requireShadow: true,
    requireAnalysis: true,
    maxFirstCanaryStep: 10,
    allowPromoteFull: false,
    allowProceedOnInconclusive: false,
    requireSignedApprovals: true,
  },
};

const check = (policy: PlatformPolicy, overrides: Record<string, unknown> = {}, name = 'fraud-detector') =>
  checkSpec(spec(name, overrides), policyFor(policy, name));

describe('policy patterns', () => {
  it('match a whole name, * any run of characters, ? one', () => {
    expect(matchesPattern('fraud-detector', 'fraud-detector')).toBe(true);
    expect(matchesPattern('fraud-detector', 'fraud-detector-2')).toBe(false);
    expect(matchesPattern('fraud-*', 'fraud-detector')).toBe(true);
    expect(matchesPattern('fraud-*', 'antifraud-detector')).toBe(false);
    expect(matchesPattern('*', 'anything')).toBe(true);
    expect(matchesPattern('risk-v?', 'risk-v2')).toBe(true);
    expect(matchesPattern('risk-v?', 'risk-v10')).toBe(false);
  });

  it('combine every matching entry, the strictest value of each rule winning, with the entry named', () => {
    const p = policyFor(
      {
        '*': { minApprovals: 1, maxFirstCanaryStep: 25, allowPromoteFull: true, requireShadow: true },
        'fraud-*': { minApprovals: 3, maxFirstCanaryStep: 50, allowPromoteFull: false, requireShadow: false },
        'risk-*': { minApprovals: 5 },
      },
      'fraud-detector',
    );
    expect(p.matched).toEqual(['*', 'fraud-*']);
    expect(p.rules).toEqual({
      minApprovals: 3,
      maxFirstCanaryStep: 25,
      allowPromoteFull: false,
      requireShadow: true,
    });
    expect(p.from).toEqual({
      minApprovals: 'fraud-*',
      maxFirstCanaryStep: '*',
      allowPromoteFull: 'fraud-*',
      requireShadow: '*',
    });
    expect(policyFor({ 'risk-*': { minApprovals: 5 } }, 'fraud-detector')).toMatchObject({
      matched: [],
      rules: {},
    });
  });

  it('two entries naming approvers leave only those both name, and policy beats merge', () => {
    const p = policyFor(
      {
        '*': { approvers: ['alice', 'bob', 'carol'], approversFrom: 'merge' },
        'fraud-*': { approvers: ['carol', 'alice', 'eve'] },
      },
      'fraud-detector',
    );
    expect(p.rules.approvers).toEqual(['alice', 'carol']);
    expect(p.rules.approversFrom).toBe('policy');
  });
});

describe('a spec against the policy', () => {
  it('conforming: no violations, and the approvers the policy allows', () => {
    const conforming = {
      shadow: { enabled: true },
      canary: {
        steps: [
          { weight: 5, pause: '5m' },
          { weight: 100, pause: '0s' },
        ],
        analysis: { compare: true },
      },
    };
    const { policy, violations } = check(STRICT, conforming);
    expect(violations).toEqual([]);
    expect(policy.approvers).toEqual(['alice', 'carol']);
    // a spec with no approvers of its own gets the policy's list
    expect(check(STRICT, { ...conforming, approval: { approvers: [] } }).policy.approvers).toEqual([
      'alice',
      'carol',
      'dave',
    ]);
  });

  it('every weakening is named by rule and field', () => {
    const { violations } = check(STRICT, {
      approval: { required: 1, approvers: ['alice', 'mallory'], operators: ['bob'], identity: 'payload' },
      shadow: { enabled: false },
      canary: { steps: [{ weight: 100, pause: '0s' }], analysis: { compare: false } },
      rollback: { onInconclusive: 'proceed' },
    });
    expect(violations.map((v) => [v.rule, v.field])).toEqual([
      ['minApprovals', 'approval.required'],
      ['approvers', 'approval.approvers'],
      ['approvers', 'approval.operators'],
      ['requireShadow', 'shadow.enabled'],
      ['requireAnalysis', 'canary.analysis.compare'],
      ['maxFirstCanaryStep', 'canary.steps[0].weight'],
      ['allowProceedOnInconclusive', 'rollback.onInconclusive'],
      ['requireSignedApprovals', 'approval.identity'],
    ]);
    expect(violations.every((v) => v.entry === 'fraud-*')).toBe(true);
    expect(describeViolations('fraud-detector', violations.slice(0, 1))).toBe(
      "the platform policy refuses this spec of fraud-detector: approval.required is 1, expected at least 2 (platform policy 'fraud-*': minApprovals)",
    );
  });

  it('a shadow that mirrors nothing, and an A/B that proceeds undecided, weaken too', () => {
    const { violations } = check(
      { '*': { requireShadow: true, allowProceedOnInconclusive: false } },
      { shadow: { enabled: true, mirrorPercent: 0 }, experiment: { kind: 'ab', onTimeout: 'proceed' } },
    );
    expect(violations.map((v) => v.field)).toEqual(['shadow.mirrorPercent', 'experiment.onTimeout']);
  });

  it('merge adds the spec’s approvers; a required count beyond who may approve is refused', () => {
    const merged = check({ '*': { approvers: ['dave'], approversFrom: 'merge' } });
    expect(merged.violations).toEqual([]);
    expect(merged.policy.approvers).toEqual(['dave', 'alice', 'carol']);
    const narrow = check({ '*': { approvers: ['alice'] } }, { approval: { required: 2, approvers: [] } });
    expect(narrow.violations.map((v) => [v.field, v.message])).toEqual([
      ['approval.required', 'is 2, but only 1 may approve under the policy (alice)'],
    ]);
  });

  it('no matching entry: nothing to weaken', () => {
    expect(check(STRICT, { shadow: { enabled: false } }, 'risk-scorer')).toMatchObject({
      violations: [],
      policy: { matched: [], approvers: [] },
    });
  });
});

describe('policy in the platform config', () => {
  it('the shipped installs carry a policy that parses', () => {
    for (const file of ['deploy/base/platform.yaml', 'deploy/overlays/production/platform.yaml']) {
      const raw = YAML.parse(fs.readFileSync(path.join(projectRoot, file), 'utf8')) as { policy?: unknown };
      expect(platformPolicySchema.parse(raw.policy)['*'], file).toMatchObject({
        requireShadow: true,
        minApprovals: 1,
      });
    }
  });

  it('parses per pattern, and names the bad field', () => {
    expect(parsePlatformConfig({ policy: STRICT }).policy).toEqual(STRICT);
    expect(parsePlatformConfig({}).policy).toEqual({});
    const bad = () =>
      parsePlatformConfig({
        policy: {
          'Fraud_*': { minApprovals: 1 },
          'risk-*': { maxFirstCanaryStep: 0, approversFrom: 'merge' },
        },
      });
    expect(bad).toThrow(ConfigError);
    expect(bad).toThrow(/policy\.Fraud_\*: expected a model name or a glob/);
    expect(bad).toThrow(/policy\.risk-\*\.maxFirstCanaryStep/);
    expect(bad).toThrow(/policy\.risk-\*\.approversFrom: approversFrom needs an approvers list/);
    expect(() => parsePlatformConfig({ policy: { '*': { requireShadow: 'yes' } } })).toThrow(
      /policy\.\*\.requireShadow/,
    );
  });
});
