/**
 * Integration tests against the staging endpoint: the served signature matches the spec, the
 * golden set reproduces within tolerance, and sequential single-row latency stays under the SLO.
 */
import fs from 'node:fs/promises';
import { ApplicationFailure } from '@temporalio/activity';
import type { ActivityDeps } from './deps';
import type { IntegrationInput } from './contracts';
import type { Verdict } from '../workflows/api';
import { heartbeat } from './context';

interface TensorMeta {
  name: string;
  datatype: string;
  shape: number[];
}
interface Golden {
  inputs: number[][];
  expected: number[][];
}

async function getJson(url: string, init?: RequestInit): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // keep the text: it goes into the error
  }
  return { status: res.status, body };
}

function signatureProblems(kind: string, expected: TensorMeta[], served: TensorMeta[] | undefined): string[] {
  const problems: string[] = [];
  for (const e of expected) {
    const s = served?.find((t) => t.name === e.name);
    if (!s) {
      problems.push(
        `${kind} ${e.name} is not served (served: ${served?.map((t) => t.name).join(', ') || 'none'})`,
      );
      continue;
    }
    if (s.datatype !== e.datatype)
      problems.push(`${kind} ${e.name}: datatype ${s.datatype}, spec says ${e.datatype}`);
    const same = s.shape.length === e.shape.length && s.shape.every((d, i) => d === e.shape[i]);
    if (!same) problems.push(`${kind} ${e.name}: shape [${s.shape}], spec says [${e.shape}]`);
  }
  return problems;
}

export function integrationActivities({ logger }: ActivityDeps) {
  const log = logger.child('integration');
  return {
    async integrationTest(input: IntegrationInput): Promise<Verdict> {
      if (!input.endpoint) throw ApplicationFailure.nonRetryable('staging deployment reported no endpoint');
      const base = `${input.endpoint}/v2/models/${encodeURIComponent(input.model)}/versions/${encodeURIComponent(input.version)}`;
      const checks: Record<string, unknown>[] = [];
      const failures: string[] = [];

      // 1. signature
      const meta = await getJson(base);
      if (meta.status !== 200) {
        failures.push(`model metadata answered ${meta.status}: ${JSON.stringify(meta.body)}`);
      } else {
        const m = meta.body as { inputs?: TensorMeta[]; outputs?: TensorMeta[] };
        const problems = [
          ...signatureProblems('input', input.signature.inputs, m.inputs),
          ...signatureProblems('output', input.signature.outputs, m.outputs),
        ];
        checks.push({ check: 'signature', result: problems.length ? 'fail' : 'pass', problems });
        failures.push(...problems);
      }

      // 2. golden set
      const inputName = input.signature.inputs[0]?.name ?? 'input';
      const inputType = input.signature.inputs[0]?.datatype ?? 'FP32';
      const outputName = input.signature.outputs[0]?.name ?? 'output';
      if (input.integration.goldenSet) {
        const file = input.integration.goldenSet.replaceAll('{version}', input.version);
        let golden: Golden;
        try {
          golden = JSON.parse(await fs.readFile(file, 'utf8')) as Golden;
        } catch (err) {
          throw ApplicationFailure.nonRetryable(
            `golden set ${file}: ${err instanceof Error ? err.message : err}`,
          );
        }
        let worst = 0;
        let mismatches = 0;
        let errors = 0;
        for (let i = 0; i < golden.inputs.length; i++) {
          const row = golden.inputs[i] ?? [];
          const res = await getJson(`${base}/infer`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({
              id: `golden-${i}`,
              inputs: [{ name: inputName, datatype: inputType, shape: [1, row.length], data: row }],
            }),
          });
          if (res.status !== 200) {
            errors++;
            continue;
          }
          const out = (res.body as { outputs?: { name: string; data: number[] }[] }).outputs?.find(
            (o) => o.name === outputName,
          );
          const expected = golden.expected[i] ?? [];
          const diff = Math.max(...expected.map((e, k) => Math.abs(e - Number(out?.data[k] ?? Number.NaN))));
          if (!(diff <= input.integration.tolerance)) mismatches++;
          if (Number.isFinite(diff)) worst = Math.max(worst, diff);
          heartbeat({ golden: i + 1 });
        }
        const ok = mismatches === 0 && errors === 0;
        checks.push({
          check: 'golden_set',
          result: ok ? 'pass' : 'fail',
          rows: golden.inputs.length,
          mismatches,
          errors,
          maxAbsDiff: worst,
          tolerance: input.integration.tolerance,
        });
        if (!ok) {
          failures.push(
            `golden set: ${mismatches} mismatches and ${errors} errors in ${golden.inputs.length} rows (max diff ${worst}, tolerance ${input.integration.tolerance})`,
          );
        }
      }

      // 3. latency, one row at a time (the SLO is per request)
      const width = Math.max(1, input.signature.inputs[0]?.shape.at(-1) ?? 1);
      const latencies: number[] = [];
      let latencyErrors = 0;
      for (let i = 0; i < input.integration.latencyRequests; i++) {
        const row = Array.from({ length: width }, (_, k) => ((i * 31 + k * 7) % 13) / 13 - 0.5);
        const started = performance.now();
        const res = await getJson(`${base}/infer`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            inputs: [{ name: inputName, datatype: inputType, shape: [1, width], data: row }],
          }),
        });
        latencies.push(performance.now() - started);
        if (res.status !== 200) latencyErrors++;
      }
      latencies.sort((a, b) => a - b);
      const p99 = latencies[Math.min(latencies.length - 1, Math.ceil(latencies.length * 0.99) - 1)] ?? 0;
      const p50 = latencies[Math.floor(latencies.length / 2)] ?? 0;
      const latencyOk = p99 <= input.p99LatencyMs && latencyErrors === 0;
      checks.push({
        check: 'latency',
        result: latencyOk ? 'pass' : 'fail',
        requests: latencies.length,
        p50Ms: Number(p50.toFixed(3)),
        p99Ms: Number(p99.toFixed(3)),
        limitMs: input.p99LatencyMs,
        errors: latencyErrors,
      });
      if (!latencyOk) {
        failures.push(
          `latency p99 ${p99.toFixed(1)} ms (limit ${input.p99LatencyMs} ms), ${latencyErrors} errors`,
        );
      }

      const verdict: Verdict = {
        check: 'integration',
        result: failures.length === 0 ? 'pass' : 'fail',
        reason:
          failures.length === 0
            ? `signature, golden set and latency (p99 ${p99.toFixed(1)} ms) pass`
            : failures.join('; '),
        checks,
      };
      log.info('integration tests', { model: input.model, version: input.version, result: verdict.result });
      return verdict;
    },
  };
}
