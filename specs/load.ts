/**
 * Loading a ModelSpec from YAML: parse, validate, resolve relative paths against the spec's folder.
 * Errors name the file, the line, the field path and what was expected, all at once, so one edit
 * fixes them all: `specs/fraud.yaml:31 canary.steps[1].weight: expected weights to increase ...`.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { modelSpecSchema, type ModelSpec } from './schema';

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

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return `unknown field(s) ${issue.keys.join(', ')}`;
  if (issue.code === 'invalid_type' && issue.input === undefined)
    return `required (expected ${issue.expected})`;
  return issue.message;
}

/** Validates an already-parsed object; `file` only labels errors. */
export function parseSpec(
  data: unknown,
  file = '<spec>',
  locate?: (p: PropertyKey[]) => number | undefined,
): ModelSpec {
  const result = modelSpecSchema.safeParse(data);
  if (!result.success) {
    throw new SpecError(
      file,
      result.error.issues.map((issue) => ({
        path: formatPath(issue.path),
        message: describeIssue(issue),
        line: locate?.(issue.path as PropertyKey[]),
      })),
    );
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
  const locate = (p: PropertyKey[]): number | undefined => {
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
  return { spec, sha256: createHash('sha256').update(bytes).digest('hex'), file: path.resolve(file) };
}

/** JSON Schema of what people write, for editors (yaml-language-server) and docs. */
export function specJsonSchema(): Record<string, unknown> {
  const schema = modelSpecSchema.toJSONSchema({ io: 'input', unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;
  return { ...schema, $id: 'https://runway.dev/schemas/modelspec-v1.json', title: 'runway ModelSpec' };
}
