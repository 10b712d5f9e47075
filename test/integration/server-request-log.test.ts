/**
 * Inference request logging on a real model server (real onnxruntime sessions): sampled, inputs
 * redacted to a digest by default, values only when asked, failures rate-limited. The log lines
 * are captured through the server's log sink.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { projectRoot } from '../../common/paths';
import { startModelServer, type ModelServer } from '../../serving/server';

const MODEL = path.join(projectRoot, 'demo/models/fraud-v1.onnx');
// A value no other part of a request or a log line would contain by accident.
const SECRET = 12345.678;
const features = [SECRET, 0.1, -0.2, 0.3, -0.4, 0.5, -0.6, 0.7];

let server: ModelServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(opts: { requestLogSample: number; requestLogInputs?: boolean }): Promise<string[]> {
  const lines: string[] = [];
  server = await startModelServer({
    model: MODEL,
    name: 'fraud',
    port: 0,
    ...opts,
    logSink: (l) => lines.push(l),
  });
  return lines;
}

async function infer(body: unknown): Promise<number> {
  const res = await fetch(`${server!.url}/v2/models/fraud/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  await res.arrayBuffer();
  return res.status;
}

const good = (id: string) => ({
  id,
  inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 8], data: features }],
});
const requestLines = (lines: string[]) => lines.filter((l) => /requests {2}inference/.test(l));

describe('inference request log', () => {
  it('logs every request at sample 1 with a digest of the inputs, never their values', async () => {
    const lines = await start({ requestLogSample: 1 });
    for (let i = 0; i < 5; i++) expect(await infer(good(`req-${i}`))).toBe(200);
    const logged = requestLines(lines);
    expect(logged).toHaveLength(5);
    const digest = createHash('sha256')
      .update(Buffer.from(new Float32Array(features).buffer))
      .digest('hex')
      .slice(0, 16);
    for (const [i, l] of logged.entries()) {
      expect(l).toContain('model=fraud  version=1');
      expect(l).toContain(`id=req-${i}`);
      expect(l).toContain('status=200');
      expect(l).toContain(`"sha256":"${digest}"`);
      expect(l).toContain('"shape":[1,8]');
      expect(l).toContain('"name":"score"');
    }
    expect(lines.join('\n')).not.toContain('12345');
  });

  it('logs input values only when asked to', async () => {
    const lines = await start({ requestLogSample: 1, requestLogInputs: true });
    expect(await infer(good('with-values'))).toBe(200);
    const [line] = requestLines(lines);
    expect(line).toContain('12345.6');
    expect(line).not.toContain('sha256');
  });

  it('samples successes, always logs failures without echoing what was sent, and rate-limits them', async () => {
    const lines = await start({ requestLogSample: 0 });
    for (let i = 0; i < 20; i++) expect(await infer(good(`ok-${i}`))).toBe(200);
    expect(requestLines(lines)).toEqual([]);

    // A bad element: the client's answer names the value, the log line does not.
    const bad = {
      inputs: [
        { name: 'features', datatype: 'FP32', shape: [1, 8], data: ['12345-secret', ...features.slice(1)] },
      ],
    };
    const res = await fetch(`${server!.url}/v2/models/fraud/infer`, {
      method: 'POST',
      body: JSON.stringify(bad),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toContain('12345-secret');
    const [first] = requestLines(lines);
    expect(first).toContain('status=400');
    expect(first).toMatch(/data\[0\] is not a number/);
    expect(lines.join('\n')).not.toContain('12345');

    // A burst of 60 bad requests within a second logs at most 10 per second.
    const burstStart = Date.now();
    for (let i = 0; i < 60; i++) expect(await infer({ inputs: [] })).toBe(400);
    const elapsed = Date.now() - burstStart;
    const logged = requestLines(lines).length - 1;
    expect(logged).toBeLessThanOrEqual(10 * (Math.ceil(elapsed / 1000) + 1));
    expect(logged).toBeLessThan(60);
    // the next logged failure says how many were left out
    await new Promise((r) => setTimeout(r, 1_100));
    expect(await infer({ inputs: [] })).toBe(400);
    expect(requestLines(lines).at(-1)).toMatch(/suppressed=\d+/);
    // every request of the burst is either logged or counted as suppressed on a later line
    const suppressed = requestLines(lines).reduce(
      (n, l) => n + Number(/suppressed=(\d+)/.exec(l)?.[1] ?? 0),
      0,
    );
    expect(suppressed).toBe(60 - logged);

    // The metrics count both: lines written and lines the limit left out.
    const metrics = await (await fetch(`${server!.url}/metrics`)).text();
    const counted = (outcome: string): number =>
      Number(
        new RegExp(
          `runway_server_request_log_lines_total\\{model="fraud",version="1",outcome="${outcome}"\\} (\\d+)`,
        ).exec(metrics)![1],
      );
    expect(counted('logged')).toBe(requestLines(lines).length);
    expect(counted('suppressed')).toBe(suppressed);
  });

  it('refuses a sample share outside 0..1, naming the flag', async () => {
    await expect(start({ requestLogSample: 1.5 })).rejects.toThrow(/--request-log-sample: expected 0\.\.1/);
  });
});
