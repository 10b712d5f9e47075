/**
 * The Kubernetes objects of one model version in one environment: Deployment, Service,
 * PodDisruptionBudget and (optionally) a HorizontalPodAutoscaler on queue depth. Pure functions of
 * the request and the driver options, so the same inputs always apply the same objects (that is
 * what makes server-side apply idempotent) and tests can read them without a cluster.
 */
import { deploymentName, servingFlags, type DeploymentRequest } from './driver';

export const MANAGED_BY = 'runway';
export const LABEL = {
  name: 'app.kubernetes.io/name',
  instance: 'app.kubernetes.io/instance',
  version: 'app.kubernetes.io/version',
  managedBy: 'app.kubernetes.io/managed-by',
  component: 'app.kubernetes.io/component',
  model: 'runway.dev/model',
  modelVersion: 'runway.dev/version',
  env: 'runway.dev/env',
} as const;
/** The request that produced the objects, so `scale` can re-apply the same Deployment. */
export const REQUEST_ANNOTATION = 'runway.dev/request';

/** What a replica needs, from the ModelSpec's `serving.resources`. */
export interface PodResources {
  /** CPU request and limit, e.g. "1" or "500m". */
  cpu: string;
  /** Memory request and limit, e.g. "1Gi". */
  memory: string;
  /** nvidia.com/gpu per replica (requests equal limits); 0 for CPU serving. */
  gpu: number;
}

/** A DeploymentRequest plus what only Kubernetes needs. */
export interface KubernetesDeploymentRequest extends DeploymentRequest {
  resources?: PodResources;
  /** The replica count it was deployed with, kept while scaleWithWeight shrinks `replicas`. */
  fullReplicas?: number;
  /** With an HPA: the autoscaler's bounds for this version now (scaleWithWeight sizes them). */
  autoscale?: { minReplicas: number; maxReplicas: number };
}

/**
 * A HorizontalPodAutoscaler per version on what a batching model server saturates on, not CPU:
 * the batch queue's depth per pod, or its p95 request latency. Both are custom metrics that a
 * custom-metrics adapter (prometheus-adapter, deploy/prometheus-adapter/) serves from the
 * servers' own series.
 */
export interface HpaOptions {
  minReplicas: number;
  maxReplicas: number;
  target: { queueDepth: number } | { p95LatencyMs: number };
  /** The custom metric's name as the adapter serves it; default per target (HPA_METRICS). */
  metricName?: string;
}

export const HPA_METRICS = {
  queueDepth: 'runway_server_queue_depth',
  p95LatencyMs: 'runway_server_request_p95_seconds',
} as const;

/** How the model file reaches the pod. */
export type ArtifactSource =
  | {
      /** An init container downloads `<registryUrl>/<sha256>` and checks the digest before serving starts. */
      kind: 'init-container';
      registryUrl: string;
      /** Image with sh, wget (or curl) and sha256sum; default busybox. */
      image?: string;
      /** URL template: `{sha256}`, `{model}`, `{version}` are substituted. Default `{registryUrl}/{sha256}`. */
      urlTemplate?: string;
    }
  | {
      /** A volume that already holds the artifacts (e.g. a ReadOnlyMany PVC of the registry directory). */
      kind: 'volume';
      claimName: string;
      /** Mount path in the pod; artifactPath must be under it. Default /models. */
      mountPath?: string;
    };

export interface ManifestOptions {
  namespace: string;
  /** Image running `runway serve` (its entrypoint is `runway`). */
  image: string;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  imagePullSecrets?: string[];
  /** Container port of the OIP server. Default 8000. */
  port?: number;
  /**
   * Container port of the OIP gRPC service, also the Service's gRPC port (the router dials the
   * Service at the port a replica names in its server metadata, so the two must be equal). Default 8001.
   */
  grpcPort?: number;
  /** Used when the request carries none. Default 1 CPU, 1Gi, no GPU. */
  defaultResources?: PodResources;
  /** Node label that names the accelerator, and the value required when a replica wants GPUs. */
  accelerator?: { label?: string; value: string };
  artifact: ArtifactSource;
  /** Long enough to drain queued requests. Default 60. */
  terminationGracePeriodSeconds?: number;
  /** Kubernetes' own progress deadline on the Deployment. Default 600. */
  progressDeadlineSeconds?: number;
  /** Autoscale each version on queue depth or p95 latency (needs a custom-metrics adapter). */
  hpa?: HpaOptions;
  serviceAccountName?: string;
}

