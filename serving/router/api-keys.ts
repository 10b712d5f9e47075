/**
 * The API keys file: who may call the router's front door, for which models, how fast. It holds
 * only the SHA-256 of each key, never a key, so the file (a Kubernetes Secret, a file in git
 * behind sops) gives nothing away to a reader.
 *
 * Why SHA-256 and not a slow hash: keys are random 256-bit strings made by a machine (`openssl
 * rand -hex 32`), not passwords, so there is nothing to brute-force that a slow hash would slow
 * down; and a slow hash (scrypt, bcrypt) on every request would hand any caller a way to burn the
 * router's CPU with made-up keys. GitHub and Stripe store their tokens the same way. The loader
 * refuses nothing about a key's strength (it never sees the key); docs/security.md says how to
 * make one.
 *
 * ```yaml
 * keys:
 *   - id: checkout            # names the key in metrics and logs (the key itself never appears)
 *     sha256: 9f86d081…       # hex SHA-256 of the key's exact bytes
 *     models: [fraud-detector] # or ['*'] for every model
 *     rateLimit: { perSecond: 100, burst: 200 }   # optional, per key over all its models
 * models:                     # optional: a limit per model over all keys
 *   fraud-detector:
 *     rateLimit: { perSecond: 1000, burst: 2000 }
 * ```
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import YAML from 'yaml';
import { z } from 'zod';

const KEY_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const MODEL = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

const RateLimitSchema = z
  .object({
    perSecond: z.number().positive('expected a number of requests per second > 0'),
    /** Requests that may arrive at once after a quiet spell (default: one second's worth, at least 1). */
    burst: z.number().int().positive('expected a whole number of requests ≥ 1').optional(),
  })
  .strict();

const KeySchema = z
  .object({
    id: z.string().regex(KEY_ID, 'expected a key id of letters, digits, ".", "_" or "-" (at most 64)'),
    sha256: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, "expected the key's SHA-256 as 64 hex digits (sha256sum), not the key"),
    models: z
      .array(
        z.string().refine((m) => m === '*' || MODEL.test(m), 'expected a model name or "*" (every model)'),
      )
      .min(1, 'expected at least one model, or ["*"] for every model'),
    rateLimit: RateLimitSchema.optional(),
  })
  .strict();

const ApiKeysSchema = z
  .object({
    keys: z.array(KeySchema),
    models: z
      .record(
        z.string().regex(MODEL, 'expected a model name'),
        z.object({ rateLimit: RateLimitSchema }).strict(),
      )
      .optional(),
  })
  .strict();

export interface RateLimit {
  perSecond: number;
  burst: number;
}

export interface ApiKey {
  id: string;
  /** Every model, or these. */
  models: '*' | ReadonlySet<string>;
  rateLimit?: RateLimit;
}

export interface ApiKeys {
  /** By lower-case hex SHA-256 of the key. */
  byHash: ReadonlyMap<string, ApiKey>;
  modelLimits: ReadonlyMap<string, RateLimit>;
}

export class ApiKeysError extends Error {
  override name = 'ApiKeysError';
}

function limitOf(r: z.output<typeof RateLimitSchema>): RateLimit {
  return { perSecond: r.perSecond, burst: r.burst ?? Math.max(1, Math.ceil(r.perSecond)) };
}

/** Validates a parsed keys document; every problem is named by its path in the file. */
export function parseApiKeys(doc: unknown, source: string): ApiKeys {
  const result = ApiKeysSchema.safeParse(doc);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join('.') || '(top level)'}: ${i.message}`);
    throw new ApiKeysError(`invalid API keys file ${source}:\n${lines.join('\n')}`);
  }
  const byHash = new Map<string, ApiKey>();
  const ids = new Set<string>();
  result.data.keys.forEach((k, i) => {
    if (ids.has(k.id))
      throw new ApiKeysError(`invalid API keys file ${source}:\n  keys.${i}.id: "${k.id}" appears twice`);
    const hash = k.sha256.toLowerCase();
    if (byHash.has(hash))
      throw new ApiKeysError(
        `invalid API keys file ${source}:\n  keys.${i}.sha256: the same key as "${byHash.get(hash)!.id}"`,
      );
    ids.add(k.id);
    byHash.set(hash, {
      id: k.id,
      models: k.models.includes('*') ? '*' : new Set(k.models),
      ...(k.rateLimit ? { rateLimit: limitOf(k.rateLimit) } : {}),
    });
  });
  const modelLimits = new Map<string, RateLimit>();
  for (const [model, m] of Object.entries(result.data.models ?? {}))
    modelLimits.set(model, limitOf(m.rateLimit));
  return { byHash, modelLimits };
}

/** Reads and validates the keys file (YAML, or JSON, which is YAML too). */
export async function loadApiKeys(file: string): Promise<ApiKeys> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new ApiKeysError(
      `cannot read the API keys file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    // The parser's message quotes no more than a line and column: the file holds only hashes anyway.
    throw new ApiKeysError(
      `API keys file ${file} is not valid YAML: ${(err as Error).message.split('\n')[0]}`,
    );
  }
  return parseApiKeys(doc, file);
}

export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export function allowsModel(key: ApiKey, model: string): boolean {
  return key.models === '*' || key.models.has(model);
}
