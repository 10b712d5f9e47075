/**
 * `runway spec validate --policy`: the check the worker makes at a promotion's start, run in CI
 * before anything is started, through the compiled CLI with a real platform config file.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runwayBin } from '../../common/paths';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-spec-policy-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const spec = (name: string, extra: string) => `name: ${name}
owner: tests
model:
  signature:
    inputs: [{ name: features, datatype: FP32, shape: [-1, 8] }]
    outputs: [{ name: score, datatype: FP32, shape: [-1, 1] }]
slos: { p99LatencyMs: 250, errorRate: 0.02 }
evaluation: { dataset: /data/eval.json, min: 0.8 }
${extra}
`;

function validate(args: string[]) {
  return spawnSync(process.execPath, [runwayBin, 'spec', 'validate', ...args], {
    env: { ...process.env, RUNWAY_HOME: dir },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

describe('runway spec validate --policy', () => {
  it('names each rule a spec weakens, and passes one that conforms', () => {
    const config = path.join(dir, 'platform.yaml');
    fs.writeFileSync(config, "policy:\n  'fraud-*': { minApprovals: 2, requireShadow: true }\n");
    const good = path.join(dir, 'good.yaml');
    fs.writeFileSync(good, spec('fraud-detector', 'approval: { required: 2 }'));
    const weak = path.join(dir, 'weak.yaml');
    fs.writeFileSync(weak, spec('fraud-scorer', 'approval: { required: 0 }\nshadow: { enabled: false }'));

    const plain = validate([good, weak]);
    expect(plain.status, plain.stderr).toBe(0);

    const checked = validate(['--policy', '--config', config, good, weak]);
    expect(checked.status).toBe(1);
    expect(checked.stdout).toContain(`${good}: ok  fraud-detector`);
    expect(checked.stderr).toContain(
      `${weak}: the platform policy refuses this spec of fraud-scorer: ` +
        "approval.required is 0, expected at least 2 (platform policy 'fraud-*': minApprovals); " +
        "shadow.enabled is false, expected true (platform policy 'fraud-*': requireShadow)",
    );
  });
});
