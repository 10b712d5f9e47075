/**
 * A real `runway serve` process (heavy demo model, batching off so a 3× open-loop load is within
 * what a generator on the same small machine can offer) at 3× its measured capacity, then at half
 * of it: the bounded queue refuses the excess with 503 instead of collapsing, every accepted
 * request is answered correctly, memory stays bounded, and it recovers at once. Then, batching on,
 * the goodput at 3×: at least 70% of the capacity measured around it (per CPU second) is still
 * answered 200. The figures (1.5×, 2×, 3×, batching off and on) are in
 * bench/results/overload-*.md (`npm run bench:overload`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runGoodput, runOverload, stopOverloadServers } from '../../bench/overload-run';
import { projectRoot } from '../../common/paths';

const MODEL = path.join(projectRoot, 'demo/models/heavy.onnx');
const QUEUE = 128;

// runOverload stops its server itself; after a timed-out test, this does.
afterAll(stopOverloadServers);

describe('model server at 3× its capacity', () => {
  it(
    'rejects the excess, loses no accepted request, keeps memory bounded and recovers',
    {
      // ~16 s alone (server start + 1 s warm-up + 3 + 6 + 4 s of load); room for a loaded machine.
      timeout: 90_000,
    },
    async () => {
      expect(fs.existsSync(MODEL), `${MODEL} missing: npm run demo:models`).toBe(true);
      const result = await runOverload({
        model: MODEL,
        serveArgs: ['--max-queue-size', String(QUEUE), '--max-batch-size', '1', '--request-log-sample', '0'],
        capacityMs: 3_000,
        overloadMs: 6_000,
        overloadFactor: 3,
        recoveryMs: 4_000,
        recoveryFactor: 0.5,
        maxInFlight: 2_048,
        log: (l) => console.info(`overload: ${l}`),
      });
      const [capacity, over, recovery] = result.phases;
      if (!capacity || !over || !recovery) throw new Error('missing phases');
      expect(result.serverAlive).toBe(true);
      expect(result.capacityRps).toBeGreaterThan(50);

      // Overload: refusals, not failures. Every request got an answer; every 200 is a real one.
      expect(over.rejected).toBeGreaterThan(0);
      expect(over.rejectedShare).toBeGreaterThan(0.3);
      expect(over.otherStatus).toEqual({});
      expect(over.malformed).toBe(0);
      expect(over.transportErrors).toBe(0);
      expect(over.ok + over.rejected).toBe(over.sent);
      // The load really was ~3× (the generator kept up: nothing due was left unsent).
      expect(over.notSent).toBe(0);
      expect(over.sent / over.seconds).toBeGreaterThan(2 * result.capacityRps);
      // No collapse: most of the capacity is still served while two thirds are refused (measured ~89%
      // on a quiet machine; 65% with the 2 cores shared by a load average of ~10, which is why the
      // bound stays at half rather than the 70% the benchmark's figures would suggest).
      expect(over.okRps).toBeGreaterThan(0.5 * result.capacityRps);
      // Bounded queue: an accepted request waits for at most the 128 ahead of it, ~128 / okRps s
      // (~200 ms here; measured p99 ~190 ms). An unbounded queue would grow by 2× capacity every
      // second and reach waits of several seconds within the 6 s; the bound is 5× the expected wait.
      const fullQueueWaitMs = (QUEUE / over.okRps) * 1000;
      expect(over.p99Ms).toBeLessThan(Math.max(1_000, 5 * fullQueueWaitMs));
      // Bounded memory: 128 queued bodies are a few kB; what grows is sockets and heap for the
      // ~2000 connections the generator opens (measured +10 MB over the warm idle RSS of ~200 MB).
      // 150 MB is 15× that: room for GC timing on a loaded machine, not for a growing backlog.
      expect(over.peakRssMb).toBeLessThan(result.idleRssMb + 150);

      // Recovery: at half the capacity nothing is refused and the queue is gone: the median request
      // no longer waits behind a full queue (measured ~1 ms vs ~150 ms; relative, since other test
      // files share the CPU).
      expect(recovery.rejected).toBe(0);
      expect(recovery.transportErrors).toBe(0);
      expect(recovery.ok).toBe(recovery.sent);
      expect(recovery.p50Ms).toBeLessThan(over.p50Ms / 4);
      // …and the tail is bounded: even the slowest 1% wait less than the slowest 1% did behind a
      // full queue (measured ~15 ms vs ~190 ms alone).
      expect(recovery.p99Ms).toBeLessThan(over.p99Ms);
    },
  );
});

describe('model server at 3× its capacity, batching on', () => {
  it(
    'answers at least 70% of its capacity (per CPU-second) with 200 and refuses the rest at once',
    {
      // ~40 s alone (server start + 1 s warm-up + 6 × 2 s capacity + 5 × 3 s overload).
      timeout: 120_000,
    },
    async () => {
      expect(fs.existsSync(MODEL), `${MODEL} missing: npm run demo:models`).toBe(true);
      const result = await runGoodput({
        model: MODEL,
        serveArgs: [
          '--max-queue-size',
          String(QUEUE),
          '--max-batch-size',
          '8',
          '--preferred-batch-sizes',
          '8',
          '--request-log-sample',
          '0',
        ],
        // Capacity is measured in the test, right before and after each overload: on a shared
        // machine a figure from another moment (or another machine) would say nothing.
        rounds: 5,
        capacityMs: 2_000,
        overloadMs: 3_000,
        overloadFactor: 3,
        maxInFlight: 2_048,
        log: (l) => console.info(`goodput: ${l}`),
      });
      expect(result.serverAlive).toBe(true);
      for (const { overload } of result.rounds) {
        // The excess is refused (503), not failed: no other status, no wrong answer, no lost request.
        expect(overload.rejected).toBeGreaterThan(0);
        expect(overload.otherStatus).toEqual({});
        expect(overload.malformed).toBe(0);
        expect(overload.transportErrors).toBe(0);
        expect(overload.ok + overload.rejected).toBe(overload.sent);
      }
      // Rounds that really offered 3× open loop (≥ 2.5× of the capacity before it was sent: a
      // starved server can hold the generator's 2,048 connections and leave due arrivals unsent).
      const threeX = result.rounds.filter(
        (r) => r.overload.sent / r.overload.seconds >= 2.5 * r.before.okRps,
      );
      expect(threeX.length).toBeGreaterThan(0);
      // Goodput, per CPU second the server got (200s per core-second under overload over the
      // capacity's requests per core-second around it). On this shared 2-core machine the CPU left
      // to the server swings 2–3× within seconds, and requests per wall-clock second would compare
      // two different machines. Foreign load only ever takes CPU away, so the best round is the
      // nearest to the server's own figure (as timeit keeps the fastest run): at least one 3× round
      // answers ≥ 70% of capacity, the bound. Since onnxruntime's idle threads sleep
      // instead of spinning (their spinning was counted as server CPU that answered nothing), the
      // best rounds measured 82–87% in three runs alone and one full CI run; while they spun, 65%
      // once in a CI run. A shed path that cost as much as an answer gives ~33% in every round.
      // `npm run bench:overload` reports the real figure.
      expect(Math.max(...threeX.map((r) => r.goodputPerCpu))).toBeGreaterThanOrEqual(0.7);
      // …and the typical round does not collapse: under foreign load the server falls into rounds
      // where refusals take most of the little CPU it gets (medians now 0.80–0.82, worst rounds
      // 0.77; while the threads spun, medians 0.49–0.78: the gap to the 90% target).
      expect(result.goodputPerCpu).toBeGreaterThanOrEqual(0.5);
    },
  );
});
