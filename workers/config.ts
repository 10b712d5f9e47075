import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { stateDir } from '../common/paths';
import { platformPolicySchema } from '../specs/policy';
import { FILTER_NAMES } from '../notifications/events';
import type { NotificationsConfig } from '../notifications/notifier';
import { WEBHOOK_FORMATS } from '../notifications/payload';
import { DEFAULT_NAMESPACE, TASK_QUEUE } from '../workflows/constants';

/**
 * Platform configuration: which Temporal, fleet driver, router, metrics source and registry the
 * worker and CLI talk to. The ModelSpec says what a model needs; this file says what runs.
 *
 * Sources, later ones winning: built-in defaults, a YAML/JSON file (`--config`, `RUNWAY_CONFIG`,
 * or `<state dir>/platform.yaml` when it exists), then environment variables (see ENV below).
 */

const nonEmpty = z.string().trim().min(1, 'expected a non-empty string');
const url = z.url({ message: 'expected an absolute URL such as http://127.0.0.1:8080' });

const TlsSchema = z
  .object({
    /** PEM client certificate for mTLS (file path). */
    certFile: nonEmpty.optional(),
    /** PEM private key for mTLS (file path). */
    keyFile: nonEmpty.optional(),
    /** PEM CA bundle that signed the server certificate (file path); system roots otherwise. */
    caFile: nonEmpty.optional(),
    serverName: nonEmpty.optional(),
  })
  .strict()
  .refine((t) => Boolean(t.certFile) === Boolean(t.keyFile), {
    message: 'certFile and keyFile go together (mTLS needs both)',
  });

const TemporalSchema = z
  .object({
    /** host:port of a Temporal frontend. Unset: runway starts (or reuses) its embedded dev server. */
    address: z
      .string()
      .regex(/^[^\s:/]+:\d{1,5}$/, 'expected host:port, e.g. temporal.example.com:7233')
      .optional(),
    namespace: nonEmpty.default(DEFAULT_NAMESPACE),
    /** `true`: TLS with system roots; an object: mTLS / custom CA. */
    tls: z.union([z.boolean(), TlsSchema]).optional(),
    apiKey: nonEmpty.optional(),
    apiKeyFile: nonEmpty.optional(),
  })
  .strict();

/** The FleetDriver implementations (serving/fleet/); factory.ts builds the one named here. */
export const FLEET_DRIVERS = ['local', 'kubernetes'] as const;