export type KubeObject = {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
} & Record<string, unknown>;

/** The OIP gRPC port of a replica, container and Service alike (Triton's default too). */
export const DEFAULT_GRPC_PORT = 8001;

export const DEFAULT_RESOURCES: PodResources = { cpu: '1', memory: '1Gi', gpu: 0 };
const MODEL_DIR = '/models';

export function labelsOf(req: DeploymentRequest): Record<string, string> {
  return {
    [LABEL.name]: req.model,
    [LABEL.instance]: deploymentName(req.model, req.version, req.environment),
    [LABEL.version]: req.version,
    [LABEL.managedBy]: MANAGED_BY,
    [LABEL.component]: 'model-server',
    [LABEL.model]: req.model,
    [LABEL.modelVersion]: req.version,
    [LABEL.env]: req.environment,
  };
}

/** The selector: stable for the life of the Deployment (selectors are immutable). */
export function selectorOf(name: string): Record<string, string> {
  return { [LABEL.instance]: name, [LABEL.managedBy]: MANAGED_BY };
}

/** Kubernetes names: DNS-1123 labels of at most 63 characters. */
export function checkName(name: string): void {
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name) || name.length > 63) {
    throw new Error(
      `deployment name "${name}" is not a valid Kubernetes name: expected lower-case letters, digits and "-", at most 63 characters (model and version make it up)`,
    );
  }
}

/** Cores in a Kubernetes CPU quantity ("2", "1.5", "500m"); undefined when it is not one of those. */
export function cpuCores(quantity: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(m?)$/.exec(quantity.trim());
  if (!m) return undefined;
  return Number(m[1]) / (m[2] ? 1000 : 1);
}

function servingArgs(
  req: DeploymentRequest,
  modelFile: string,
  port: number,
  grpcPort: number,
  cpu: string,
): string[] {
  const s = { ...req.serving };
  // Inside a pod, the server sees the node's cores, not its CPU limit: sized by those, its
  // sessions would run more threads than the quota holds and be throttled. Unless the spec
  // says otherwise, each session gets its share of the limit (at least one thread).
  const cores = cpuCores(cpu);
  if (s.threads === undefined && cores !== undefined)
    s.threads = Math.max(1, Math.floor(cores / (s.instances ?? 1)));
  const args = ['serve', '--model', modelFile, '--name', req.model, '--version', req.version];
  args.push('--host', '0.0.0.0', '--port', String(port), '--grpc-port', String(grpcPort));
  if (req.sha256) args.push('--sha256', req.sha256);
  args.push(...servingFlags(s));
  return args;
}

function artifactUrl(a: Extract<ArtifactSource, { kind: 'init-container' }>, req: DeploymentRequest): string {
  const base = a.registryUrl.replace(/\/+$/, '');
  return (a.urlTemplate ?? '{registryUrl}/{sha256}')
    .replaceAll('{registryUrl}', base)
    .replaceAll('{sha256}', req.sha256 ?? '')
    .replaceAll('{model}', encodeURIComponent(req.model))
    .replaceAll('{version}', encodeURIComponent(req.version));
}

const restricted = {
  runAsNonRoot: true,
  runAsUser: 65532,
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};

