/**
 * `npm run bench:overload-router`: the model server overloaded directly and through the runway
 * router, side by side in one run (direct, then via the router, at each factor; a fresh server,
 * and router, per run). What must hold through the router: the server's 503 comes back as fast as
 * it left (fail fast), the router retries none of them (no retry storm: failovers and upstream
 * errors stay 0) and queues nothing of its own (the accepted p99 stays near the direct one).
 * Writes bench/results/overload-router-<date>[-LABEL].{json,md} (`--label LABEL`).
 *
 * Flags: --model PATH (default demo/models/heavy.onnx), --factors 1.5,2,3, --overload-ms 6000,
 * --max-queue-size 128, --max-batch-size 8. On 2 shared cores the router, the server and the
 * generator compete for the CPU: each one's CPU is reported beside every figure, with the load
 * average, and the comparison is the ratio within one pair of runs, never across machines.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { projectRoot } from '../common/paths';
import { runOverload, type OverloadResult, type PhaseResult } from './overload-run';

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const pct = (share: number): string => `${(share * 100).toFixed(1)}%`;
const lost = (p: PhaseResult): number =>
  p.malformed + p.transportErrors + Object.values(p.otherStatus).reduce((a, b) => a + b, 0);
const load = (): string =>
  os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(' ');

interface Pair {
  factor: number;
  direct: OverloadResult & { load: string };
  router: OverloadResult & { load: string };
}

async function main(): Promise<void> {
  const model = flag('model', path.join(projectRoot, 'demo/models/heavy.onnx'));
  if (!fs.existsSync(model)) throw new Error(`${model} is missing: run \`npm run demo:models\` first`);
  const factors = flag('factors', '1.5,2,3').split(',').map(Number);
  const batch = flag('max-batch-size', '8');
  const serveArgs = [
    '--max-queue-size',
    flag('max-queue-size', '128'),
    '--max-batch-size',
    batch,
    '--preferred-batch-sizes',
    batch,
    '--request-log-sample',
    '0',
  ];
  const run = (factor: number, viaRouter: boolean): Promise<OverloadResult> =>
    runOverload({
      model,
      serveArgs,
      capacityMs: 3_000,
      overloadMs: Number(flag('overload-ms', '6000')),
      overloadFactor: factor,
      recoveryMs: 3_000,
      recoveryFactor: 0.5,
      maxInFlight: 2_048,
      viaRouter,
      log: (l: string) => console.log(`  ${l}`),
    });
  const pairs: Pair[] = [];
  for (const factor of factors) {
    console.log(`• ${factor}× direct: runway serve ${serveArgs.join(' ')}`);
    const direct = { ...(await run(factor, false)), load: load() };
    console.log(`• ${factor}× through runway router`);
    const router = { ...(await run(factor, true)), load: load() };
    pairs.push({ factor, direct, router });
  }

  const date = new Date().toISOString().slice(0, 10);
  const outDir = path.join(projectRoot, 'bench/results');
  const label = flag('label', '');
  const stem = `overload-router-${date}${label ? `-${label}` : ''}`;
  fs.mkdirSync(outDir, { recursive: true });
  const machine = `${os.cpus().length} CPUs (${os.cpus()[0]?.model.trim() ?? '?'}), Node ${process.version}`;
  const doc = { date, machine, model: path.basename(model), serveArgs, factors, pairs };
  fs.writeFileSync(path.join(outDir, `${stem}.json`), JSON.stringify(doc, null, 2) + '\n');

  const row = (name: string, r: Pair['direct'], factor: number): string => {
    const over = r.phases[1]!;
    const rec = r.phases[2]!;
    const routerCol = r.router
      ? `${over.routerCpu} | ${r.router.failovers} | ${r.router.upstreamErrors}`
      : '— | — | —';
    return `| ${factor}× | ${name} | ${r.capacityRps} | ${over.offeredRps} | ${over.okRps} | ${pct(over.okRps / r.capacityRps)} | ${pct(over.rejectedShare)} | ${over.rejectP99Ms} | ${over.p99Ms} | ${lost(over) + lost(rec)} | ${rec.rejected} | ${rec.p99Ms} | ${over.serverCpu} | ${over.generatorCpu} | ${routerCol} | ${r.load} |`;
  };
  const lines = [
    `# Overload through the router, ${date}`,
    '',
    `${machine}; 2 cores shared with other work (load average beside each run). Model ${path.basename(model)},`,
    `\`runway serve ${serveArgs.join(' ')}\`; \`runway router\` with one route (one variant, that server). Each factor runs`,
    'direct and then through the router, each with its own fresh processes and its own capacity (closed loop, 64',
    'clients, measured at the start of that run); the generator is open loop (arrivals at a fixed rate).',
    '',
    '| factor | path | capacity req/s | offered req/s | 200 req/s | goodput (200 / capacity) | 503 share | 503 p99 ms | accepted p99 ms | lost | recovery 503 | recovery p99 ms | server CPU | generator CPU | router CPU | router failovers | router upstream errors | load average (1, 5, 15 min) |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    ...pairs.flatMap((p) => [row('direct', p.direct, p.factor), row('via router', p.router, p.factor)]),
    '',
    '## Side by side',
    '',
    '| factor | goodput direct | goodput via router | via router / direct | router capacity / direct capacity | 503 p99 via router / direct | accepted p99 via router / direct |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...pairs.map((p) => {
      const d = p.direct.phases[1]!;
      const r = p.router.phases[1]!;
      const gd = d.okRps / p.direct.capacityRps;
      const gr = r.okRps / p.router.capacityRps;
      return `| ${p.factor}× | ${pct(gd)} | ${pct(gr)} | ${(gr / gd).toFixed(2)} | ${(p.router.capacityRps / p.direct.capacityRps).toFixed(2)} | ${(r.rejectP99Ms / d.rejectP99Ms).toFixed(2)} | ${(r.p99Ms / d.p99Ms).toFixed(2)} |`;
    }),
    '',
    'Lost = a 200 whose output differs from onnxruntime in-process, any status other than 200/503, or a',
    'transport error, over the overload and recovery phases. "Router failovers" and "upstream errors" are',
    "the router's own counters over the whole run: a 503 from the server is an answer, passed through and",
    'never retried, so both stay 0 unless a connection to the server failed. CPU is in cores over the overload',
    'phase. Goodput via the router is against the capacity through the router (the router takes CPU from the',
    'server on 2 cores, so that capacity is lower); the next column gives that ratio.',
    '',
  ];
  fs.writeFileSync(path.join(outDir, `${stem}.md`), lines.join('\n'));
  console.log(`• wrote bench/results/${stem}.{json,md}`);
}

main().catch((err: unknown) => {
  console.error(`bench:overload-router failed: ${(err as Error).message}`);
  process.exit(1);
});
