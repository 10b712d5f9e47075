/**
 * The `kubernetes` FleetDriver: one Deployment + Service + PodDisruptionBudget (+ optional HPA) per
 * model version and environment, written by server-side apply with field manager `runway`, so
 * re-applying the same request changes nothing and a crashed worker can simply deploy again.
 * Waiting for a rollout reads what `kubectl rollout status` reads; when it stalls, the error says
 * why in the pods' own words (unschedulable: Insufficient nvidia.com/gpu, ImagePullBackOff, ...).
 */
import { createLogger, type Logger } from '../../common/log';
import { EXIT_MODEL_REFUSED } from '../server/errors';
import {
  DeployRefusedError,
  deploymentName,
  type Deployment,
  type Environment,
  type FleetCallOptions,
  type FleetDriver,
} from './driver';
import {
  apiMessage,
  applyObject,
  FIELD_MANAGER,
  isNotFound,
  lazyClient,
  type K8s,
  type KubeConnection,
} from '../../common/k8s';
import { sleep } from '../../common/timers';
import {
  clampToBounds,
  LABEL,
  MANAGED_BY,
  manifestsFor,
  REQUEST_ANNOTATION,
  selectorOf,
  type HpaOptions,
  type KubeObject,
  type KubernetesDeploymentRequest,
  type ManifestOptions,
} from './k8s-manifests';
import { replicasForWeight } from './sizing';

export { FIELD_MANAGER };

export interface KubernetesFleetOptions extends ManifestOptions {
  connection?: KubeConnection;
  /**
   * Base URLs the router should use for a deployment. Default: the Service's in-cluster DNS name.
   * Tests map it to locally started `runway serve` processes (kwok runs no containers).
   */
  endpointsFor?: (d: { name: string; namespace: string; replicas: number }) => string[] | Promise<string[]>;
  /** How long deploy/scale wait for a rollout before failing with the pods' reasons. Default: the progress deadline + 30 s. */
  rolloutTimeoutMs?: number;
  /** Rollout polling interval. Default 1 s. */
  pollMs?: number;
  /** Replicas follow traffic weight (scaleToWeight, called around every route change), so a GPU fleet never doubles in a canary. */
  scaleWithWeight?: boolean;
  logger?: Logger;
}

/**
 * A version's autoscaler bounds at `weight` percent of its model's traffic: the platform's bounds
 * scaled as replicasForWeight scales a fixed count, capped by the fleet's budget (`atMost`).
 */
export function weightedBounds(
  hpa: HpaOptions,
  weight: number,
  atMost?: number,
): { minReplicas: number; maxReplicas: number } {
  const minReplicas = replicasForWeight(hpa.minReplicas, weight);
  let maxReplicas = replicasForWeight(hpa.maxReplicas, weight);
  if (atMost !== undefined) maxReplicas = Math.min(maxReplicas, atMost);
  return {
    minReplicas: Math.min(minReplicas, Math.max(1, maxReplicas)),
    maxReplicas: Math.max(1, maxReplicas),
  };
}

/** A rollout that did not finish: `reasons` are the pods' and the Deployment's own explanations. */
export class RolloutError extends Error {
  constructor(
    message: string,
    readonly reasons: string[],
  ) {
    super(message);
    this.name = 'RolloutError';
  }
}

interface DeploymentObject {
  metadata?: {
    name?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: { replicas?: number };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    updatedReplicas?: number;
    readyReplicas?: number;
    availableReplicas?: number;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
}

interface PodObject {
  metadata?: { name?: string; deletionTimestamp?: unknown };
  status?: {
    phase?: string;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
    initContainerStatuses?: ContainerStatus[];
    containerStatuses?: ContainerStatus[];
  };
}
interface ContainerStatus {
  name: string;
  restartCount?: number;
  state?: {
    waiting?: { reason?: string; message?: string };
    terminated?: { exitCode?: number; reason?: string };
  };
  lastState?: { terminated?: { exitCode?: number; reason?: string } };
}

/** Kinds runway creates, deleted in this order (the autoscaler first, so it stops scaling). */
const KINDS: [apiVersion: string, kind: string][] = [
  ['autoscaling/v2', 'HorizontalPodAutoscaler'],
  ['policy/v1', 'PodDisruptionBudget'],
  ['v1', 'Service'],
  ['apps/v1', 'Deployment'],
];

const selector = (labels: Record<string, string>): string =>
  Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');

export class KubernetesFleet implements FleetDriver {
  private readonly client: ReturnType<typeof lazyClient>;
  private readonly log: Logger;
  private readonly fullSizeSaid = new Set<string>();

