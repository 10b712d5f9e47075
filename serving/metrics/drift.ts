/**
 * Reading the model servers' drift histograms (serving/server/drift.ts) for one version: each
 * replica's counts since it started, summed. Replicas share the reference they were deployed with.
 */
import { request } from 'undici';
import type { DriftCounts, DriftReference } from '../../activities/analysis/drift';

export interface VersionDrift {
  reference: DriftReference;
  counts: DriftCounts;
  replicas: number;
}

export async function readDrift(
  endpoints: readonly string[],
  model: string,
  version: string,
  timeoutMs = 5000,
): Promise<VersionDrift> {
  if (endpoints.length === 0) throw new Error(`no ready replica of ${model} v${version} to read drift from`);
  let reference: DriftReference | undefined;
  const counts: DriftCounts = { rows: 0, features: {} };
  for (const ep of endpoints) {
    const url = `${ep}/v2/models/${encodeURIComponent(model)}/versions/${encodeURIComponent(version)}/drift`;
    const res = await request(url, { headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    const body = (await res.body.json()) as {
      error?: string;
      reference?: DriftReference;
      counts?: DriftCounts;
    };
    if (res.statusCode !== 200 || !body.reference || !body.counts)
      throw new Error(`${url} answered ${res.statusCode}: ${body.error ?? 'no drift report'}`);
    reference ??= body.reference;
    counts.rows += body.counts.rows;
    for (const [f, c] of Object.entries(body.counts.features)) {
      const sum = (counts.features[f] ??= new Array<number>(c.length).fill(0));
      c.forEach((x, i) => (sum[i] = (sum[i] ?? 0) + x));
    }
  }
  return { reference: reference!, counts, replicas: endpoints.length };
}