export function deploymentManifest(req: KubernetesDeploymentRequest, o: ManifestOptions): KubeObject {
  const name = deploymentName(req.model, req.version, req.environment);
  checkName(name);
  const port = o.port ?? 8000;
  const grpcPort = o.grpcPort ?? DEFAULT_GRPC_PORT;
  const res = req.resources ?? o.defaultResources ?? DEFAULT_RESOURCES;
  const quantities: Record<string, string> = { cpu: res.cpu, memory: res.memory };
  if (res.gpu > 0) quantities['nvidia.com/gpu'] = String(res.gpu);

  const volumes: Record<string, unknown>[] = [{ name: 'tmp', emptyDir: {} }];
  const mounts: Record<string, unknown>[] = [{ name: 'tmp', mountPath: '/tmp' }];
  const initContainers: Record<string, unknown>[] = [];
  let modelFile: string;
  if (o.artifact.kind === 'init-container') {
    if (!req.sha256) {
      throw new Error(`deploy ${name}: the init-container artifact source needs the artifact's sha256`);
    }
    volumes.push({ name: 'model', emptyDir: {} });
    mounts.push({ name: 'model', mountPath: MODEL_DIR, readOnly: true });
    modelFile = `${MODEL_DIR}/model.onnx`;
    initContainers.push({
      name: 'fetch-model',
      image: o.artifact.image ?? 'busybox:1.37',
      // The digest check makes a tampered or truncated download fail the pod, never serve.
      command: [
        'sh',
        '-ec',
        'wget -q -O /models/model.onnx "$URL" && echo "$SHA256  /models/model.onnx" | sha256sum -c -',
      ],
      env: [
        { name: 'URL', value: artifactUrl(o.artifact, req) },
        { name: 'SHA256', value: req.sha256 },
      ],
      volumeMounts: [{ name: 'model', mountPath: MODEL_DIR }],
      resources: { requests: { cpu: '100m', memory: '64Mi' }, limits: { cpu: '1', memory: '256Mi' } },
      securityContext: restricted,
    });
  } else {
    const mountPath = o.artifact.mountPath ?? MODEL_DIR;
    if (!req.artifactPath.startsWith(`${mountPath}/`)) {
      throw new Error(
        `deploy ${name}: artifactPath ${req.artifactPath} is not under the volume mount ${mountPath}/`,
      );
    }
    volumes.push({
      name: 'model',
      persistentVolumeClaim: { claimName: o.artifact.claimName, readOnly: true },
    });
    mounts.push({ name: 'model', mountPath, readOnly: true });
    modelFile = req.artifactPath;
  }

  const labels = labelsOf(req);
  const probe = (path: string, extra: Record<string, number>): Record<string, unknown> => ({
    httpGet: { path, port: 'http' },
    ...extra,
  });
  const affinity: Record<string, unknown> = {
    // Replicas on different nodes, so one node failure never takes the whole version down.
    podAntiAffinity: {
      preferredDuringSchedulingIgnoredDuringExecution: [
        {
          weight: 100,
          podAffinityTerm: {
            labelSelector: { matchLabels: selectorOf(name) },
            topologyKey: 'kubernetes.io/hostname',
          },
        },
      ],
    },
  };
  if (res.gpu > 0 && o.accelerator) {
    affinity.nodeAffinity = {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [
          {
            matchExpressions: [
              {
                key: o.accelerator.label ?? 'nvidia.com/gpu.product',
                operator: 'In',
                values: [o.accelerator.value],
              },
            ],
          },
        ],
      },
    };
  }
  const grace = o.terminationGracePeriodSeconds ?? 60;

  const pod: Record<string, unknown> = {
    ...(o.serviceAccountName ? { serviceAccountName: o.serviceAccountName } : {}),
    automountServiceAccountToken: false,
    terminationGracePeriodSeconds: grace,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      fsGroup: 65532,
      seccompProfile: { type: 'RuntimeDefault' },
    },
    affinity,
    ...(res.gpu > 0
      ? { tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }] }
      : {}),
    ...(o.imagePullSecrets?.length ? { imagePullSecrets: o.imagePullSecrets.map((n) => ({ name: n })) } : {}),
    ...(initContainers.length ? { initContainers } : {}),
    containers: [
      {
        name: 'server',
        image: o.image,
        imagePullPolicy: o.imagePullPolicy ?? 'IfNotPresent',
        args: servingArgs(req, modelFile, port, grpcPort, res.cpu),
        ports: [
          { name: 'http', containerPort: port, protocol: 'TCP' },
          { name: 'grpc', containerPort: grpcPort, protocol: 'TCP' },
        ],
        env: [{ name: 'RUNWAY_LOG_LEVEL', value: 'info' }],
        resources: { requests: quantities, limits: quantities },
        // Loading and warming a large model can take minutes: the startup probe holds the others off.
        startupProbe: probe('/v2/health/ready', { periodSeconds: 2, failureThreshold: 300 }),
        readinessProbe: probe('/v2/health/ready', { periodSeconds: 5, failureThreshold: 2 }),
        livenessProbe: probe('/v2/health/live', { periodSeconds: 10, failureThreshold: 3 }),
        // Endpoints drop the pod before SIGTERM reaches the server, which then drains its queue.
        lifecycle: { preStop: { sleep: { seconds: Math.min(5, Math.max(1, grace - 1)) } } },
        securityContext: restricted,
        volumeMounts: mounts,
      },
    ],
    volumes,
  };

  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name,
      namespace: o.namespace,
      labels,
      annotations: { [REQUEST_ANNOTATION]: JSON.stringify(req) },
    },
    spec: {
      // With an HPA the autoscaler owns the count: the fleet passes the live one, kept in bounds.
      replicas: o.hpa ? clampToBounds(req.replicas, hpaBounds(req, o.hpa)) : req.replicas,
      selector: { matchLabels: selectorOf(name) },
      progressDeadlineSeconds: o.progressDeadlineSeconds ?? 600,
      revisionHistoryLimit: 3,
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        // Prometheus' kubernetes_sd (annotation convention) finds each replica's server metrics.
        metadata: {
          labels,
          annotations: {
            'prometheus.io/scrape': 'true',
            'prometheus.io/port': String(port),
            'prometheus.io/path': '/metrics',
          },
        },
        spec: pod,
      },
    },
  };
}

