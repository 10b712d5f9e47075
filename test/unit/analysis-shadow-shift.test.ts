import { describe, expect, it } from 'vitest';
import { Rng } from '../../activities/analysis';
import { addShadowMoves, type ShadowEvidence } from '../../activities/analysis/shadow-shift';
import { compareOutputs, type Answer } from '../../serving/router/compare';

const json = (data: number[], status = 200): Answer => ({
  status,
  body: Buffer.from(
    JSON.stringify({ outputs: [{ name: 'score', shape: [data.length, 1], datatype: 'FP32', data }] }),
  ),
});

describe('shadow output moves', () => {
  it('counts moves beyond the tolerance and decision flips at the threshold', () => {
    const d = compareOutputs(json([0.2, 0.45, 0.6, 0.9]), json([0.2, 0.55, 0.4, 0.95]), 0.01, 0.5);
    expect(d.result).toBe('disagree');
    expect(d.moves).toEqual({ up: 2, down: 1, same: 1, agree: 2, flipUp: 1, flipDown: 1 });
    expect(compareOutputs(json([0.5]), json([0.5], 500), 0.01, 0.5)).toEqual({ result: 'error' });
  });
});

describe('sequential output-shift test', () => {
  const look = (rng: Rng, pUp: number, n: number) => {
    let up = 0;
    for (let i = 0; i < n; i++) if (rng.uniform() < pUp) up++;
    return { up, down: n - up, flipUp: 0, flipDown: 0 };
  };

  it('predictions that move both ways never fail, however long one looks', () => {
    const rng = new Rng(3);
    let fails = 0;
    for (let r = 0; r < 200; r++) {
      let ev: ShadowEvidence | undefined;
      for (let k = 0; k < 30; k++) ev = addShadowMoves(ev, look(rng, 0.7, 40), 0.2, 0.01);
      if (ev?.crossedAt !== undefined) fails++;
    }
    // At the boundary of the null (70% one way) the level holds: at most 1% plus noise.
    expect(fails).toBeLessThanOrEqual(6);
  });

  it('predictions that moved one way fail the shadow within a few looks', () => {
    const rng = new Rng(4);
    let caught = 0;
    for (let r = 0; r < 100; r++) {
      let ev: ShadowEvidence | undefined;
      for (let k = 0; k < 5; k++) ev = addShadowMoves(ev, look(rng, 0.95, 40), 0.2, 0.001);
      if (ev?.crossedAt !== undefined) caught++;
    }
    expect(caught).toBeGreaterThanOrEqual(95);
  });

  it('maxShift 0.5 turns the test off', () => {
    const ev = addShadowMoves(undefined, { up: 1000, down: 0, flipUp: 100, flipDown: 0 }, 0.5, 0.001);
    expect(ev.crossedAt).toBeUndefined();
  });
});
