/**
 * docs/ci.md's GitHub Actions example, run for real: its `run:` steps, in order, as a runner runs
 * them (`bash --noprofile --norc -eo pipefail`, GitHub's variables, $GITHUB_OUTPUT and
 * $GITHUB_STEP_SUMMARY files), against the embedded platform (real Temporal dev server, worker,
 * router, local fleet). Only the install step is replaced, by a `runway` on PATH that is this
 * checkout; `uses:` steps are the runner's (checkout: the temp dir; download-artifact: model.onnx).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { describe, expect, it } from 'vitest';
import { projectRoot, runwayBin } from '../../common/paths';
import { MODELS_DIR, testSpec, usePromotionPlatform } from '../helpers/promotion';
import { testTemporal } from '../helpers/temporal';

const platform = usePromotionPlatform();

/** Async, never spawnSync: the worker runs in this process and must keep polling meanwhile. */
function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env: Record<string, string>; timeoutMs: number },
): Promise<{ code: number | null; out: string; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => ((out += d.toString()), (stdout += d.toString())));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out, stdout });
    });
  });
}

interface Step {
  name?: string;
  uses?: string;
  run?: string;
}

/** The first ```yaml block under "## GitHub Actions" in docs/ci.md: what users copy. */
function githubExample(): { env: Record<string, string>; steps: Step[] } {
  const doc = fs.readFileSync(path.join(projectRoot, 'docs/ci.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## GitHub Actions'));
  const block = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
  if (!block) throw new Error('docs/ci.md has no yaml block under "## GitHub Actions"');
  const wf = YAML.parse(block) as { jobs: Record<string, { env: Record<string, string>; steps: Step[] }> };
  const job = Object.values(wf.jobs)[0]!;
  return { env: job.env, steps: job.steps };
}

describe('docs/ci.md GitHub Actions example', () => {
  it(
    'fails the job with the reason when the candidate is rejected, and records commit and pipeline',
    { timeout: 240_000 },
    async () => {
      const { env: jobEnv, steps } = githubExample();
      const model = 'fd-ci-example';
      // Production v1 is served; the pipeline trained a model that is worse than the spec allows.
      await platform.bootstrap(model, testSpec(model), { serve: false });
      const work = fs.mkdtempSync(path.join(platform.home, 'ci-'));
      fs.mkdirSync(path.join(work, 'specs'));
      fs.writeFileSync(
        path.join(work, 'specs/fraud-detector.yaml'),
        `name: ${model}
owner: tests
model:
  signature:
    inputs: [{ name: features, datatype: FP32, shape: [-1, 8] }]
    outputs: [{ name: score, datatype: FP32, shape: [-1, 1] }]
slos: { p99LatencyMs: 250, errorRate: 0.02 }
evaluation: { dataset: ${path.join(MODELS_DIR, 'eval.json')}, min: 0.8, maxRegression: 0.01 }
approval: { required: 1, approvers: [alice] }
`,
      );
      fs.copyFileSync(path.join(MODELS_DIR, 'fraud-v3.onnx'), path.join(work, 'model.onnx'));
      // The install step's result: `runway` on PATH.
      const bin = path.join(work, '.bin');
      fs.mkdirSync(bin);
      fs.writeFileSync(
        path.join(bin, 'runway'),
        `#!/bin/sh\nexec "${process.execPath}" "${runwayBin}" "$@"\n`,
        {
          mode: 0o755,
        },
      );

      const endpoint = await testTemporal();
      const output = path.join(work, 'github-output');
      const summary = path.join(work, 'github-summary');
      const fromVars: Record<string, string> = {
        TEMPORAL_ADDRESS: endpoint.address,
        RUNWAY_REGISTRY_DIR: path.join(platform.home, 'registry'),
      };
      const env: Record<string, string> = {
        PATH: `${bin}:${process.env.PATH}`,
        HOME: process.env.HOME ?? work,
        RUNWAY_HOME: platform.home,
        RUNWAY_TASK_QUEUE: platform.taskQueue,
        CI: 'true',
        GITHUB_ACTIONS: 'true',
        GITHUB_SHA: 'c0ffee1234567890c0ffee1234567890c0ffee12',
        GITHUB_RUN_ID: '987654',
        // The trained bytes are those of the registry's v3 (bootstrap pushed 1–5); re-pushing them as v3 is a no-op.
        GITHUB_RUN_NUMBER: '3',
        GITHUB_ACTOR: 'octocat',
        GITHUB_SERVER_URL: 'https://github.com',
        GITHUB_REPOSITORY: 'acme/fraud',
        GITHUB_OUTPUT: output,
        GITHUB_STEP_SUMMARY: summary,
      };
      // What a user edits in the example (their model's name), and what GitHub fills in from `vars`.
      const edited: Record<string, string> = { MODEL: model };
      for (const [k, v] of Object.entries(jobEnv)) {
        if (edited[k]) env[k] = edited[k];
        else if (!String(v).includes('${{')) env[k] = String(v);
        else if (fromVars[k]) env[k] = fromVars[k];
        else throw new Error(`the example's job env ${k} needs a value in this test`);
      }

      const ran: { name: string; code: number | null; out: string }[] = [];
      for (const step of steps) {
        if (!step.run) continue; // `uses:` steps: the runner's (checkout, setup-node, download-artifact)
        if (step.name === 'Install runway') continue; // replaced by the shim above
        const r = await run('bash', ['--noprofile', '--norc', '-eo', 'pipefail', '-c', step.run], {
          cwd: work,
          env,
          timeoutMs: 200_000,
        });
        ran.push({ name: step.name ?? '', code: r.code, out: r.out });
        if (r.code !== 0) break; // a failed step ends the job
      }
      expect(ran.map((s) => s.name)).toEqual(['Push the artifact', 'Promote']);
      const [push, promote] = ran as [(typeof ran)[0], (typeof ran)[0]];
      expect(push.code, push.out).toBe(0);
      expect(push.out).toMatch(/fd-ci-example version 3 {2}sha256:/);
      expect(promote.code, promote.out).toBe(1);
      expect(promote.out).toMatch(
        /::error title=fd-ci-example v3 rejected::promotion rejected: evaluation failed: accuracy 0\.70\d* is below the minimum 0\.8/,
      );
      expect(fs.readFileSync(output, 'utf8')).toBe('outcome=rejected\n');
      expect(fs.readFileSync(summary, 'utf8')).toMatch(
        /^### fd-ci-example v3: rejected\npromotion rejected: evaluation failed/,
      );

      // The audit leads back to the commit and the pipeline.
      const audit = await run(process.execPath, [runwayBin, 'audit', model, '--format', 'json'], {
        env: { ...(process.env as Record<string, string>), ...env },
        timeoutMs: 60_000,
      });
      expect(audit.code, audit.out).toBe(0);
      expect(audit.stdout).toContain('"commit": "c0ffee1234567890c0ffee1234567890c0ffee12"');
      expect(audit.stdout).toContain('"pipeline": "https://github.com/acme/fraud/actions/runs/987654"');
      expect(audit.stdout).toContain('github:octocat');
    },
  );
});
