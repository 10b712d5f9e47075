/** The traffic line of `runway status`: the workflow's own weights, or production's route from the router. */
import { describe, expect, it } from 'vitest';
import { statusBlock, weightsText } from '../../cli/progress';
import type { PromotionStatus } from '../../workflows/api';

const status: PromotionStatus = {
  model: 'fraud-detector',
  version: '2',
  baselineVersion: '1',
  stage: 'integration',
  weights: {},
  paused: false,
  approvals: [],
  approvalsRequired: 1,
  lastVerdicts: [],
  triggeredBy: 'ci-bot',
};

describe('weightsText', () => {
  it("shows production's route from the router before the promotion's first route change", () => {
    expect(weightsText(status, { v1: 100 })).toBe("v1 100% (production's route, from the router)");
    expect(weightsText(status)).toBe("production's route, unchanged (v1)");
    expect(weightsText({ ...status, baselineVersion: undefined })).toBe('no route yet');
  });

  it('shows the workflow weights, and the router when it disagrees', () => {
    const canary = { ...status, weights: { v1: 90, v2: 10 } };
    expect(weightsText(canary, { v1: 90, v2: 10 })).toBe('v1 90%, v2 10%');
    expect(weightsText(canary, { v1: 100 })).toBe('v1 90%, v2 10%; the router has v1 100%');
  });

  it('puts a look without traffic in the block', () => {
    const block = statusBlock(status, {
      routed: { v1: 100 },
      hint: 'no traffic to fraud-detector in the last 5s',
    });
    expect(block).toMatch(/^traffic +v1 100% \(production's route, from the router\)$/m);
    expect(block).toMatch(/^note +no traffic to fraud-detector in the last 5s$/m);
  });

  it('says who may take which control, and the policy in force', () => {
    expect(statusBlock(status)).not.toMatch(/^controls/m);
    const block = statusBlock({
      ...status,
      authority: { deciders: ['alice', 'oncall'], brakes: [], promoteFull: false },
      policy: {
        model: 'fraud-detector',
        matched: ['fraud-*', '*'],
        rules: {},
        from: {},
        approvers: ['alice'],
      },
    });
    expect(block).toMatch(
      /^controls +decisions \(promote-full, proceed past inconclusive\): alice, oncall \(promote-full forbidden by the platform policy\); brakes: anyone$/m,
    );
    expect(block).toMatch(/^policy +fraud-\*, \*$/m);
  });

  it('shows the strategy and a blue-green preview', () => {
    const block = statusBlock({
      ...status,
      strategy: 'blue-green',
      stage: 'preview',
      weights: { v1: 100, v2: 0 },
      preview: { variant: 'v2', header: 'x-runway-preview', value: 'qa' },
    });
    expect(block).toMatch(/^strategy +blue-green$/m);
    expect(block).toMatch(/^traffic +v1 100%, v2 0% \(preview: requests with x-runway-preview: qa → v2\)$/m);
    expect(statusBlock(status)).toMatch(/^strategy +canary$/m);
  });
});
