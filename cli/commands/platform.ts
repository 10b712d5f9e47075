/** `runway up`, `runway worker` and `runway demo`: the platform's processes. */
import type { Command } from 'commander';
import { createActivities } from '../../activities';
import { createLogger } from '../../common/log';
import { stateDir } from '../../common/paths';
import { runDemo } from '../../demo/run';
import { loadPlatformConfig, redacted } from '../../workers/config';
import { startPlatform, workerDeps } from '../../workers/platform';
import { serveWorkerMetrics } from '../../workers/metrics-endpoint';
import { unservedMessage } from '../../workers/reconcile';
import { runWorker } from '../../workers/worker';

function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
}

export function registerPlatform(program: Command): void {
  program
    .command('up')
    .description(
      'run the embedded platform: Temporal dev server + UI, worker, router, local fleet (until stopped)',
    )
    .option(
      '--router-port <port>',
      'router port when it starts here (default: the one it had last time, else 8080, when free)',
      (v) => Number(v),
    )
    .action(async (opts: { routerPort?: number }) => {
      const platform = await startPlatform({ routerPort: opts.routerPort });
      const out = (l: string): void => void process.stdout.write(l + '\n');
      out(`runway platform up (state in ${stateDir()})`);
      out(`  Temporal:    ${platform.temporal.address} (namespace ${platform.temporal.namespace})`);
      if (platform.temporal.uiUrl) out(`  Temporal UI: ${platform.temporal.uiUrl}`);
      out(`  router:      ${platform.router.url}  (admin token in ${stateDir()}/router/token)`);
      out('  worker:      polling task queue ' + platform.config.taskQueue);
      if (platform.workerMetrics) out(`  worker metrics: ${platform.workerMetrics.url}`);
      const hooks = platform.config.notifications.webhooks.map((w) => `${w.name} (${w.format})`);
      if (hooks.length) out(`  webhooks:    ${hooks.join(', ')}`);
      for (const name of platform.routes.restarted) out(`  brought back: ${name} (its route named it)`);
      for (const u of platform.routes.unserved) process.stderr.write(`ERROR ${unservedMessage(u)}\n`);
      out('Ctrl-C stops the platform; model servers keep running and are reattached next time.');
      const why = await Promise.race([untilSignal(), platform.workerDone.then(() => 'worker stopped')]);
      out(`stopping (${why})`);
      await platform.stop();
    });

  program
    .command('worker')
    .description('run a worker alone (platform parts configured in platform.yaml / environment)')
    .action(async () => {
      const config = loadPlatformConfig();
      const log = createLogger('worker');
      log.info('configuration', { config: JSON.stringify(redacted(config)) });
      const deps = await workerDeps(config, log);
      const metrics =
        config.worker.metricsListen && deps.workerMetrics
          ? await serveWorkerMetrics(config.worker.metricsListen, deps.workerMetrics.registry)
          : undefined;
      if (metrics) log.info('worker metrics', { url: metrics.url });
      try {
        await runWorker({ config, activities: createActivities(deps), logger: log });
      } finally {
        await metrics?.close();
      }
    });

  program
    .command('demo')
    .description(
      'the main job: promote fraud-detector v2 over v1 through every step on the embedded platform',
    )
    .option('--auto-approve', 'approve as demo-approver (the default when there is no terminal)')
    .option('--no-auto-approve', 'wait for an approval in the Temporal UI or the CLI')
    .option('--rps <n>', 'synthetic requests per second', (v) => Number(v))
    .option('--spec <file>', 'ModelSpec to promote with (default: specs/examples/fraud-detector.yaml)')
    .action(async (opts: { autoApprove?: boolean; rps?: number; spec?: string }) => {
      const autoApprove = opts.autoApprove ?? !process.stdin.isTTY;
      // The demo's own progress lines tell the story; component logs only for warnings.
      process.env.RUNWAY_LOG_LEVEL ??= 'warn';
      process.exitCode = await runDemo({ autoApprove, rps: opts.rps, spec: opts.spec });
    });
}