const FleetSchema0 = z
  .object({
    driver: z.enum(FLEET_DRIVERS).default('local'),
    /** local driver: where process state lives, so a restarted worker reattaches. */
    stateDir: nonEmpty.optional(),
    /** kubernetes driver. */
    namespace: nonEmpty.optional(),
    kubeconfig: nonEmpty.optional(),
    context: nonEmpty.optional(),
    /** kubernetes driver: the pods' image and how the model file reaches them. */
    kubernetes: z
      .object({
        image: nonEmpty,
        imagePullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).optional(),
        artifact: z.discriminatedUnion('kind', [
          z
            .object({ kind: z.literal('init-container'), registryUrl: url, image: nonEmpty.optional() })
            .strict(),
          z
            .object({ kind: z.literal('volume'), claimName: nonEmpty, mountPath: nonEmpty.optional() })
            .strict(),
        ]),
        accelerator: z.object({ label: nonEmpty.optional(), value: nonEmpty }).strict().optional(),
        scaleWithWeight: z.boolean().optional(),
        /**
         * A HorizontalPodAutoscaler per version on queue depth or p95 latency (custom metrics from
         * prometheus-adapter, deploy/prometheus-adapter/). With scaleWithWeight it sizes the HPA's
         * bounds by traffic share; the HPA picks the count.
         */
        hpa: z
          .object({
            minReplicas: z.number().int().min(1),
            maxReplicas: z.number().int().min(1),
            target: z.union(
              [
                z.object({ queueDepth: z.number().positive() }).strict(),
                z.object({ p95LatencyMs: z.number().int().positive() }).strict(),
              ],
              {
                error: () => 'expected { queueDepth: <requests waiting per pod> } or { p95LatencyMs: <ms> }',
              },
            ),
            metricName: nonEmpty.optional(),
          })
          .strict()
          .refine((h) => h.maxReplicas >= h.minReplicas, {
            message: 'maxReplicas must be at least minReplicas',
            path: ['maxReplicas'],
          })
          .optional(),
        serviceAccountName: nonEmpty.optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

const FleetSchema = FleetSchema0.refine((f) => f.driver !== 'kubernetes' || (f.namespace && f.kubernetes), {
  message: 'fleet.driver "kubernetes" needs fleet.namespace and fleet.kubernetes { image, artifact }',
  path: ['kubernetes'],
}).refine((f) => f.driver === 'kubernetes' || !f.kubernetes, {
  message: 'fleet.kubernetes is read only by fleet.driver "kubernetes"; set the driver or remove it',
  path: ['kubernetes'],
});

const GatewayApiSchema = z
  .object({
    /** Namespace of the HTTPRoutes (the model Services' namespace, normally fleet.namespace). */
    namespace: nonEmpty,
    /** The Gateway listeners the routes attach to. */
    parentRefs: z
      .array(
        z
          .object({ name: nonEmpty, namespace: nonEmpty.optional(), sectionName: nonEmpty.optional() })
          .strict(),
      )
      .min(1, 'expected at least one Gateway, e.g. [{ name: runway-gateway, namespace: gateway-system }]'),
    hostnames: z.array(nonEmpty).optional(),
  })
  .strict();

/** The TrafficRouter providers (serving/traffic/); factory.ts builds the one named here. */
export const ROUTER_DRIVERS = ['builtin', 'configmap', 'gateway-api', 'istio'] as const;

const IstioSchema = z
  .object({
    /** Namespace of the model Services (normally fleet.namespace); the Istio objects go there too. */
    namespace: nonEmpty,
    /** More VirtualService hosts beside the in-mesh `<model>` Service, e.g. models.example.com. */
    hosts: z.array(nonEmpty).optional(),
    /** Istio Gateways (namespace/name) to bind to, besides the mesh. */
    gateways: z.array(nonEmpty).optional(),
  })
  .strict();

const RouterSchema = z
  .object({
    /** The router's admin API (routes, weights, mirroring). Unset: the embedded platform's. */
    adminUrl: url.optional(),
    token: nonEmpty.optional(),
    tokenFile: nonEmpty.optional(),
    /** Where clients send inference traffic (printed by `runway up`, used by integration tests). */
    publicUrl: url.optional(),
    /**
     * How routes reach the data plane: the runway router's admin API (default), a ConfigMap the
     * runway routers watch (NAMESPACE/NAME), or Gateway API HTTPRoutes.
     */
    driver: z.enum(ROUTER_DRIVERS).default('builtin'),
    configMap: z
      .string()
      .regex(/^[a-z0-9-]+\/[a-z0-9.-]+$/, 'expected NAMESPACE/NAME, e.g. runway-system/runway-routes')
      .optional(),
    /** gateway-api driver: where the HTTPRoutes go and which Gateway they attach to. */
    gatewayApi: GatewayApiSchema.optional(),
    /**
     * Per model, a file holding the token that `POST /v1/feedback` must present
     * (`Authorization: Bearer <token>`). Routes carry only its sha256.
     */
    feedbackTokenFiles: z
      .record(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'expected a model name'), nonEmpty)
      .optional(),
    /**
     * The embedded router's API keys file (`runway router --api-keys-file`): clients then need a
     * key on /v2/models/* and gRPC model calls. It holds SHA-256 hashes only (docs/security.md).
     */
    apiKeysFile: nonEmpty.optional(),
    /** istio driver: where the VirtualService, DestinationRule and model Service go. */
    istio: IstioSchema.optional(),
  })
  .strict()
  .refine((r) => !(r.token && r.tokenFile), { message: 'set token or tokenFile, not both' })
  .refine((r) => r.driver !== 'configmap' || r.configMap, {
    message: 'router.driver "configmap" needs router.configMap (NAMESPACE/NAME)',
    path: ['configMap'],
  })
  .refine((r) => r.driver !== 'gateway-api' || r.gatewayApi, {
    message:
      'router.driver "gateway-api" needs router.gatewayApi { namespace, parentRefs: [{ name, namespace? }] }',
    path: ['gatewayApi'],
  })
  .refine((r) => r.driver === 'configmap' || !r.configMap, {
    message: 'router.configMap is read only by router.driver "configmap"; set the driver or remove it',
    path: ['configMap'],
  })
  .refine((r) => r.driver !== 'istio' || r.istio, {
    message: 'router.driver "istio" needs router.istio { namespace } (the model Services\' namespace)',
    path: ['istio'],
  })
  .refine((r) => r.driver === 'istio' || !r.istio, {
    message: 'router.istio is read only by router.driver "istio"; set the driver or remove it',
    path: ['istio'],
  })
  .refine((r) => !(r.apiKeysFile && r.adminUrl), {
    message:
      'router.apiKeysFile is read by the embedded router only; with router.adminUrl, give the file to that router (runway router --api-keys-file, or deploy/components/api-keys)',
    path: ['apiKeysFile'],
  })
  .refine((r) => r.driver === 'gateway-api' || !r.gatewayApi, {
    message: 'router.gatewayApi is read only by router.driver "gateway-api"; set the driver or remove it',
    path: ['gatewayApi'],
  });

/** The MetricsSource implementations (serving/metrics/); factory.ts builds the one named here. */
export const METRICS_SOURCES = ['scrape', 'prometheus'] as const;

const MetricsSchema = z
  .object({
    source: z.enum(METRICS_SOURCES).default('scrape'),
    /** scrape: the router's /metrics (defaults to the router's); prometheus: the server's base URL. */
    url: url.optional(),
    /**
     * prometheus: whose series judge the promotion: `router` (default), `server` (the model servers'
     * runway_server_*, for traffic that bypasses the runway router) or `istio` (istio_requests_total).
     */
    series: z.enum(['router', 'server', 'istio']).optional(),
    /**
     * prometheus: how long worker start waits for Prometheus to know the mapping's series (a first
     * scrape after a fresh install) before it fails naming the query. 0 checks once.
     */
    startupWaitSeconds: z.number().int().min(0).max(3600).optional(),
  })
  .strict()
  .refine((m) => m.source !== 'prometheus' || m.url, {
    message: 'metrics.source "prometheus" needs metrics.url (e.g. http://127.0.0.1:9090)',
    path: ['url'],
  })
  .refine((m) => m.source === 'prometheus' || !m.series, {
    message:
      'metrics.series is read only by metrics.source "prometheus" (the scrape source reads the router)',
    path: ['series'],
  });

const MlflowSchema = z
  .object({
    /** The tracking server, e.g. http://mlflow.example.com:5000 (its REST API and artifact proxy). */
    trackingUri: url,
    /** MLflow basic-auth credentials; or `token` for a server behind an authenticating proxy. */
    username: nonEmpty.optional(),
    password: nonEmpty.optional(),
    passwordFile: nonEmpty.optional(),
    token: nonEmpty.optional(),
    tokenFile: nonEmpty.optional(),
    /** Experiment for the runs runway creates when a push names no training run. */
    experiment: nonEmpty.default('runway'),
    /** Verified downloads, by sha256 (default <state dir>/mlflow-cache). */
    cacheDir: nonEmpty.optional(),
    /** Bound on the cache; least recently used artifacts are evicted past it (default 10 GiB). */
    cacheMaxBytes: z.coerce
      .number()
      .int()
      .positive()
      .default(10 * 1024 ** 3),
  })
  .strict()
  .refine((m) => !(m.password && m.passwordFile), { message: 'set password or passwordFile, not both' })
  .refine((m) => !(m.token && m.tokenFile), { message: 'set token or tokenFile, not both' })
  .refine((m) => !((m.password || m.passwordFile) && !m.username), {
    message: 'a password needs registry.mlflow.username',
    path: ['username'],
  });

const RegistrySchema = z
  .object({
    driver: z.enum(['file', 'mlflow']).default('file'),
    /** file driver: the registry directory. */
    dir: nonEmpty.optional(),
    /** mlflow driver. */
    mlflow: MlflowSchema.optional(),
  })
  .strict()
  .refine((r) => r.driver !== 'mlflow' || r.mlflow, {
    message: 'registry.driver "mlflow" needs registry.mlflow.trackingUri (e.g. http://127.0.0.1:5000)',
    path: ['mlflow'],
  });

/**
 * The public keys that may sign decisions (approval.identity: signed): a YAML/JSON file, or on
 * Kubernetes a ConfigMap the worker reads at start (and again when a decision is verified, so a
 * revocation takes effect without a restart). See common/signing.ts for its shape.
 */
const KeyringSchema = z
  .object({
    file: nonEmpty.optional(),
    configMap: z
      .string()
      .regex(/^[a-z0-9-]+\/[a-z0-9.-]+$/, 'expected NAMESPACE/NAME, e.g. runway-system/runway-keyring')
      .optional(),
    /** The ConfigMap's data key holding the keyring document. */
    key: nonEmpty.default('keyring.yaml'),
  })
  .strict()
  .refine((k) => Boolean(k.file) !== Boolean(k.configMap), {
    message: 'expected keyring.file (a YAML/JSON file) or keyring.configMap (NAMESPACE/NAME), one of them',
  });

const price = (what: string) =>
  z
    .number({ message: `expected a price per hour (a number), ${what}` })
    .min(0, `expected a price of 0 or more per hour, ${what}`);

/**
 * Prices for the cost per 1,000 inferences (common/cost.ts): per replica-hour of each resource a
 * replica asks for (the spec's serving.resources), or per instance type by serving.device (an
 * instance type wins for its device). Unset: no output carries a cost.
 */
const CostSchema = z
  .object({
    currency: z
      .string()
      .regex(/^[A-Z]{3}$/, 'expected an ISO 4217 currency code such as USD or EUR')
      .default('USD'),
    perHour: z
      .object({
        cpu: price('per CPU core').optional(),
        memoryGiB: price('per GiB of memory').optional(),
        gpu: price('per GPU').optional(),
      })
      .strict()
      .optional(),
    instances: z
      .object({
        cpu: z
          .object({ type: nonEmpty, perHour: price('per instance') })
          .strict()
          .optional(),
        cuda: z
          .object({ type: nonEmpty, perHour: price('per instance') })
          .strict()
          .optional(),
      })
      .strict()
      .optional(),
  })
  .strict()
  .refine((c) => c.perHour || c.instances, {
    message:
      'cost needs prices: perHour { cpu, memoryGiB, gpu } (per replica-hour of each) or instances { cpu | cuda: { type, perHour } }',
  });

const WebhookSchema = z
  .object({
    /** Names the webhook in logs, results and the audit; the URL never appears there. */
    name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'expected a short name such as oncall-slack'),
    /** `json`: runway's versioned payload (docs/notifications.md); `slack`; `teams`. */
    format: z.enum(WEBHOOK_FORMATS).default('json'),
    /** The endpoint. It usually holds a credential: prefer urlFile (a mounted Secret) or urlEnv. */
    url: url.optional(),
    urlFile: nonEmpty.optional(),
    /** An environment variable of the worker holding the URL. */
    urlEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name such as SLACK_WEBHOOK_URL')
      .optional(),
    /** Event names or kinds to send (docs/notifications.md); unset: all of them. */
    events: z
      .array(
        z.string().refine((e) => FILTER_NAMES.includes(e), {
          message: `expected an event or kind: ${FILTER_NAMES.join(', ')}`,
        }),
      )
      .optional(),
    /** Models whose events to send; unset: every model. */
    models: z.array(nonEmpty).optional(),
  })
  .strict()
  .refine((w) => [w.url, w.urlFile, w.urlEnv].filter(Boolean).length === 1, {
    message: 'set exactly one of url, urlFile or urlEnv',
  });

const NotificationsSchema = z
  .object({
    webhooks: z.array(WebhookSchema).default([]),
    /** Per attempt (ms). */
    timeoutMs: z.number().int().positive().default(5000),
    /** Attempts per webhook, the first included. */
    attempts: z.number().int().min(1).max(10).default(4),
    /** First retry's wait (ms), doubling up to maxBackoffMs. */
    backoffMs: z.number().int().min(0).default(500),
    maxBackoffMs: z.number().int().min(0).default(5000),
    /** Bound on one notification, retries included (ms): a dead endpoint delays nothing longer. */
    deadlineMs: z
      .number()
      .int()
      .positive()
      .max(25_000, 'expected at most 25000 (the notify activity times out at 30 s)')
      .default(15_000),
  })
  .strict()
  .refine((n) => new Set(n.webhooks.map((w) => w.name)).size === n.webhooks.length, {
    message: 'webhook names must be unique',
    path: ['webhooks'],
  });

const WorkerSchema = z
  .object({
    /** host:port where the worker serves GET /metrics (promotions, notifications); unset: none. */
    metricsListen: z
      .string()
      .regex(/^[^\s/]*:\d{1,5}$/, 'expected host:port, e.g. 0.0.0.0:9464 (port 0: any free port)')
      .optional(),
  })
  .strict();

export const PlatformConfigSchema = z
  .object({
    /** Prices for cost per 1,000 inferences and the promotion's own cost; optional. */
    cost: CostSchema.optional(),
    temporal: TemporalSchema.default({ namespace: DEFAULT_NAMESPACE }),
    taskQueue: nonEmpty.default(TASK_QUEUE),
    fleet: FleetSchema.default({ driver: 'local' }),
    router: RouterSchema.default({ driver: 'builtin' }),
    metrics: MetricsSchema.default({ source: 'scrape' }),
    registry: RegistrySchema.default({ driver: 'file' }),
    /** Per model name or glob: the gates a ModelSpec may not weaken (specs/policy.ts). */
    policy: platformPolicySchema.default({}),
    keyring: KeyringSchema.optional(),
    worker: WorkerSchema.default({}),
    notifications: NotificationsSchema.default({
      webhooks: [],
      timeoutMs: 5000,
      attempts: 4,
      backoffMs: 500,
      maxBackoffMs: 5000,
      deadlineMs: 15_000,
    }),
  })
  .strict();

type ParsedConfig = z.output<typeof PlatformConfigSchema>;

/** The validated configuration, with secrets read from their files and defaults filled in. */
export type PlatformConfig = Omit<ParsedConfig, 'router' | 'notifications'> & {
  /** `feedbackTokens`: the tokens read from `feedbackTokenFiles`, by model. */
  router: ParsedConfig['router'] & { feedbackTokens: Record<string, string> };
  registry: ParsedConfig['registry'] & { dir: string };
  fleet: ParsedConfig['fleet'] & { stateDir: string };
  /** Each webhook's URL resolved from url, urlFile or urlEnv. */
  notifications: NotificationsConfig;
  /** Where the values came from, for `runway up` and error messages. */
  sources: string[];
};
export type TemporalSettings = PlatformConfig['temporal'];

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Environment variables and the config path each one sets. */
export const ENV: Record<string, string> = {
  TEMPORAL_ADDRESS: 'temporal.address',
  TEMPORAL_NAMESPACE: 'temporal.namespace',
  TEMPORAL_TLS_CERT: 'temporal.tls.certFile',
  TEMPORAL_TLS_KEY: 'temporal.tls.keyFile',
  TEMPORAL_TLS_CA: 'temporal.tls.caFile',
  TEMPORAL_TLS_SERVER_NAME: 'temporal.tls.serverName',
  TEMPORAL_API_KEY: 'temporal.apiKey',
  RUNWAY_TASK_QUEUE: 'taskQueue',
  RUNWAY_WORKER_METRICS_LISTEN: 'worker.metricsListen',
  RUNWAY_FLEET_DRIVER: 'fleet.driver',
  RUNWAY_FLEET_STATE_DIR: 'fleet.stateDir',
  RUNWAY_K8S_NAMESPACE: 'fleet.namespace',
  KUBECONFIG: 'fleet.kubeconfig',
  RUNWAY_FLEET_IMAGE: 'fleet.kubernetes.image',
  RUNWAY_ROUTER_ADMIN_URL: 'router.adminUrl',
  RUNWAY_ROUTER_TOKEN: 'router.token',
  RUNWAY_ROUTER_TOKEN_FILE: 'router.tokenFile',
  RUNWAY_ROUTER_PUBLIC_URL: 'router.publicUrl',
  RUNWAY_ROUTER_API_KEYS_FILE: 'router.apiKeysFile',
  RUNWAY_METRICS_SOURCE: 'metrics.source',
  RUNWAY_METRICS_URL: 'metrics.url',
  RUNWAY_REGISTRY_DRIVER: 'registry.driver',
  RUNWAY_METRICS_SERIES: 'metrics.series',
  RUNWAY_REGISTRY_DIR: 'registry.dir',
  RUNWAY_KEYRING: 'keyring.file',
  // MLflow's own variables, so a team's existing environment works as is.
  MLFLOW_TRACKING_URI: 'registry.mlflow.trackingUri',
  MLFLOW_TRACKING_USERNAME: 'registry.mlflow.username',
  MLFLOW_TRACKING_PASSWORD: 'registry.mlflow.password',
  MLFLOW_TRACKING_TOKEN: 'registry.mlflow.token',
};

type Json = Record<string, unknown>;

function setPath(target: Json, dotted: string, value: unknown): void {
  const keys = dotted.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    // A boolean `tls: true` in the file becomes an object when env adds certificate paths.
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Json;
  }
  node[keys[keys.length - 1] as string] = value;
}

