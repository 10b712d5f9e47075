/**
 * `runway demo`: the main job. Brings the embedded platform up, registers the demo fraud models,
 * serves v1 in production under synthetic traffic, and promotes v2 through every step, printing
 * progress. Re-runnable: each run starts the demo model afresh from v1 (its own model only).
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  WorkflowExecutionAlreadyStartedError,
  type Client,
  Connection,
  Client as TemporalClient,
} from '@temporalio/client';
import { createLogger } from '../common/log';
import { projectRoot } from '../common/paths';
import { followPromotion, EXIT_CODES } from '../cli/commands/promote';
import { startPromotion } from '../cli/start';
import { loadSpecFile } from '../specs/load';
import { serveAtFull, startPlatform } from '../workers/platform';
import { approveUpdate, promotionWorkflowId, type PromotionInput } from '../workflows/api';
import { watchWorkflowId } from '../workflows/watch-api';
import { followWatch } from '../cli/watch-view';
import { formatDuration } from '../specs/duration';
import { generate, DEFAULT_OUT } from './generate';
import { startTraffic } from './traffic';

export interface DemoOptions {
  autoApprove: boolean;
  spec?: string;
  rps?: number;
  /** Stop the platform at the end (default true; `runway up` keeps it). */
  stopAfter?: boolean;
}

const DEMO_APPROVER = 'demo-approver';
/** What the demo's drift knob does during the watch: the first feature moves by 1.5 SD. */
const DEMO_DRIFT = { feature: 0, shift: 1.5 };
const print = (line: string): void => void process.stdout.write(line + '\n');

async function ensureModels(): Promise<string> {
  if (!fs.existsSync(path.join(DEFAULT_OUT, 'manifest.json'))) {
    print('• writing the demo model family (demo/models/)');
    await generate(DEFAULT_OUT, { measure: false });
  }
  return DEFAULT_OUT;
}

async function terminate(client: Client, workflowId: string): Promise<void> {
  try {
    const d = await client.workflow.getHandle(workflowId).describe();
    if (d.status.name === 'RUNNING')
      await client.workflow.getHandle(workflowId).terminate('a new demo run starts afresh');
  } catch {
    // never started: nothing to end
  }
}

