/**
 * The router under a replica's overload fails fast: a real `runway router` process before a stub
 * replica whose answers a test delays or turns into 503. The replica's own 503 passes through once
 * (never retried on another replica or variant: no retry storm), and when every slot to the
 * replica is taken (`--max-inflight-per-replica`) the router refuses at once instead of queueing
 * behind it, without ejecting the replica. Figures under real load: bench/results/overload-router-*.md.
 */
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  closeAll,
  inferBody,
  putRoute,
  spawnRouterProcess,
  startStubModelServer,
  type RouterProcess,
  type StubServer,
} from '../helpers/router';

let router: RouterProcess;
let stub: StubServer;
let spare: StubServer;

async function infer(): Promise<{ status: number; body: { error?: string }; at: number }> {
  const res = await request(`${router.url}/v2/models/m/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: inferBody(),
  });
  const body = (await res.body.json()) as { error?: string };
  return { status: res.statusCode, body, at: performance.now() };
}

async function counter(name: string, labels: string): Promise<number> {
  const text = await (await request(`${router.url}/metrics`)).body.text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) && labels.split(',').every((kv) => l.includes(kv)))
    .reduce((a, l) => a + Number(l.split(' ').pop()), 0);
}

beforeAll(async () => {
  stub = await startStubModelServer();
  spare = await startStubModelServer();
  router = await spawnRouterProcess(['--max-inflight-per-replica', '4']);
  // A second variant that could take retries: it must never see the first one's overload.
  const r = await putRoute(router.url, 'm', {
    variants: [
      { name: 'v1', endpoints: [stub.url], weight: 100 },
      { name: 'v2', endpoints: [spare.url], weight: 0 },
    ],
  });
  expect(r.status).toBe(200);
}, 60_000);

afterAll(closeAll);

describe('router in front of an overloaded replica', () => {
  it("passes the replica's 503 through once, never retried", async () => {
    stub.behaviour = { status: 503 };
    // Four at a time: within the router's limit per replica, so each one reaches the replica.
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(...(await Promise.all(Array.from({ length: 4 }, infer))));
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(503));
    expect(answers[0]!.body.error).toBe('stub failure'); // the replica's own answer, as it sent it
    expect(stub.received).toBe(20);
    expect(spare.received).toBe(0);
    expect(await counter('runway_router_failovers_total', '')).toBe(0);
    // A deliberate 503 says nothing about the replica's health: it stays in rotation.
    stub.behaviour = {};
    expect((await infer()).status).toBe(200);
  });

  it('refuses at once beyond its in-flight limit per replica, and keeps the replica', async () => {
    stub.behaviour = { delayMs: 2_000 };
    const before = stub.received;
    const t0 = performance.now();
    const answers = await Promise.all(Array.from({ length: 10 }, infer));
    const ok = answers.filter((a) => a.status === 200);
    const refused = answers.filter((a) => a.status === 503);
    expect(ok).toHaveLength(4);
    expect(refused).toHaveLength(6);
    expect(stub.received - before).toBe(4);
    expect(spare.received).toBe(0);
    expect(refused[0]!.body.error).toMatch(
      /variant "v1" of model "m" has 4 requests in flight on its least loaded replica .*retry later/,
    );
    // Refused while the four were still at the replica: not queued behind them.
    const lastRefusal = Math.max(...refused.map((a) => a.at));
    const firstAnswer = Math.min(...ok.map((a) => a.at));
    expect(lastRefusal).toBeLessThan(firstAnswer);
    expect(firstAnswer - t0).toBeGreaterThanOrEqual(1_900);
    expect(await counter('runway_router_upstream_errors_total', 'reason="saturated"')).toBe(6);
    expect(await counter('runway_router_requests_total', 'variant="v1",code_class="5xx"')).toBe(20 + 6);
    expect(await counter('runway_router_failovers_total', '')).toBe(0);
    // Busy is not broken: the next request goes to the same replica.
    stub.behaviour = {};
    expect((await infer()).status).toBe(200);
    expect(spare.received).toBe(0);
  }, 30_000);
});
