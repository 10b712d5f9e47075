/**
 * `runway traffic MODEL`: the demo's synthetic traffic (demo/traffic.ts) sent through the router
 * to any model with the demo's signature (8 FP32 features), with rewards from the demo's label
 * rule. How a newcomer promotes a version by hand and watches it decide, under `runway up`.
 */
import type { Command } from 'commander';
import { loadPlatformConfig } from '../../workers/config';
import { runningRouterUrl } from '../../workers/platform';
import { parseDuration, formatDuration } from '../../specs/duration';
import { startTraffic, type TrafficStats } from '../../demo/traffic';

function summary(s: TrafficStats): string {
  const status = Object.entries(s.byStatus)
    .map(([code, n]) => `${code}=${n}`)
    .join(' ');
  const variants = Object.entries(s.byVariant)
    .map(([v, x]) => `${v}=${x.requests}`)
    .join(' ');
  return `sent ${s.sent}, answered ${s.completed} (${status || 'none yet'}); by variant ${variants || 'none yet'}; rewards ${s.feedback.sent}`;
}

export function registerTraffic(program: Command): void {
  program
    .command('traffic')
    .description(
      "send the demo's synthetic requests (8 FP32 features) and rewards to a model through the router",
    )
    .argument('<model>')
    .option('--rps <n>', 'requests per second (default: 50)')
    .option('--duration <duration>', 'stop after this long (default: 30m; Ctrl-C stops sooner)')
    .option('--router <url>', 'router URL (default: the running embedded router, or router.adminUrl)')
    .option(
      '--api-key <key>',
      "the client key when the router's front door has API keys (default: $RUNWAY_API_KEY); sent as x-api-key",
    )
    .action(
      async (model: string, opts: { rps?: string; duration?: string; router?: string; apiKey?: string }) => {
        const rps = Number(opts.rps ?? '50');
        if (!Number.isFinite(rps) || rps <= 0)
          throw new Error(`--rps: expected a positive number, got "${opts.rps}"`);
        const durationMs = parseDuration(opts.duration ?? '30m');
        const url = opts.router ?? loadPlatformConfig().router.adminUrl ?? runningRouterUrl();
        if (!url)
          throw new Error(
            'no router is running here: start the platform with `runway up`, or give --router URL',
          );
        process.stdout.write(
          `sending ${rps} requests/s to ${url}/v2/models/${model}/infer for ${formatDuration(durationMs)} (Ctrl-C stops)\n`,
        );
        const apiKey = opts.apiKey ?? process.env.RUNWAY_API_KEY;
        const traffic = startTraffic({
          baseUrl: url,
          model,
          rps,
          durationMs,
          ...(apiKey ? { headers: { 'x-api-key': apiKey } } : {}),
        });
        const timer = setInterval(() => process.stdout.write(summary(traffic.stats()) + '\n'), 5000);
        const stop = (): void => void traffic.stop();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        const final = await traffic.done;
        clearInterval(timer);
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        process.stdout.write(summary(final) + '\n');
        const ok = final.byStatus['200'] ?? 0;
        if (final.completed > 0 && ok === 0) {
          const refused = (final.byStatus['401'] ?? 0) + (final.byStatus['403'] ?? 0);
          throw new Error(
            refused > 0
              ? `the router refused every request to ${model} (401/403): its front door needs an API key allowed for ${model}; give --api-key or set RUNWAY_API_KEY`
              : `no request to ${model} was answered with 200: is it routed? see \`runway status ${model}\``,
          );
        }
      },
    );
}