export async function runDemo(opts: DemoOptions): Promise<number> {
  const log = createLogger('demo');
  const specFile = opts.spec ?? path.join(projectRoot, 'specs', 'examples', 'fraud-detector.yaml');
  const { spec, sha256 } = loadSpecFile(specFile);
  const model = spec.name;
  const models = await ensureModels();

  print('• starting the embedded platform (Temporal dev server + UI, router, worker, local fleet)');
  const platform = await startPlatform({ logger: log });
  const { deps } = platform;
  const connection = await Connection.connect(platform.temporal.connectionOptions);
  const client = new TemporalClient({
    connection,
    namespace: platform.temporal.namespace,
    identity: 'runway demo',
  });
  let traffic: ReturnType<typeof startTraffic> | undefined;
  try {
    if (platform.temporal.uiUrl) print(`  Temporal UI: ${platform.temporal.uiUrl}`);
    print(`  router:      ${platform.router.url}`);

    // A fresh start for the demo model: end an old demo promotion, drop its deployments.
    await terminate(client, promotionWorkflowId(model));
    await terminate(client, watchWorkflowId(model));
    for (const d of await deps.fleet.list({ model })) await deps.fleet.teardown(d.name);

    print(`• registering ${model} v1…v5 in the registry`);
    for (const v of ['1', '2', '3', '4', '5']) {
      await deps.registry.push(model, path.join(models, `fraud-v${v}.onnx`), {
        version: v,
        source: 'demo/generate.ts',
        metadata: { family: 'fraud', member: `fraud-v${v}` },
      });
    }
    await deps.registry.setAlias(model, 'production', '1');
    await deps.registry.setAlias(model, 'previous', undefined);
    await deps.registry.setStatus(model, '1', 'production', 'demo baseline');
    await deps.registry.setStatus(model, '2', 'candidate', 'demo candidate');

    print('• serving v1 in production');
    await serveAtFull(deps, spec, '1');

    const rps = opts.rps ?? 100;
    print(`• synthetic traffic: ${rps} requests/s through the router, rewards from the label rule`);
    traffic = startTraffic({
      baseUrl: platform.router.url,
      model,
      rps,
      durationMs: 60 * 60_000,
      feedbackToken: platform.config.router.feedbackTokens[model],
    });

    const input: PromotionInput = {
      spec,
      specSha256: sha256,
      version: '2',
      triggeredBy: 'runway-demo',
      metadata: { source: 'runway demo', specFile },
    };
    try {
      await startPromotion(client, platform.config.taskQueue, input, '1');
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError)
        throw new Error(`a promotion of ${model} is already running`);
      throw err;
    }
    print(`• promoting v2 over v1 (workflow ${promotionWorkflowId(model)})`);
    const ui = platform.temporal.uiUrl
      ? `${platform.temporal.uiUrl}/namespaces/${platform.temporal.namespace}/workflows/${encodeURIComponent(promotionWorkflowId(model))}`
      : undefined;
    if (opts.autoApprove) {
      print(
        `  approving automatically as ${DEMO_APPROVER} once evaluation passes (--auto-approve or no terminal)`,
      );
      void autoApprove(client, model).catch((err: unknown) =>
        log.warn('auto-approval failed', { error: String(err) }),
      );
    } else {
      print(
        '  after evaluation it waits for an approver (allowed: ' + spec.approval.approvers.join(', ') + '):',
      );
      if (ui) print(`    Temporal UI: ${ui}  → Signal "approve" with {"approver": "alice", "comment": "ok"}`);
      print(`    or: npx runway approve ${model} --as alice --comment "looks good"`);
    }
    const result = await followPromotion(client, model, (line) => print(`  ${line}`));
    const stats = traffic.stats();
    print(`• outcome: ${result.outcome} — ${result.reason}`);
    print(
      `  traffic: ${stats.completed} answered, by variant ${Object.entries(stats.byVariant)
        .map(([v, s]) => `${v}=${s.requests}`)
        .join(' ')}`,
    );
    if (ui) print(`  history: ${ui}`);
    let code = EXIT_CODES[result.outcome];
    if (result.outcome === 'promoted' && spec.watch.duration > 0) {
      print(
        `• watching v2 for ${formatDuration(spec.watch.duration)} (workflow ${watchWorkflowId(model)}): burn-rate alerts on the SLOs, drift against the evaluation data`,
      );
      let turned = false;
      const watch = await followWatch(
        client,
        model,
        (line) => print(`  ${line}`),
        (s) => {
          // Once the watch has judged steady traffic, shift one input: the next window says so.
          if (!turned && s.driftWindows >= 1 && !s.outcome) {
            turned = true;
            traffic?.setDrift(DEMO_DRIFT);
            print(
              `  turning the traffic generator's drift knob: feature f${DEMO_DRIFT.feature} +${DEMO_DRIFT.shift} SD`,
            );
          }
        },
      );
      print(`• watch: ${watch.outcome} — ${watch.reason}`);
      if (watch.outcome === 'rolled_back') code = EXIT_CODES.rolled_back;
    }
    for (const line of closingAdvice(model, specFile, opts.stopAfter !== false)) print(line);
    return code;
  } finally {
    await traffic?.stop();
    await connection.close();
    if (opts.stopAfter !== false) {
      // Leave nothing running: the next demo or `runway up` starts from the saved state.
      for (const d of await deps.fleet.list({ model })) await deps.fleet.teardown(d.name).catch(() => {});
      await platform.stop();
    }
  }
}

/** What to run next, each command with what it needs (the platform stops with the demo). */
export function closingAdvice(model: string, specFile: string, platformStops: boolean): string[] {
  return [
    `  audit later with: npx runway audit ${model}   (reads the saved history; no platform needed)`,
    platformStops
      ? `  live view: npx runway up   (brings production back), then in another terminal: npx runway status ${model}`
      : `  live view: npx runway status ${model}`,
    `  by hand, with runway up running: npx runway traffic ${model}, then npx runway promote ${path.relative(process.cwd(), specFile) || specFile} --version 3,`,
    `    and watch it: npx runway status ${model} --watch   (v3 learnt from drifted data: see why it is rejected)`,
  ];
}

async function autoApprove(client: Client, model: string): Promise<void> {
  const handle = client.workflow.getHandle(promotionWorkflowId(model));
  for (;;) {
    const desc = await handle.describe();
    if (desc.status.name !== 'RUNNING') return;
    try {
      await handle.executeUpdate(approveUpdate, {
        args: [{ approver: DEMO_APPROVER, comment: 'approved by runway demo --auto-approve' }],
      });
      return;
    } catch {
      // not yet waiting for approval (still evaluating): try again shortly
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}
