/**
 * Loading a ModelSpec from YAML: parse, validate, resolve relative paths against the spec's folder.
 * Errors name the file, the line, the field path and what was expected, all at once, so one edit
 * fixes them all: `specs/fraud.yaml:31 canary.steps[1].weight: expected weights to increase ...`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { isMap, isScalar, LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { sha256Hex } from '../common/digest';
import { modelSpecSchema, type ModelSpec } from './schema';
import { DEFAULT_CANARY_STEPS } from './strategy';

export interface SpecProblem {
  path: string;
  message: string;
  line?: number;
}

export class SpecError extends Error {
  constructor(
    readonly file: string,
    readonly problems: SpecProblem[],
  ) {
    super(
      `${file} is not a valid ModelSpec:\n` +
        problems
          .map((p) => `  ${file}${p.line ? `:${p.line}` : ''}  ${p.path || '(root)'}: ${p.message}`)
          .join('\n'),
    );
    this.name = 'SpecError';
  }
}

export interface LoadedSpec {
  spec: ModelSpec;
  /** sha256 of the file's bytes: the audit trail names exactly which spec ran. */
  sha256: string;
  file: string;
}

export function formatPath(p: ReadonlyArray<PropertyKey>): string {
  return p.reduce<string>(
    (acc, key) => (typeof key === 'number' ? `${acc}[${key}]` : acc ? `${acc}.${String(key)}` : String(key)),
    '',
  );
}

/** How a value reads in a message: `the string "fast"`, `the number 3`, `a list`. */
function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
  if (typeof v === 'number' || typeof v === 'boolean') return `the ${typeof v} ${String(v)}`;
  if (typeof v === 'object') return 'a mapping';
  return typeof v;
}

const EXPECTED: Record<string, string> = {
  number: 'a number',
  int: 'an integer',
  string: 'a string',
  boolean: 'true or false',
  object: 'a mapping',
  array: 'a list',
};

