/**
 * `runway status` and `runway traffic` as a newcomer uses them under a running platform: status
 * shows production's route from the router before the promotion routes anything; `--watch`
 * redraws stage and traffic at each look and says when no request arrived, with both ways to
 * send some; `runway traffic` sends the demo's requests and the hint goes away.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runwayBin } from '../../common/paths';
import { promotionWorkflowId } from '../../workflows/api';
import { usePromotionPlatform, testSpec, waitForStatus } from '../helpers/promotion';
import { testTemporal } from '../helpers/temporal';

const platform = usePromotionPlatform();

async function cliEnv(): Promise<NodeJS.ProcessEnv> {
  const endpoint = await testTemporal();
  return {
    ...process.env,
    RUNWAY_HOME: platform.home,
    TEMPORAL_ADDRESS: endpoint.address,
    RUNWAY_TASK_QUEUE: platform.taskQueue,
    RUNWAY_REGISTRY_DIR: path.join(platform.home, 'registry'),
  };
}

function start(args: string[], env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [runwayBin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const io = { stdout: '', stderr: '' };
  child.stdout.on('data', (d: Buffer) => (io.stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (io.stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, io, exited };
}

async function until(
  what: string,
  pred: () => boolean,
  timeoutMs: number,
  detail: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${detail()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const blocks = (out: string): string[] => out.split(/^--- /m).slice(1);

describe('runway status and runway traffic', () => {
  it(
    "shows production's route before the first route change, redraws each look, and says when no traffic arrives",
    { timeout: 240_000 },
    async () => {
      const model = 'fd-cli-status';
      const env = await cliEnv();
      await platform.bootstrap(model, testSpec(model));
      await platform.start(testSpec(model), '2');
      await waitForStatus(platform, model, (s) => s.stage === 'approve', 90_000);

      const once = start(['status', model], env);
      expect(await once.exited, once.io.stderr).toBe(0);
      expect(once.io.stdout).toMatch(/^traffic +v1 100% \(production's route, from the router\)$/m);
      expect(once.io.stdout).not.toMatch(/no route yet/);

      const watch = start(['status', model, '--watch', '--every', '1s'], env);
      const hint = `no traffic to ${model} in the last 1s: send requests to ${platform.router.url}/v2/models/${model}/infer, or run \`runway traffic ${model}\``;
      try {
        await until(
          'the no-traffic hint',
          () => watch.io.stdout.includes(hint),
          30_000,
          () => watch.io.stdout + watch.io.stderr,
        );

        const traffic = start(['traffic', model, '--rps', '20', '--duration', '6s'], env);
        // while requests flow, a look sees them: the hint leaves the redrawn block
        const sawTraffic = (): boolean => {
          const after = watch.io.stdout.slice(watch.io.stdout.indexOf(hint));
          return blocks(after).some((b) => !b.includes('no traffic to'));
        };
        await until('a block without the hint', sawTraffic, 30_000, () => watch.io.stdout);
        expect(await traffic.exited, traffic.io.stderr).toBe(0);
        expect(traffic.io.stdout).toMatch(/sending 20 requests\/s to .*\/v2\/models\/fd-cli-status\/infer/);
        expect(traffic.io.stdout).toMatch(/answered \d+ \(200=\d+\); by variant v1=\d+/);

        // each look redraws the current stage: after the approval the block moves on
        const approved = start(['approve', model, '--as', 'alice'], env);
        expect(await approved.exited, approved.io.stderr).toBe(0);
        await until(
          'a block past the approval',
          () => blocks(watch.io.stdout).some((b) => /^stage +(stage|integration|shadow|canary)/m.test(b)),
          90_000,
          () => watch.io.stdout,
        );
        for (const b of blocks(watch.io.stdout)) expect(b).toMatch(/^traffic +\S/m);
      } finally {
        await platform.client.workflow
          .getHandle(promotionWorkflowId(model))
          .cancel()
          .catch(() => {});
      }
      expect(await watch.exited, watch.io.stderr).toBe(5);
      expect(watch.io.stdout).toMatch(/^cancelled: /m);
    },
  );
});
