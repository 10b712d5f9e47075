/**
 * Input hardening: whatever text or object arrives, the ModelSpec loader answers with a SpecError
 * listing problems (never another exception, never a hang).
 */
import fc from 'fast-check';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { loadSpecText, parseSpec, SpecError } from '../../specs/load';
import { CASE_CPU_MS, cpuMsSince } from '../helpers/cpu';

function onlySpecErrors(run: () => unknown): void {
  const started = process.cpuUsage();
  try {
    run();
  } catch (err) {
    if (!(err instanceof SpecError)) throw err;
    expect(err.problems.length).toBeGreaterThan(0);
    for (const p of err.problems) expect(p.message.length).toBeGreaterThan(0);
  }
  expect(cpuMsSince(started)).toBeLessThan(CASE_CPU_MS);
}

describe('ModelSpec loader under arbitrary input', () => {
  it('arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (text) =>
        onlySpecErrors(() => loadSpecText(text, 'f.yaml')),
      ),
      { numRuns: 400 },
    );
  });

  it('arbitrary YAML documents', () => {
    fc.assert(
      fc.property(fc.anything({ maxDepth: 3 }), (value) => {
        let text: string | undefined;
        try {
          text = stringify(value) as string | undefined;
        } catch {
          return; // not representable as YAML: nothing to feed
        }
        if (typeof text !== 'string') return;
        onlySpecErrors(() => loadSpecText(text, 'f.yaml'));
      }),
      { numRuns: 300 },
    );
  });

  it('arbitrary objects, serialized as YAML and given as objects', () => {
    fc.assert(
      fc.property(fc.object({ maxDepth: 3 }), (obj) => {
        onlySpecErrors(() => parseSpec(obj));
        let text: string;
        try {
          text = stringify(obj);
        } catch {
          return; // not representable as YAML
        }
        onlySpecErrors(() => loadSpecText(text, 'f.yaml'));
      }),
      { numRuns: 300 },
    );
  });

  it('arbitrary objects shaped like a spec', () => {
    const field = fc.oneof(
      fc.string(),
      fc.integer(),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
      fc.array(fc.string()),
    );
    fc.assert(
      fc.property(
        fc.record(
          {
            name: field,
            owner: field,
            slos: fc.dictionary(fc.constantFrom('p99LatencyMs', 'errorRate', 'minRequests', 'x'), field),
            canary: fc.record({
              interval: field,
              steps: fc.array(fc.record({ weight: field, pause: field })),
            }),
            evaluation: fc.dictionary(fc.constantFrom('dataset', 'min', 'maxRegression'), field),
          },
          { requiredKeys: [] },
        ),
        (obj) => onlySpecErrors(() => parseSpec(obj)),
      ),
      { numRuns: 300 },
    );
  });
});
