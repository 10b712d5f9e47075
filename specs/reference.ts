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
  return out.join('\n') + '\n';
}

if (require.main === module) process.stdout.write(modelSpecReference());
