/**
 * Generates docs/modelspec.md from the schema itself, so the reference can never drift from
 * what the loader accepts: every field, its type, its default and what it means.
 *   node dist/specs/reference.js > docs/modelspec.md
 */
import { specJsonSchema } from './load';

interface Node {
  type?: string | string[];
  properties?: Record<string, Node>;
  items?: Node;
  required?: string[];
  default?: unknown;
  description?: string;
  enum?: unknown[];
  const?: unknown;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  anyOf?: Node[];
}

function typeOf(n: Node): string {
  if (n.enum) return n.enum.map((v) => `\`${String(v)}\``).join(' \\| ');
  if (n.const !== undefined) return `\`${String(n.const)}\``;
  if (n.anyOf) return n.anyOf.map(typeOf).join(' \\| ');
  if (n.type === 'array') return `list of ${n.items ? typeOf(n.items) : 'any'}`;
  if (n.pattern?.includes('ms|s|m|h|d')) return 'duration';
  return Array.isArray(n.type) ? n.type.join(' \\| ') : (n.type ?? 'any');
}

function range(n: Node): string {
  const lo = n.minimum ?? n.exclusiveMinimum;
  const rawHi = n.maximum ?? n.exclusiveMaximum;
  const hi = rawHi !== undefined && rawHi > 1e12 ? undefined : rawHi;
  if ((lo === undefined || (lo === 0 && n.type === 'integer')) && hi === undefined) return '';
  return ` (${lo ?? '…'}–${hi ?? '…'})`;
}

function rows(node: Node, prefix: string, out: string[]): void {
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    const path = prefix ? `${prefix}.${key}` : key;
    const required = node.required?.includes(key) && child.default === undefined;
    const def =
      child.default === undefined ? (required ? '**required**' : '') : `\`${JSON.stringify(child.default)}\``;
    const nested = child.type === 'object' && child.properties;
    if (!nested) {
      out.push(
        `| \`${path}\` | ${typeOf(child)}${range(child)} | ${def} | ${(child.description ?? '').replaceAll('|', '\\|')} |`,
      );
    }
    if (nested) rows(child, path, out);
    // A choice between a word and an object (e.g. `binary` or `{ bounded: { min, max } }`): the object's fields too.
    for (const alt of child.anyOf ?? []) if (alt.type === 'object' && alt.properties) rows(alt, path, out);
    if (child.type === 'array' && child.items?.properties) rows(child.items, `${path}[]`, out);
  }
}

export function modelSpecReference(): string {
  const out = [
    '# ModelSpec reference',
    '',
    'Generated from `specs/schema.ts` by `node dist/specs/reference.js`; a test keeps it current.',
    'Durations are written like `30s`, `15m`, `24h`, `1h30m`. Unknown fields are errors, not ignored.',
    'Example: [`specs/examples/fraud-detector.yaml`](../specs/examples/fraud-detector.yaml).',
    '',
    '| field | type | default | meaning |',
    '| --- | --- | --- | --- |',
  ];
  rows(specJsonSchema() as Node, '', out);
  out.push('', ...ANALYSIS_NOTE);
  return out.join('\n') + '\n';
}

/** What `canary.analysis` does with these fields, and a verdict it writes (docs/analysis.md has the rest). */
const ANALYSIS_NOTE = [
  '## The canary analysis (`canary.analysis`, method `sequential`)',
  '',
  "- Each look judges everything seen so far: errors over all the promotion's canary steps, latency over the step, with anytime-valid tests (e-values) that stay valid however often they are looked at. **One crossing rolls back**; `failureLimit` applies to the absolute SLO guard only (and to method `interval`).",
  "- `falseRollbackRate` (1%) bounds false rollbacks over the whole promotion: 60% to the error test (its first 3 looks also an exact group-sequential test with three quarters of that, the e-process the rest), 40% to latency (half to the first canary step). Errors are judged against `maxRelativeErrorRateIncrease` (20%) or `maxErrorRateIncrease`, whichever is larger; latency by stochastic order and by equality in distribution on the router's histogram, within max(`maxLatencyIncrease`, `minLatencyIncreaseMs`).",
  '- Too few requests is inconclusive, never a pass; `maxInconclusive` then `rollback.onInconclusive`.',
  '',
  "A failing look at a 5% canary (2× the baseline's errors, 200 rps):",
  '',
  '```',
  "error rate: candidate 2.417% vs baseline 0.930% over the step's 1200 vs 22800 requests is beyond the allowed 20% relative (29 candidate errors by the promotion's look 2 of its first 3 reached the early-look bound of 27 (exact test, p 0.00055 at its α 0.0045)); the candidate's error rate is 1.25× to 4.83× the baseline's (anytime-valid 0.988)",
  '```',
  '',
  "A passing one says what it could have caught: `… no evidence beyond the allowed 20% relative (e-value 0.288 < 667; early looks (first 3) passed); … at these counts 2.4× the baseline's errors (2.179%) would be caught by now about 4 times in 5`. How it works and what the defaults cost: [docs/analysis.md](analysis.md).",
];

if (require.main === module) process.stdout.write(modelSpecReference());