  constructor(private readonly options: KubernetesFleetOptions) {
    this.log = options.logger ?? createLogger('fleet.kubernetes');
    this.client = lazyClient(options.connection);
  }

  get namespace(): string {
    return this.options.namespace;
  }

  async deploy(input: KubernetesDeploymentRequest, opts: FleetCallOptions = {}): Promise<Deployment> {
    const name = deploymentName(input.model, input.version, input.environment);
    const { weight, ...req } = input;
    if (this.options.hpa) {
      // The autoscaler owns the count: a re-apply passes the live one so it never resets the
      // HPA's choice; with scaleWithWeight, the fleet sizes the HPA's bounds instead of replicas.
      const running = await this.readDeployment(name);
      req.fullReplicas = req.fullReplicas ?? req.replicas;
      if (this.options.scaleWithWeight) req.autoscale = weightedBounds(this.options.hpa, weight ?? 100);
      req.replicas = running?.spec?.replicas ?? req.replicas;
    } else if (this.options.scaleWithWeight) {
      // A running deployment keeps its count (traffic changes size it); a new one starts at its share.
      const full = req.fullReplicas ?? req.replicas;
      const running = await this.readDeployment(name);
      const current = running?.spec?.replicas;
      req.replicas =
        current === undefined ? replicasForWeight(full, weight ?? 100) : Math.max(1, Math.min(full, current));
      req.fullReplicas = full;
    }
    const objects = manifestsFor(req, this.options);
    await this.applyAll(objects);
    opts.onProgress?.(`applied ${objects.map((o) => o.kind).join(', ')} ${name}`);
    return this.waitRollout(name, opts);
  }

  async scale(name: string, replicas: number, opts: FleetCallOptions = {}): Promise<Deployment> {
    if (!Number.isInteger(replicas) || replicas < 0)
      throw new Error(`replicas: expected an integer ≥ 0, got ${replicas}`);
    if (this.options.hpa) {
      throw new Error(`scale ${name}: a HorizontalPodAutoscaler owns the replicas (fleet hpa is configured)`);
    }
    const req = await this.requestOf(name);
    return this.applyReplicas(name, req, replicas, replicas, opts);
  }

  /** Re-applies the whole set with a new count, so `runway` stays the only owner of every field. */
  private async applyReplicas(
    name: string,
    req: KubernetesDeploymentRequest,
    replicas: number,
    fullReplicas: number,
    opts: FleetCallOptions,
  ): Promise<Deployment> {
    await this.applyAll(manifestsFor({ ...req, replicas, fullReplicas }, this.options));
    opts.onProgress?.(`scaling ${name} to ${replicas}`);
    return this.waitRollout(name, opts);
  }