export function serviceManifest(req: DeploymentRequest, o: ManifestOptions): KubeObject {
  const name = deploymentName(req.model, req.version, req.environment);
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: o.namespace, labels: labelsOf(req) },
    spec: {
      type: 'ClusterIP',
      selector: selectorOf(name),
      ports: [
        { name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' },
        {
          name: 'grpc',
          port: o.grpcPort ?? DEFAULT_GRPC_PORT,
          targetPort: 'grpc',
          protocol: 'TCP',
          appProtocol: 'kubernetes.io/h2c',
        },
      ],
    },
  };
}

export function pdbManifest(req: DeploymentRequest, o: ManifestOptions): KubeObject {
  const name = deploymentName(req.model, req.version, req.environment);
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name, namespace: o.namespace, labels: labelsOf(req) },
    // At most one replica down to voluntary disruption (node drains), whatever the replica count.
    spec: { maxUnavailable: 1, selector: { matchLabels: selectorOf(name) } },
  };
}

/** The bounds a version's autoscaler has now: its own (scaleWithWeight), else the platform's. */
export function hpaBounds(
  req: KubernetesDeploymentRequest,
  hpa: HpaOptions,
): { minReplicas: number; maxReplicas: number } {
  return req.autoscale ?? { minReplicas: hpa.minReplicas, maxReplicas: hpa.maxReplicas };
}

export function clampToBounds(n: number, b: { minReplicas: number; maxReplicas: number }): number {
  return Math.max(b.minReplicas, Math.min(b.maxReplicas, n));
}

export function hpaManifest(req: KubernetesDeploymentRequest, o: ManifestOptions): KubeObject | undefined {
  if (!o.hpa) return undefined;
  const name = deploymentName(req.model, req.version, req.environment);
  const queue = 'queueDepth' in o.hpa.target;
  const metric = o.hpa.metricName ?? (queue ? HPA_METRICS.queueDepth : HPA_METRICS.p95LatencyMs);
  // A Kubernetes quantity: milliseconds of a metric in seconds are milli-units ("50m" = 0.05 s).
  const averageValue =
    'queueDepth' in o.hpa.target ? String(o.hpa.target.queueDepth) : `${o.hpa.target.p95LatencyMs}m`;
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: { name, namespace: o.namespace, labels: labelsOf(req) },
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name },
      ...hpaBounds(req, o.hpa),
      metrics: [
        { type: 'Pods', pods: { metric: { name: metric }, target: { type: 'AverageValue', averageValue } } },
      ],
    },
  };
}

/** Everything runway applies for one request, in apply order. */
export function manifestsFor(req: KubernetesDeploymentRequest, o: ManifestOptions): KubeObject[] {
  const hpa = hpaManifest(req, o);
  return [deploymentManifest(req, o), serviceManifest(req, o), pdbManifest(req, o), ...(hpa ? [hpa] : [])];
}
