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
import { loadPlatformConfig } from '../workers/config';
import { serveAtFull, startPlatform } from '../workers/platform';
import type { Prices } from '../common/cost';
import { fetchChain } from '../audit/fetch';
import { promotionCostText } from '../audit/markdown';
import { buildPromotionAudit } from '../audit/report';
import { approveUpdate, promotionWorkflowId, statusQuery, type PromotionInput } from '../workflows/api';
import { loadSigningKey, sign, signedFor } from '../cli/signer';
import { ensureDemoKeys, type DemoKeys } from './keys';
import { watchWorkflowId } from '../workflows/watch-api';
import { followWatch } from '../cli/graduation-watch';
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

/**
 * Prices for a platform config that sets none, so the demo shows its cost: roughly a cloud
 * provider's on-demand rate per vCPU-hour and per GiB-hour of a general-purpose instance.
 */
export const DEMO_PRICES: Prices = { currency: 'USD', perHour: { cpu: 0.04, memoryGiB: 0.005 } };

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
  const loaded = loadSpecFile(specFile);
  const { sha256 } = loaded;
  const model = loaded.spec.name;
  const models = await ensureModels();

  // Signed decisions, unattended: the demo makes its own keys and says so.
  const keys = ensureDemoKeys(loadPlatformConfig());
  const spec = keys
    ? { ...loaded.spec, approval: { ...loaded.spec.approval, identity: 'signed' as const } }
    : loaded.spec;
  if (keys) {
    const rel = (p: string) => path.relative(process.cwd(), p) || p;
    print(
      `• signed decisions (approval.identity: signed): ${keys.made.length ? 'generated' : 'reusing'} DEMO keys for ${['runway-demo', 'demo-approver', 'alice', 'bob'].join(', ')}`,
    );
    print(
      `  in ${rel(keys.dir)}/ (demo only, they prove nothing else), listed in the keyring ${rel(keys.keyring)}`,
    );
  } else if (spec.approval.identity === 'signed') {
    throw new Error(
      'the demo spec asks for signed decisions but the platform config names its own keyring: the demo has no key in it',
    );
  } else {
    print('• the platform config names its own keyring: the demo runs with approval.identity payload');
  }

  print('• starting the embedded platform (Temporal dev server + UI, router, worker, local fleet)');
  const config = loadPlatformConfig();
  const demoPrices = !config.cost;
  const platform = await startPlatform({
    logger: log,
    config: demoPrices ? { ...config, cost: DEMO_PRICES } : config,
  });
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
    if (demoPrices)
      print(
        "  prices:      the demo's (0.04 $ per CPU-hour, 0.005 $ per GiB-hour); set `cost` in the platform config for yours",
      );

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
    if (keys) {
      const candidate = await deps.registry.get(model, '2');
      input.signedStart = sign(
        loadSigningKey('runway-demo', keys.file('runway-demo')).key,
        'promote',
        'runway-demo',
        {
          model,
          version: '2',
          workflowId: promotionWorkflowId(model),
          firstRunId: null,
          specSha256: sha256,
          artifactSha256: candidate!.sha256,
        },
      );
    }
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
      void autoApprove(client, model, keys).catch((err: unknown) =>
        log.warn('auto-approval failed', { error: String(err) }),
      );
    } else {
      print(
        '  after evaluation it waits for an approver (allowed: ' + spec.approval.approvers.join(', ') + '):',
      );
      if (keys) {
        const key = path.relative(process.cwd(), keys.file('alice'));
        print(`    npx runway approve ${model} --as alice --key ${key} --comment "looks good"`);
        if (ui)
          print(
            `    or in the Temporal UI (${ui}): Signal "approve" with the JSON that \`npx runway approve ${model} --as alice --key ${key} --comment ok --print\` prints`,
          );
      } else {
        if (ui)
          print(`    Temporal UI: ${ui}  → Signal "approve" with {"approver": "alice", "comment": "ok"}`);
        print(`    or: npx runway approve ${model} --as alice --comment "looks good"`);
      }
    }
    const result = await followPromotion(client, model, (line) => print(`  ${line}`));
    const stats = traffic.stats();
    print(`• outcome: ${result.outcome} — ${result.reason}`);
    print(
      `  traffic: ${stats.completed} answered, by variant ${Object.entries(stats.byVariant)
        .map(([v, s]) => `${v}=${s.requests}`)
        .join(' ')}`,
    );
    for (const line of await costLines(client, model, platform.config.cost)) print(line);
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

/** What the promotion cost, from its history: the last canary look per 1k, and its own replica-hours. */
async function costLines(client: Client, model: string, prices: Prices | undefined): Promise<string[]> {
  try {
    const runs = await fetchChain(client, promotionWorkflowId(model));
    // Today's prices price what no look recorded (a promotion that ended before the canary).
    const a = buildPromotionAudit(promotionWorkflowId(model), runs, undefined, undefined, { prices });
    const look = [...a.analyses].reverse().find((x) => x.cost && x.phase === 'canary')?.cost;
    return [
      ...(look ? [`• cost per 1,000 inferences at the last canary look: ${look.reason}`] : []),
      `• cost of this promotion: ${promotionCostText(a.cost)}`,
    ];
  } catch (err) {
    return [`• cost: not read from the history (${(err as Error).message})`];
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

async function autoApprove(client: Client, model: string, keys: DemoKeys | undefined): Promise<void> {
  const handle = client.workflow.getHandle(promotionWorkflowId(model));
  const comment = 'approved by runway demo --auto-approve';
  for (;;) {
    const desc = await handle.describe();
    if (desc.status.name !== 'RUNNING') return;
    const stage = await handle
      .query(statusQuery)
      .then((s) => s.stage)
      .catch(() => undefined); // between workflow tasks: ask again
    if (stage === 'approve') {
      // Signed with the demo approver's key, on what the promotion names. A refusal is final:
      // the caller logs it, rather than this loop filling the history with retries.
      const signed = keys
        ? await signedFor(handle, 'approve', DEMO_APPROVER, comment, keys.file(DEMO_APPROVER))
        : undefined;
      await handle.executeUpdate(approveUpdate, {
        args: [{ approver: DEMO_APPROVER, comment, ...(signed ? { signed } : {}) }],
      });
      return;
    }
    if (stage !== undefined && stage !== 'evaluate') return; // evaluation rejected it
    await new Promise((r) => setTimeout(r, 1000));
  }
}