  /**
   * scaleWithWeight: replicas proportional to the variant's traffic share of the full count the
   * deployment was created with, capped by `atMost`. Without the option (or with an HPA, which
   * owns the count) the deployment keeps its size, and the first call for it says so.
   */
  async scaleToWeight(
    name: string,
    weight: number,
    opts: FleetCallOptions & { atMost?: number } = {},
  ): Promise<Deployment> {
    const req = await this.requestOf(name);
    const full = req.fullReplicas ?? req.replicas;
    if (!this.options.scaleWithWeight) {
      if (!this.fullSizeSaid.has(name)) {
        this.fullSizeSaid.add(name);
        this.log.info('replicas do not follow traffic weight', {
          name,
          why: this.options.hpa
            ? 'a HorizontalPodAutoscaler owns them (set scaleWithWeight to size its bounds by weight)'
            : 'fleet.kubernetes.scaleWithWeight is off',
        });
      }
      return this.waitRollout(name, opts);
    }
    if (this.options.hpa) {
      // Both on: the fleet moves the autoscaler's bounds with the weight and the autoscaler picks
      // the count inside them, so neither undoes the other. The live count is clamped into the
      // new bounds at once (a shrinking share must free its replicas before the budget needs them).
      const bounds = weightedBounds(this.options.hpa, weight, opts.atMost);
      const live = (await this.readDeployment(name))?.spec?.replicas ?? req.replicas;
      const same =
        req.autoscale?.minReplicas === bounds.minReplicas && req.autoscale.maxReplicas === bounds.maxReplicas;
      if (same && clampToBounds(live, bounds) === live) return this.waitRollout(name, opts);
      await this.applyAll(manifestsFor({ ...req, replicas: live, autoscale: bounds }, this.options));
      opts.onProgress?.(`autoscaling ${name} within ${bounds.minReplicas}–${bounds.maxReplicas} replicas`);
      return this.waitRollout(name, opts);
    }
    let want = replicasForWeight(full, weight);
    if (opts.atMost !== undefined) want = Math.max(1, Math.min(want, opts.atMost));
    if (want === req.replicas) return this.waitRollout(name, opts);
    return this.applyReplicas(name, req, want, full, opts);
  }

  async get(name: string): Promise<Deployment | undefined> {
    const d = await this.readDeployment(name);
    return d ? this.describe(d) : undefined;
  }

  async list(filter: { model?: string; environment?: Environment } = {}): Promise<Deployment[]> {
    const { objects } = await this.client();
    const labels: Record<string, string> = {
      [LABEL.managedBy]: MANAGED_BY,
      [LABEL.component]: 'model-server',
    };
    if (filter.model) labels[LABEL.model] = filter.model;
    if (filter.environment) labels[LABEL.env] = filter.environment;
    const res = await objects.list<K8s.KubernetesObject>(
      'apps/v1',
      'Deployment',
      this.namespace,
      undefined,
      undefined,
      undefined,
      undefined,
      selector(labels),
    );
    return Promise.all(res.items.map((d) => this.describe(d as DeploymentObject)));
  }

  /** Deletes the objects labelled as runway's for this deployment, and nothing else; waits for its pods to go. */
  async teardown(name: string, opts: FleetCallOptions = {}): Promise<void> {
    const { objects } = await this.client();
    const sel = selector(selectorOf(name));
    for (const [apiVersion, kind] of KINDS) {
      const found = await objects.list(
        apiVersion,
        kind,
        this.namespace,
        undefined,
        undefined,
        undefined,
        undefined,
        sel,
      );
      for (const item of found.items) {
        try {
          await objects.delete(
            { apiVersion, kind, metadata: { name: item.metadata?.name, namespace: this.namespace } },
            undefined,
            undefined,
            undefined,
            undefined,
            'Background',
          );
          this.log.info('deleted', { kind, name: item.metadata?.name, namespace: this.namespace });
        } catch (err) {
          if (!isNotFound(err)) throw new Error(`teardown ${name}: delete ${kind}: ${apiMessage(err)}`);
        }
      }
    }
    // Pods drain for up to their grace period; the caller (a saga step) wants them gone.
    const deadline = Date.now() + ((this.options.terminationGracePeriodSeconds ?? 60) + 60) * 1000;
    for (;;) {
      const pods = await this.pods(name);
      if (pods.length === 0) return;
      if (Date.now() > deadline) {
        throw new Error(`teardown ${name}: ${pods.length} pod(s) still terminating`);
      }
      opts.onProgress?.(`teardown ${name}: waiting for ${pods.length} pod(s) to stop`);
      await sleep(this.options.pollMs ?? 1000, opts.signal);
    }
  }

  // ---- internals ------------------------------------------------------------------------------

  private async applyAll(manifests: KubeObject[]): Promise<void> {
    const client = await this.client();
    for (const m of manifests) await applyObject(client, m);
  }