function valueAt(data: unknown, p: ReadonlyArray<PropertyKey>): unknown {
  let v = data;
  for (const key of p) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

/** The field names an object schema at `p` accepts (through defaults, optionals, arrays). */
function knownFields(p: ReadonlyArray<PropertyKey>): string[] {
  // zod keeps each schema's structure in `_zod.def`; only the wrappers the ModelSpec uses matter.
  interface Def {
    type: string;
    innerType?: { _zod: { def: Def } };
    in?: { _zod: { def: Def } };
    element?: { _zod: { def: Def } };
    shape?: Record<string, { _zod: { def: Def } }>;
  }
  const unwrap = (d: Def): Def => {
    for (;;) {
      const next = d.innerType ?? d.in;
      if (!next || !['default', 'optional', 'prefault', 'nullable', 'pipe'].includes(d.type)) return d;
      d = next._zod.def;
    }
  };
  let def = unwrap((modelSpecSchema as unknown as { _zod: { def: Def } })._zod.def);
  for (const key of p) {
    const next = typeof key === 'number' ? def.element : def.shape?.[String(key)];
    if (!next) return [];
    def = unwrap(next._zod.def);
  }
  return def.type === 'object' && def.shape ? Object.keys(def.shape) : [];
}

/** Edits between two names, a swap of neighbours counting as one (`nmae` is one from `name`). */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = d[i]!;
      row[j] = Math.min(
        d[i - 1]![j]! + 1,
        row[j - 1]! + 1,
        d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        row[j] = Math.min(row[j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/** "did you mean `approval`?" when exactly one known field is a small typo away. */
function suggestion(unknown: string, known: string[]): string {
  const close = known.filter(
    (k) => editDistance(unknown.toLowerCase(), k.toLowerCase()) <= Math.max(1, Math.min(2, k.length >> 2)),
  );
  return close.length === 1 ? `; did you mean \`${close[0]}\`?` : '';
}

function describeIssue(issue: z.core.$ZodIssue, data: unknown): string {
  const value = valueAt(data, issue.path);
  if (issue.code === 'invalid_type') {
    const expected = EXPECTED[issue.expected] ?? issue.expected;
    return value === undefined
      ? `required (expected ${expected})`
      : `expected ${expected}, got ${describeValue(value)}`;
  }
  if (issue.code === 'invalid_value' && issue.values.length > 1)
    return `expected one of ${issue.values.map(String).join(', ')}, got ${describeValue(value)}`;
  return issue.message;
}

/** Validates an already-parsed object; `file` only labels errors. */
export function parseSpec(
  data: unknown,
  file = '<spec>',
  locate?: (p: PropertyKey[], key?: string) => number | undefined,
): ModelSpec {
  const result = modelSpecSchema.safeParse(data);
  if (!result.success) {
    const problems: SpecProblem[] = [];
    for (const issue of result.error.issues) {
      const at = issue.path as PropertyKey[];
      if (issue.code === 'unrecognized_keys') {
        // One problem per field, at the field's own line, so each reads as its own mistake.
        const known = knownFields(at);
        for (const key of issue.keys) {
          problems.push({
            path: formatPath([...at, key]),
            message: `unknown field ${key}${suggestion(key, known)}`,
            line: locate?.(at, key),
          });
        }
        continue;
      }
      problems.push({ path: formatPath(at), message: describeIssue(issue, data), line: locate?.(at) });
    }
    // In file order, so the list reads top to bottom next to the editor.
    problems.sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity));
    throw new SpecError(file, problems);
  }
  return result.data;
}

export function loadSpecText(text: string, file: string): ModelSpec {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  if (doc.errors.length > 0) {
    throw new SpecError(
      file,
      doc.errors.map((e) => ({
        path: '',
        message: `YAML syntax: ${e.message.split('\n')[0]}`,
        line: e.linePos?.[0]?.line,
      })),
    );
  }
  const locate = (p: PropertyKey[], key?: string): number | undefined => {
    if (key !== undefined) {
      // An unknown field: the line of its own key, not of the block that holds it.
      const parent = (p.length ? doc.getIn(p as unknown[], true) : doc.contents) as unknown;
      if (isMap(parent)) {
        const pair = parent.items.find((i) => isScalar(i.key) && String(i.key.value) === key);
        const range = (pair?.key as { range?: [number, number, number] } | undefined)?.range;
        if (range) return lines.linePos(range[0]).line;
      }
    }
    // Walk up to the nearest node that exists (a missing field points at its parent).
    for (let n = p.length; n >= 0; n--) {
      const node = doc.getIn(p.slice(0, n) as unknown[], true) as
        { range?: [number, number, number] } | undefined;
      if (node && typeof node === 'object' && node.range) return lines.linePos(node.range[0]).line;
    }
    return undefined;
  };
  let data: unknown;
  try {
    // Aliases are resolved here; an alias to an unknown anchor (`*x`) throws a ReferenceError.
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new SpecError(file, [
      { path: '', message: `YAML: ${err instanceof Error ? err.message : String(err)}` },
    ]);
  }
  return parseSpec(data, file, locate);
}

/** Reads, validates and resolves a spec file. Relative dataset paths resolve against its folder. */
export function loadSpecFile(file: string): LoadedSpec {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw new Error(`cannot read spec ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const spec = loadSpecText(bytes.toString('utf8'), file);
  const dir = path.dirname(path.resolve(file));
  const resolve = (p: string) => (path.isAbsolute(p) ? p : path.resolve(dir, p));
  spec.evaluation.dataset = resolve(spec.evaluation.dataset);
  if (spec.evaluation.labelsFile) spec.evaluation.labelsFile = resolve(spec.evaluation.labelsFile);
  if (spec.integration.goldenSet) spec.integration.goldenSet = resolve(spec.integration.goldenSet);
  return { spec, sha256: sha256Hex(bytes), file: path.resolve(file) };
}

interface JsonNode {
  properties?: Record<string, JsonNode>;
  default?: unknown;
}

/** JSON Schema of what people write, for editors (yaml-language-server) and docs. */
export function specJsonSchema(): Record<string, unknown> {
  const schema = modelSpecSchema.toJSONSchema({ io: 'input', unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;
  // canary.steps has no schema default (whether it was written decides if a linear or blue-green
  // spec wrongly carries it; the spec's transform fills it): editors and docs still show it.
  const steps = (schema as JsonNode).properties?.canary?.properties?.steps;
  if (steps) steps.default = DEFAULT_CANARY_STEPS;
  return { ...schema, $id: 'https://runway.dev/schemas/modelspec-v1.json', title: 'runway ModelSpec' };
}
