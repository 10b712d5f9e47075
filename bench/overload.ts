/**
 * `npm run bench:overload`: the model server offered 3× what it can do, then half of it.
 * What must hold: a bounded queue rejects the excess at once (503) instead of letting latency
 * and memory grow, every accepted request is answered correctly, and it recovers when load drops.
 * Writes bench/results/overload-<date>.json and a markdown table next to it.
 *
 * Three scenarios side by side, batching off and on, and batching with onnxruntime's threads
 * spin-waiting (`--spin-wait`, the default before), each at 1.5×, 2× and 3× its capacity (a fresh
 * server per run). The generator is the raw keep-alive client of raw-http.ts: on 2 cores it shares
 * the CPU with the server, and its CPU is reported beside every figure. Flags: --model PATH
 * (default demo/models/heavy.onnx), --factors 1.5,2,3, --overload-ms 6000, --max-queue-size 128,
 * --max-batch-size 8, --label NAME (results go to overload-<date>-NAME.*), --baseline CHECKOUT (the
 * batched server of another built checkout as a fourth scenario: an A/B of one change)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { projectRoot } from '../common/paths';
import { runOverload, type PhaseResult } from './overload-run';

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

/** Requests without a correct answer: a 200 whose answer is not the one onnxruntime gives for that input, an unexpected status, or no answer. */
function lostRequests(p: PhaseResult): number {
  return p.malformed + p.transportErrors + Object.values(p.otherStatus).reduce((a, b) => a + b, 0);
}

/** The recovery phase's rate, as a fraction of the measured capacity. */
const RECOVERY = 0.5;

const pct = (share: number): string => `${(share * 100).toFixed(1)}%`;

interface Scenario {
  name: string;
  maxBatchSize: number;
  /** More `runway serve` flags. */
  extra?: string[];
  /** Another build's bin/runway.js (`--baseline CHECKOUT`). */
  bin?: string;
}