  private async readDeployment(name: string): Promise<DeploymentObject | undefined> {
    const { objects } = await this.client();
    try {
      const d = (await objects.read({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name, namespace: this.namespace },
      })) as DeploymentObject;
      // Someone else's Deployment of the same name is not ours to report, scale or delete.
      return d.metadata?.labels?.[LABEL.managedBy] === MANAGED_BY ? d : undefined;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw new Error(`read Deployment ${this.namespace}/${name}: ${apiMessage(err)}`);
    }
  }

  private async requestOf(name: string): Promise<KubernetesDeploymentRequest> {
    const d = await this.readDeployment(name);
    if (!d) throw new Error(`no runway deployment ${name} in namespace ${this.namespace}`);
    const raw = d.metadata?.annotations?.[REQUEST_ANNOTATION];
    if (!raw) throw new Error(`deployment ${name} has no ${REQUEST_ANNOTATION} annotation; deploy it again`);
    return JSON.parse(raw) as KubernetesDeploymentRequest;
  }

  private async describe(d: DeploymentObject): Promise<Deployment> {
    const labels = d.metadata?.labels ?? {};
    const name = d.metadata?.name ?? '';
    const replicas = d.spec?.replicas ?? 0;
    const raw = d.metadata?.annotations?.[REQUEST_ANNOTATION];
    const req = raw ? (JSON.parse(raw) as KubernetesDeploymentRequest) : undefined;
    return {
      name,
      model: labels[LABEL.model] ?? '',
      version: labels[LABEL.modelVersion] ?? '',
      environment: (labels[LABEL.env] ?? 'staging') as Environment,
      replicas,
      fullReplicas: req?.fullReplicas ?? req?.replicas ?? replicas,
      endpoints: await this.endpointsOf(name, replicas),
      ready: rolloutState(d).done,
    };
  }

  private async endpointsOf(name: string, replicas: number): Promise<string[]> {
    if (this.options.endpointsFor)
      return this.options.endpointsFor({ name, namespace: this.namespace, replicas });
    return [`http://${name}.${this.namespace}.svc.cluster.local:80`];
  }

  private async waitRollout(name: string, opts: FleetCallOptions): Promise<Deployment> {
    const timeout =
      this.options.rolloutTimeoutMs ?? ((this.options.progressDeadlineSeconds ?? 600) + 30) * 1000;
    const deadline = Date.now() + timeout;
    let last = '';
    for (;;) {
      const d = await this.readDeployment(name);
      if (!d) throw new Error(`deployment ${this.namespace}/${name} disappeared during its rollout`);
      const state = rolloutState(d);
      if (state.done) {
        opts.onProgress?.(`${name}: ${state.message}`);
        return this.describe(d);
      }
      if (state.failed || Date.now() > deadline) {
        const reasons = await this.reasons(name, d);
        const why = state.failed
          ? state.message
          : `not available after ${Math.round(timeout / 1000)} s (${state.message})`;
        throw new RolloutError(
          `rollout of ${this.namespace}/${name} failed: ${why}${reasons.length ? `; ${reasons.join('; ')}` : ''}`,
          reasons,
        );
      }
      // A server that refused its artifact crash-loops until the progress deadline (10 min by
      // default) and would fail the same way on every retry: fail the rollout at once instead.
      const refused = (await this.pods(name).catch(() => [])).flatMap(refusedContainers);
      if (refused.length > 0) {
        throw new DeployRefusedError(
          `rollout of ${this.namespace}/${name} cannot succeed: ${[...new Set(refused)].join('; ')}`,
        );
      }
      if (state.message !== last) this.log.info('rollout', { name, status: state.message });
      last = state.message;
      opts.onProgress?.(`${name}: ${state.message}`);
      await sleep(this.options.pollMs ?? 1000, opts.signal);
    }
  }

  /** The pods of deployment `name`, by runway's instance selector. */
  private async pods(name: string): Promise<PodObject[]> {
    const { objects } = await this.client();
    const pods = await objects.list(
      'v1',
      'Pod',
      this.namespace,
      undefined,
      undefined,
      undefined,
      undefined,
      selector(selectorOf(name)),
    );
    return pods.items as PodObject[];
  }