function readFileSource(file: string): Json {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read platform config ${file}: ${(err as Error).message}`);
  }
  let data: unknown;
  try {
    data = file.endsWith('.json') ? JSON.parse(text) : YAML.parse(text);
  } catch (err) {
    throw new ConfigError(
      `platform config ${file} is not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message}`,
    );
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError(`platform config ${file}: expected a mapping at the top level`);
  }
  return data as Json;
}

function readSecretFile(file: string, field: string): string {
  try {
    const value = fs.readFileSync(file, 'utf8').trim();
    if (!value) throw new Error('file is empty');
    return value;
  } catch (err) {
    throw new ConfigError(`${field}: cannot read ${file}: ${(err as Error).message}`);
  }
}

/** The keyring the platform uses when its config names none: `<state dir>/keyring.yaml`, if present. */
export const defaultKeyringFile = (): string => path.join(stateDir(), 'keyring.yaml');

export interface LoadConfigOptions {
  /** Explicit file (`--config`); an error when it does not exist. `null`: environment only. */
  file?: string | null;
  env?: NodeJS.ProcessEnv;
}

export function loadPlatformConfig(opts: LoadConfigOptions = {}): PlatformConfig {
  const env = opts.env ?? process.env;
  const sources: string[] = [];
  let raw: Json = {};
  const explicit = opts.file === null ? undefined : (opts.file ?? env.RUNWAY_CONFIG);
  const file = explicit ?? path.join(stateDir(), 'platform.yaml');
  if (opts.file !== null && (explicit || fs.existsSync(file))) {
    raw = readFileSource(path.resolve(file));
    sources.push(path.resolve(file));
  }
  const fromEnv: string[] = [];
  for (const [name, target] of Object.entries(ENV)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    setPath(raw, target, value);
    fromEnv.push(name);
  }
  if (fromEnv.length) sources.push(`env (${fromEnv.join(', ')})`);
  // Like platform.yaml: a keyring in the state directory (the demo writes one) is the default.
  const keyring = defaultKeyringFile();
  if (opts.file !== null && raw.keyring === undefined && fs.existsSync(keyring)) {
    raw.keyring = { file: keyring };
    sources.push(keyring);
  }
  return parsePlatformConfig(raw, sources, env);
}

/** Validates a configuration object; errors name every bad field by its path. */
export function parsePlatformConfig(
  raw: unknown,
  sources: string[] = [],
  env: NodeJS.ProcessEnv = process.env,
): PlatformConfig {
  const result = PlatformConfigSchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join('.') || '(top level)'}: ${i.message}`);
    const where = sources.length ? ` (from ${sources.join(' + ')})` : '';
    throw new ConfigError(`invalid platform configuration${where}:\n${lines.join('\n')}`);
  }
  const cfg = result.data;
  const temporal = { ...cfg.temporal };
  if (temporal.apiKeyFile && !temporal.apiKey) {
    temporal.apiKey = readSecretFile(temporal.apiKeyFile, 'temporal.apiKeyFile');
  }
  // Temporal Cloud API keys only work over TLS; default it on rather than fail at connect.
  if (temporal.apiKey && temporal.tls === undefined) temporal.tls = true;
  const router = { ...cfg.router };
  if (router.apiKeysFile) {
    // The embedded router reads it (and rereads it on change); here it must at least be there.
    router.apiKeysFile = path.resolve(router.apiKeysFile);
    try {
      fs.accessSync(router.apiKeysFile, fs.constants.R_OK);
    } catch (err) {
      throw new ConfigError(
        `router.apiKeysFile: cannot read ${router.apiKeysFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
  }
  if (router.tokenFile) router.token = readSecretFile(router.tokenFile, 'router.tokenFile');
  const feedbackTokens: Record<string, string> = {};
  for (const [model, file] of Object.entries(router.feedbackTokenFiles ?? {})) {
    const field = `router.feedbackTokenFiles.${model}`;
    const token = readSecretFile(file, field);
    // Routes carry the token's sha256: a short token could be found from it by guessing.
    if (token.length < 32)
      throw new ConfigError(
        `${field}: the token in ${file} has ${token.length} characters, expected at least 32 (e.g. openssl rand -hex 32)`,
      );
    feedbackTokens[model] = token;
  }
  const registry = { ...cfg.registry, dir: cfg.registry.dir ?? path.join(stateDir(), 'registry') };
  if (registry.mlflow) {
    const m = { ...registry.mlflow };
    if (m.passwordFile) m.password = readSecretFile(m.passwordFile, 'registry.mlflow.passwordFile');
    if (m.tokenFile) m.token = readSecretFile(m.tokenFile, 'registry.mlflow.tokenFile');
    m.cacheDir ??= path.join(stateDir(), 'mlflow-cache');
    registry.mlflow = m;
  }
  const { webhooks, ...policy } = cfg.notifications;
  const notifications: NotificationsConfig = {
    ...policy,
    webhooks: webhooks.map((w, i) => {
      const field = `notifications.webhooks.${i}`;
      let resolved = w.url;
      if (w.urlFile) resolved = readSecretFile(w.urlFile, `${field}.urlFile`);
      if (w.urlEnv) {
        resolved = env[w.urlEnv]?.trim();
        if (!resolved) throw new ConfigError(`${field}.urlEnv: environment variable ${w.urlEnv} is not set`);
      }
      // Checked here too: a file or variable may hold anything. The message never repeats the value.
      let parsed: URL | undefined;
      try {
        parsed = new URL(resolved ?? '');
      } catch {
        /* reported below */
      }
      if (!parsed || !/^https?:$/.test(parsed.protocol)) {
        throw new ConfigError(
          `${field} (${w.name}): the URL${w.urlFile ? ` in ${w.urlFile}` : w.urlEnv ? ` in $${w.urlEnv}` : ''} is not an absolute http(s) URL`,
        );
      }
      return {
        name: w.name,
        format: w.format,
        url: parsed.href,
        ...(w.events ? { events: w.events } : {}),
        ...(w.models ? { models: w.models } : {}),
      };
    }),
  };
  return {
    ...cfg,
    notifications,
    temporal,
    router: { ...router, feedbackTokens },
    fleet: { ...cfg.fleet, stateDir: cfg.fleet.stateDir ?? path.join(stateDir(), 'fleet') },
    registry,
    sources,
  };
}

/** A copy safe to log or print: secrets replaced, everything else as is. */
export function redacted(cfg: PlatformConfig): PlatformConfig {
  const hide = (v: string | undefined): string | undefined => (v === undefined ? undefined : '[redacted]');
  return {
    ...cfg,
    temporal: { ...cfg.temporal, apiKey: hide(cfg.temporal.apiKey) },
    router: {
      ...cfg.router,
      token: hide(cfg.router.token),
      feedbackTokens: Object.fromEntries(
        Object.keys(cfg.router.feedbackTokens).map((m) => [m, '[redacted]']),
      ),
    },
    notifications: {
      ...cfg.notifications,
      webhooks: cfg.notifications.webhooks.map((w) => ({ ...w, url: '[redacted]' })),
    },
    registry: {
      ...cfg.registry,
      ...(cfg.registry.mlflow
        ? {
            mlflow: {
              ...cfg.registry.mlflow,
              password: hide(cfg.registry.mlflow.password),
              token: hide(cfg.registry.mlflow.token),
            },
          }
        : {}),
    },
  };
}