async function main(): Promise<void> {
  const model = flag('model', path.join(projectRoot, 'demo/models/heavy.onnx'));
  if (!fs.existsSync(model)) throw new Error(`${model} is missing: run \`npm run demo:models\` first`);
  const queue = Number(flag('max-queue-size', '128'));
  // Unbatched, capacity is low enough that a 3× open loop costs the co-located generator little
  // CPU; batched, capacity is ~5× higher and the generator competes with the server for the cores.
  const batch = Number(flag('max-batch-size', '8'));
  const scenarios: Scenario[] = [
    { name: 'unbatched (max batch 1)', maxBatchSize: 1 },
    { name: `batched (max batch ${batch})`, maxBatchSize: batch },
    // onnxruntime's own default, and the server's before it slept its idle threads: the same
    // batched server with them spin-waiting, side by side, so the effect is measured in one run.
    {
      name: `batched, --spin-wait (max batch ${batch})`,
      maxBatchSize: batch,
      extra: ['--spin-wait'],
    },
  ];
  // `--baseline CHECKOUT`: the same batched server from another built checkout, side by side.
  const baseline = flag('baseline', '');
  if (baseline) {
    const bin = path.resolve(baseline, 'bin', 'runway.js');
    if (!fs.existsSync(bin)) throw new Error(`--baseline: no built checkout at ${baseline}`);
    scenarios.push({ name: `batched, baseline build (max batch ${batch})`, maxBatchSize: batch, bin });
  }
  const factors = flag('factors', '1.5,2,3').split(',').map(Number);
  const overloadMs = Number(flag('overload-ms', '6000'));
  const results = [];
  // Each factor runs every scenario in turn, so the machine's drift hits them alike.
  for (const factor of factors)
    for (const sc of scenarios) {
      const serveArgs = [
        '--max-queue-size',
        String(queue),
        '--max-batch-size',
        String(sc.maxBatchSize),
        '--preferred-batch-sizes',
        String(sc.maxBatchSize),
        '--request-log-sample',
        '0',
        ...(sc.extra ?? []),
      ];
      console.log(`• ${sc.name} at ${factor}×: ${path.basename(model)}, runway serve ${serveArgs.join(' ')}`);
      const r = await runOverload({
        model,
        serveArgs,
        ...(sc.bin ? { bin: sc.bin } : {}),
        capacityMs: 3_000,
        // Capacity at the concurrency the server holds under overload (a full queue and a batch
        // running), so the accepted p99 under overload is compared with the p99 at the same
        // concurrency without overload: what shedding costs the requests it keeps.
        capacityConcurrency: queue + sc.maxBatchSize,
        overloadMs,
        overloadFactor: factor,
        recoveryMs: 3_000,
        recoveryFactor: RECOVERY,
        maxInFlight: 2_048,
        log: (l: string) => console.log(`  ${l}`),
      });
      const over = r.phases[1]!;
      const rec = r.phases[2]!;
      const lost = lostRequests(over) + lostRequests(rec);
      console.log(
        `  → capacity ${r.capacityRps}/s; under ${factor}× accepted ${over.okRps}/s, rejected ${pct(over.rejectedShare)}, lost ${lost}; RSS idle ${r.idleRssMb} MB, peak ${over.peakRssMb} MB; recovery rejected ${rec.rejected}, p99 ${rec.p99Ms} ms`,
      );
      results.push({ scenario: sc.name, factor, serveArgs, lost, ...r });
    }
  // Reported scenario by scenario, each at its factors.
  results.sort(
    (a, b) =>
      scenarios.findIndex((x) => x.name === a.scenario) - scenarios.findIndex((x) => x.name === b.scenario) ||
      a.factor - b.factor,
  );
  const date = new Date().toISOString().slice(0, 10);
  const label = flag('label', '');
  const stem = `overload-${date}${label ? `-${label}` : ''}`;
  const outDir = path.join(projectRoot, 'bench/results');
  fs.mkdirSync(outDir, { recursive: true });
  const machine = `${os.cpus().length} CPUs (${os.cpus()[0]?.model.trim() ?? '?'}), Node ${process.version}, load average at the end ${os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')}`;
  const doc = { date, machine, model: path.basename(model), factors, generator: 'raw-http', results };
  fs.writeFileSync(path.join(outDir, `${stem}.json`), JSON.stringify(doc, null, 2) + '\n');
  const lines = [
    `# Overload benchmark ${date}`,
    '',
    `${machine}. Model ${path.basename(model)}, queue bound ${queue}. The load generator runs in the benchmark`,
    'process (open loop: arrivals at a fixed rate, whatever the server does); the server is its own process;',
    'RSS and CPU are read from /proc. CPU is in cores: on this 2-core machine the server and the generator share them.',
    '',
    '## Summary',
    '',
    `| scenario | offered | capacity req/s | offered req/s | not sent (generator bound) | accepted (200) req/s | goodput (accepted / capacity) | 503 share | accepted p99 ms (capacity p99) | lost | peak RSS MB | recovery (${RECOVERY}×) 503 | recovery p99 ms | server CPU | generator CPU (share of ${os.cpus().length} cores) |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...results.map((r) => {
      const cap = r.phases[0]!;
      const over = r.phases[1]!;
      const rec = r.phases[2]!;
      return `| ${r.scenario} | ${r.factor}× | ${r.capacityRps} | ${over.offeredRps} | ${over.notSent} | ${over.okRps} | ${pct(over.okRps / r.capacityRps)} | ${pct(over.rejectedShare)} | ${over.p99Ms} (${cap.p99Ms}) | ${r.lost} | ${Math.max(...r.phases.map((p) => p.peakRssMb))} | ${rec.rejected} | ${rec.p99Ms} | ${over.serverCpu} | ${over.generatorCpu} (${pct(over.generatorCpu / os.cpus().length)}) |`;
    }),
    '',
    'Lost = requests without a correct answer (a 200 whose output differs from onnxruntime run on the same input in-process (64 distinct inputs), any status other',
    'than 200/503, or a transport error), over the overload and recovery phases. "Not sent" counts arrivals the',
    'generator dropped because its own 2,048 in-flight slots were full. Capacity is measured closed-loop at the start',
    `of each run with as many clients as the server holds under overload (queue bound ${queue} + one batch): the p99 in`,
    "brackets is that phase's, at the same concurrency as the accepted requests under overload. CPU is in cores over the overload phase.",
    '',
  ];
  for (const r of results) {
    const over = r.phases[1]!;
    lines.push(
      `## ${r.scenario} at ${r.factor}×`,
      '',
      `\`runway serve ${r.serveArgs.join(' ')}\`. Idle RSS after warm-up ${r.idleRssMb} MB; capacity (closed loop, ${queue + Number(r.serveArgs[r.serveArgs.indexOf('--max-batch-size') + 1])} clients) ${r.capacityRps} req/s; server alive at the end: ${r.serverAlive}. Under ${r.factor}× the server answered ${over.okRps} req/s (${Math.round((over.okRps / r.capacityRps) * 100)}% of capacity) and refused ${(over.rejectedShare * 100).toFixed(1)}%.`,
      '',
      '| phase | s | offered/s | sent | not sent (generator bound) | 200 | 200/s | 503 | 503 share | other | wrong answer | transport errors | p50 ms | p99 ms | peak RSS MB | server CPU | generator CPU |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...r.phases.map(
        (p) =>
          `| ${p.phase} | ${p.seconds} | ${p.offeredRps} | ${p.sent} | ${p.notSent} | ${p.ok} | ${p.okRps} | ${p.rejected} | ${(p.rejectedShare * 100).toFixed(1)}% | ${JSON.stringify(p.otherStatus)} | ${p.malformed} | ${p.transportErrors} | ${p.p50Ms} | ${p.p99Ms} | ${p.peakRssMb} | ${p.serverCpu} | ${p.generatorCpu} |`,
      ),
      '',
    );
  }
  fs.writeFileSync(path.join(outDir, `${stem}.md`), lines.join('\n'));
  console.log(`• wrote bench/results/${stem}.{json,md}`);
}

main().catch((err: unknown) => {
  console.error(`bench:overload failed: ${(err as Error).message}`);
  process.exit(1);
});