  /** The pods' explanations, each once with how many pods say it, plus the Deployment's failure conditions. */
  private async reasons(name: string, d: DeploymentObject): Promise<string[]> {
    const counts = new Map<string, number>();
    try {
      for (const p of await this.pods(name))
        for (const r of podProblems(p)) counts.set(r, (counts.get(r) ?? 0) + 1);
    } catch (err) {
      counts.set(`cannot list pods: ${apiMessage(err)}`, 1);
    }
    const out = [...counts].map(([r, n]) => (n > 1 ? `${r} (${n} pods)` : r));
    for (const c of d.status?.conditions ?? []) {
      if (c.type === 'ReplicaFailure' && c.status === 'True')
        out.push(`ReplicaFailure: ${c.message ?? c.reason}`);
    }
    return out;
  }
}

/** Where a rollout stands, by the rules `kubectl rollout status` uses. */
export function rolloutState(d: DeploymentObject): { done: boolean; failed: boolean; message: string } {
  const want = d.spec?.replicas ?? 1;
  const s = d.status ?? {};
  const progressing = s.conditions?.find((c) => c.type === 'Progressing');
  if ((d.metadata?.generation ?? 0) > (s.observedGeneration ?? -1)) {
    return { done: false, failed: false, message: 'waiting for the controller to observe the new spec' };
  }
  if (progressing?.reason === 'ProgressDeadlineExceeded') {
    return {
      done: false,
      failed: true,
      message: `progress deadline exceeded (${progressing.message ?? ''})`,
    };
  }
  const updated = s.updatedReplicas ?? 0;
  const available = s.availableReplicas ?? 0;
  if (updated < want) return { done: false, failed: false, message: `${updated}/${want} replicas updated` };
  if ((s.replicas ?? 0) > updated) {
    return {
      done: false,
      failed: false,
      message: `${(s.replicas ?? 0) - updated} old replica(s) terminating`,
    };
  }
  if (available < want)
    return { done: false, failed: false, message: `${available}/${want} replicas available` };
  return { done: true, failed: false, message: `${available}/${want} replicas available` };
}

/** Containers of `p` whose `runway serve` refused the artifact (exit 3), described; usually none. */
export function refusedContainers(p: PodObject): string[] {
  const out: string[] = [];
  for (const cs of [...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? [])]) {
    const t = cs.state?.terminated ?? cs.lastState?.terminated;
    if (t?.exitCode === EXIT_MODEL_REFUSED) {
      const pod = p.metadata?.name;
      out.push(
        `${pod ? `pod ${pod} ` : ''}container ${cs.name} exited ${EXIT_MODEL_REFUSED}: the model server refused its artifact` +
          ` (${pod ? `kubectl logs ${pod} -c ${cs.name} --previous` : 'its log'} names the sha256 or signature)`,
      );
    }
  }
  return out;
}

/** Why one pod is not serving, in the words Kubernetes used. */
export function podProblems(p: PodObject): string[] {
  const out: string[] = [];
  for (const c of p.status?.conditions ?? []) {
    if (c.type === 'PodScheduled' && c.status === 'False') {
      out.push(`unschedulable: ${c.message ?? c.reason ?? 'no reason given'}`);
    }
  }
  for (const cs of [...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? [])]) {
    const w = cs.state?.waiting;
    if (w?.reason && w.reason !== 'ContainerCreating' && w.reason !== 'PodInitializing') {
      out.push(`container ${cs.name}: ${w.reason}${w.message ? ` (${w.message})` : ''}`);
    }
    const t = cs.lastState?.terminated;
    if (t && (cs.restartCount ?? 0) > 0) {
      out.push(
        `container ${cs.name} restarted ${cs.restartCount} time(s), last exit code ${t.exitCode ?? '?'}${t.reason ? ` (${t.reason})` : ''}`,
      );
    }
  }
  return out;
}
