/**
 * Validation of a Route as the admin API receives it. A refused route names the field (as a path
 * such as `variants[1].weight`) and what was expected, so whoever turned the dial can fix it.
 */
import { z } from 'zod';
import type { Route } from './route';

/** The spec's default unit header (experiment.unitHeader): one definition, in specs/. */
export { UNIT_HEADER_DEFAULT as DEFAULT_STICKY_HEADER } from '../../specs/serving-defaults';

const httpUrl = z.string().refine(
  (s) => {
    try {
      const u = new URL(s);
      return (u.protocol === 'http:' || u.protocol === 'https:') && u.host !== '';
    } catch {
      return false;
    }
  },
  { message: 'expected an http(s) URL such as http://127.0.0.1:8001' },
);

const variantSchema = z.object({
  name: z
    .string({ message: 'expected a string' })
    .regex(
      /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/,
      'expected a name of letters, digits, ".", "_" or "-" (1–63 chars)',
    ),
  endpoints: z.array(httpUrl, { message: 'expected an array of URLs' }),
  weight: z
    .number({ message: 'expected a number' })
    .int('expected an integer')
    .min(0, 'expected an integer ≥ 0')
    .max(100, 'expected an integer ≤ 100'),
});

const finite = z.number({ message: 'expected a number' }).refine(Number.isFinite, 'expected a finite number');

export const rewardShapeSchema = z.union(
  [
    z.literal('binary'),
    z
      .object({
        bounded: z
          .object({ min: finite, max: finite })
          .strict()
          .refine((b) => b.min < b.max && Number.isFinite(b.max - b.min), {
            message: 'expected min < max with a finite difference',
            path: ['max'],
          }),
      })
      .strict(),
  ],
  { message: 'expected "binary" or { bounded: { min, max } }' },
);

export const routeSchema = z
  .object({
    variants: z
      .array(variantSchema, { message: 'expected an array of variants' })
      .min(1, 'expected at least one variant'),
    mirror: z
      .object({
        variant: z.string({ message: 'expected a variant name' }),
        percent: z
          .number({ message: 'expected a number' })
          .min(0, 'expected 0–100')
          .max(100, 'expected 0–100'),
        allowWeightedMirror: z.boolean({ message: 'expected true or false' }).optional(),
        tolerance: z.number({ message: 'expected a number' }).min(0, 'expected ≥ 0').optional(),
        threshold: z
          .number({ message: 'expected a number' })
          .refine(Number.isFinite, 'expected a finite number')
          .optional(),
      })
      .strict()
      .optional(),
    preview: z
      .object({
        variant: z.string({ message: 'expected a variant name' }),
        header: z
          .string({ message: 'expected a header name' })
          .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'expected a valid HTTP header name'),
        value: z.string({ message: 'expected a string' }).min(1, 'expected a non-empty value').optional(),
      })
      .strict()
      .optional(),
    sticky: z
      .object({
        header: z
          .string({ message: 'expected a header name' })
          .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'expected a valid HTTP header name'),
      })
      .strict()
      .optional(),
    reward: rewardShapeSchema.optional(),
    feedback: z
      .object({
        tokenSha256: z
          .string({ message: 'expected a hex sha256' })
          .regex(/^[0-9a-f]{64}$/, "expected the token's sha256 as 64 lowercase hex digits"),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((route, ctx) => {
    const total = route.variants.reduce((sum, v) => sum + v.weight, 0);
    if (total !== 100) {
      ctx.addIssue({
        code: 'custom',
        path: ['variants'],
        message: `expected weights summing to 100, got ${total}`,
      });
    }
    const seen = new Set<string>();
    route.variants.forEach((v, i) => {
      if (seen.has(v.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['variants', i, 'name'],
          message: `expected unique names, "${v.name}" repeats`,
        });
      }
      seen.add(v.name);
      if (v.weight > 0 && v.endpoints.length === 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['variants', i, 'endpoints'],
          message: `expected at least one endpoint for a variant with weight ${v.weight}`,
        });
      }
    });
    if (route.preview) {
      const target = route.variants.find((v) => v.name === route.preview?.variant);
      if (!target || target.endpoints.length === 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['preview', 'variant'],
          message: target
            ? `expected the preview target "${target.name}" to have endpoints`
            : `expected one of the route's variants (${[...seen].join(', ')}), got "${route.preview.variant}"`,
        });
      }
    }
    if (route.mirror) {
      const target = route.variants.find((v) => v.name === route.mirror?.variant);
      if (!target) {
        ctx.addIssue({
          code: 'custom',
          path: ['mirror', 'variant'],
          message: `expected one of the route's variants (${[...seen].join(', ')}), got "${route.mirror.variant}"`,
        });
      } else {
        if (target.weight > 0 && !route.mirror.allowWeightedMirror) {
          ctx.addIssue({
            code: 'custom',
            path: ['mirror', 'variant'],
            message: `expected a weight-0 shadow variant; "${target.name}" has weight ${target.weight} (set mirror.allowWeightedMirror: true if intended)`,
          });
        }
        if (route.mirror.percent > 0 && target.endpoints.length === 0) {
          ctx.addIssue({
            code: 'custom',
            path: ['mirror', 'variant'],
            message: `expected the mirror target "${target.name}" to have endpoints`,
          });
        }
      }
    }
  });

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out === '' ? '(body)' : out;
}

export class RouteValidationError extends Error {
  constructor(readonly issues: { path: string; message: string }[]) {
    super(`invalid route: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
    this.name = 'RouteValidationError';
  }
}

/** Parses an untrusted document into a Route, or throws RouteValidationError naming each bad field. */
export function parseRoute(input: unknown): Route {
  const result = routeSchema.safeParse(input);
  if (!result.success) {
    throw new RouteValidationError(
      result.error.issues.map((issue) => ({ path: formatPath(issue.path), message: issue.message })),
    );
  }
  return result.data;
}

/** Model names travel in URL paths and metric labels: keep them boring. */
export function isValidModelName(name: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(name);
}
