// Webhook readiness (#19 item 5): a pod created in the first moment after weftd reports
// ready must be admitted and injected, not refused by the API server (failurePolicy Fail:
// no caBundle yet, a certificate not yet served) nor stored without a sidecar. Each round
// starts from a genuinely fresh weftd, waits for its first successful readiness probe, and
// at once creates a pod in an injection-enabled namespace.
//
// kwok marks pods Ready without probing them, so the pod's Ready condition says nothing here:
// this part plays the kubelet's readiness prober itself, probing /ready on the new pod's IP
// every 20 ms (a kubelet probes every periodSeconds, 3 s for weftd; probing far more often
// finds the earliest moment a kubelet could mark the pod Ready, the hardest case).
import { cpSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AdmissionregistrationV1Api,
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type V1Pod,
} from '@kubernetes/client-node';
import { parse } from 'yaml';
import { meshInstallationApi, type MeshInstallation } from '../../api/mesh-installation.js';
import { isNotFound } from '../../kube/client.js';
import type { ChaosRow } from './chaos-table.js';
import { percentile, scrapeWeftdMetrics } from './chaos-target.js';

/**
 * How a round gets a fresh weftd. `reinstall`: the MeshInstallation is deleted (the operator
 * uninstalls everything, the CA Secret and the webhook configurations included) and created
 * again, so weftd starts with a new root and webhook configurations without a caBundle, as on
 * a first install. `restart`: weftd's pod is deleted and its Deployment makes a new one (the CA
 * and the caBundle stay), as after a node drain or an upgrade. `late webhooks`: as `restart`,
 * but the webhook configurations do not exist yet when weftd starts and the operator creates
 * them only once weftd waits for them, as on a first install where the operator applies weftd's
 * Deployment before the webhook configurations (the chart's order) and is slow, or restarted, in
 * between.
 */
export type FreshWeftd = 'reinstall' | 'restart' | 'late webhooks';

export const freshWeftdKinds: readonly FreshWeftd[] = ['reinstall', 'restart', 'late webhooks'];

export interface ReadinessChaosOptions {
  rounds: number;
  /** Round i makes its fresh weftd the way `fresh[i % fresh.length]` says. */
  fresh: readonly FreshWeftd[];
  /** The MeshInstallation to recreate in `reinstall` rounds (the sample, as installed). */
  installation: MeshInstallation;
  progress: (line: string) => void;
  /** Per round: the most a fresh weftd may take to become ready, default 120 s. */
  roundTimeoutMs?: number;
  /** The local cluster's pod log folder: a round that goes wrong copies it aside and names the copy. */
  podLogDir?: string;
}

export type RoundOutcome = 'injected' | 'refused' | 'not injected' | 'wrong injection';

export interface ReadinessRound {
  fresh: FreshWeftd;
  /** What happened to the pod created at once after the first successful probe. */
  outcome: RoundOutcome;
  detail: string;
  /** From the new weftd pod's creation to its first successful /ready. */
  startupMs: number;
  /** From the first successful /ready to the first pod the API server stored injected (retrying every 100 ms if refused). */
  readyToInjectedMs: number | undefined;
}

export interface ReadinessFigures {
  rounds: ReadinessRound[];
}

const namespace = 'readiness-chaos';
const weftNamespace = 'weft-system';
const weftdSelector = 'app.kubernetes.io/name=weftd';
const podName = 'first-pod';
const operatorNamespace = 'weft-operator';
const operatorName = 'weft-operator';

/** The sample MeshInstallation (`config/samples/meshinstallation.yaml`), as the install applies it. */
export function sampleInstallation(repositoryRoot: string): MeshInstallation {
  return parse(readFileSync(join(repositoryRoot, 'config', 'samples', 'meshinstallation.yaml'), 'utf8')) as MeshInstallation;
}

export async function readinessChaos(kubeConfig: KubeConfig, options: ReadinessChaosOptions): Promise<ReadinessFigures> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const custom = kubeConfig.makeApiClient(CustomObjectsApi);
  await ensureInjectedNamespace(core);
  // The injection a steady weftd makes: every round's pod must get the same.
  await deletePod(core);
  const reference = await core.createNamespacedPod({ namespace, body: appPod() });
  const expected = injectionOf(reference);
  if (!expected.initContainers.includes('istio-proxy') && !expected.containers.includes('istio-proxy'))
    throw new Error(`the reference pod was not injected (containers ${JSON.stringify(expected)}); is weftd ready?`);
  await deletePod(core);

  const timeoutMs = options.roundTimeoutMs ?? 120_000;
  const apps = kubeConfig.makeApiClient(AppsV1Api);
  const operatorReplicas = (await apps.readNamespacedDeployment({ name: operatorName, namespace: operatorNamespace })).spec?.replicas ?? 1;
  const rounds: ReadinessRound[] = [];
  for (let round = 1; round <= options.rounds; round++) {
    const fresh = options.fresh[(round - 1) % options.fresh.length] ?? 'restart';
    const known = new Set((await weftdPods(core)).map((pod) => pod.metadata?.uid));
    let operatorDown = false;
    if (fresh === 'reinstall') await reinstall(custom, core, options.installation, timeoutMs);
    else if (fresh === 'late webhooks') {
      // The operator would recreate deleted webhook configurations at once: it is stopped first.
      await scaleOperator(apps, core, 0, timeoutMs);
      // kwok removes a pod before its process has stopped: the leader's watches are shut only once it released its Lease.
      await leaseReleased(kubeConfig.makeApiClient(CoordinationV1Api), timeoutMs);
      operatorDown = true;
      await deleteWebhookConfigurations(kubeConfig, options.installation.metadata.name);
    }
    if (fresh !== 'reinstall') await core.deleteCollectionNamespacedPod({ namespace: weftNamespace, labelSelector: weftdSelector });
    let configurationsMissing = false;
    const {
      pod,
      readyAt,
      metrics: metricsAtReady,
    } = await firstReady(core, known, timeoutMs, async (missing) => {
      if (missing.some((line) => line.startsWith('webhook caBundle:') && line.includes('not found'))) configurationsMissing = true;
      // weftd is up and waits only for its webhook configurations: now the operator creates them.
      if (
        operatorDown &&
        missing.length > 0 &&
        missing.every((line) => line.startsWith('webhook caBundle:') || line.startsWith('webhook calls:'))
      ) {
        operatorDown = false;
        await scaleOperator(apps, core, operatorReplicas, timeoutMs);
      }
    });
    const startupMs = readyAt - Date.parse(pod.metadata?.creationTimestamp?.toString() ?? '') || 0;

    // At once: this is the pod a user's controller would create right after the control plane came up.
    let outcome: RoundOutcome;
    let detail: string;
    let readyToInjectedMs: number | undefined;
    try {
      const created = await core.createNamespacedPod({ namespace, body: appPod() });
      const got = injectionOf(created);
      if (!got.initContainers.includes('istio-proxy') && !got.containers.includes('istio-proxy')) {
        outcome = 'not injected';
        detail = `stored without a sidecar (containers ${got.containers.join(', ')}; init containers ${got.initContainers.join(', ') || 'none'})`;
      } else if (JSON.stringify(got) !== JSON.stringify(expected)) {
        outcome = 'wrong injection';
        detail = `differs from a steady weftd's: ${firstDifference(expected, got)}`;
      } else {
        outcome = 'injected';
        detail = '';
        readyToInjectedMs = Date.now() - readyAt;
      }
    } catch (error) {
      outcome = 'refused';
      detail = apiMessage(error);
    }
    // What the API server held when the pod went wrong, for the report: which configurations, made when, by whom;
    // whether the new weftd was asked to inject it and what it answered; its and the operators' logs.
    if (outcome !== 'injected') {
      const injection = injectionCountsDelta(metricsAtReady, await metricsOf(pod.status?.podIP ?? ''));
      detail += `; ${await webhookConfigurationsNow(kubeConfig, options.installation.metadata.name, readyAt)}; operator ${
        operatorDown ? 'still stopped' : 'scaled back before ready'
      }; the new weftd since ready: ${injection}`;
      if (options.podLogDir) detail += `; pod logs copied to ${keepLogs(options.podLogDir, round)}`;
    }
    // A late-webhooks round is what it says only if weftd found its configurations missing: a report, not a rule.
    if (fresh === 'late webhooks' && !configurationsMissing)
      detail += `${detail ? '; ' : ''}the configurations were there before the operator came back`;
    if (operatorDown) await scaleOperator(apps, core, operatorReplicas, timeoutMs);
    if (readyToInjectedMs === undefined) readyToInjectedMs = await untilInjected(core, readyAt, timeoutMs);
    else await deletePod(core);
    rounds.push({ fresh, outcome, detail, startupMs, readyToInjectedMs });
    options.progress(
      `readiness round ${round}/${options.rounds} (${fresh}): weftd ready ${startupMs} ms after its pod was created; the pod at once: ${outcome}` +
        (detail ? ` (${detail.slice(0, 1_000)})` : '') +
        (readyToInjectedMs !== undefined ? `; first injected ${readyToInjectedMs} ms after ready` : ''),
    );
  }
  await deletePod(core);
  return { rounds };
}

export function readinessRows(f: ReadinessFigures): ChaosRow[] {
  const injected = f.rounds.filter((r) => r.outcome === 'injected').length;
  const delays = f.rounds.map((r) => r.readyToInjectedMs).filter((ms): ms is number => ms !== undefined);
  const startups = f.rounds.map((r) => r.startupMs);
  const kinds = freshWeftdKinds.filter((kind) => f.rounds.some((r) => r.fresh === kind));
  const per = (count: (rounds: ReadinessRound[]) => number) =>
    kinds.map((kind) => `${count(f.rounds.filter((r) => r.fresh === kind))} ${kind}`).join(', ');
  return [
    {
      area: 'readiness',
      figure: 'rounds from a fresh weftd, a pod created at its first ready probe',
      value: `${f.rounds.length} (${per((rounds) => rounds.length)})`,
      rule: '>= 1',
      held: f.rounds.length >= 1,
    },
    {
      area: 'readiness',
      figure: 'of them, pods admitted and injected as by a steady weftd (not refused, not without sidecar)',
      value: `${injected} (${per((rounds) => rounds.filter((r) => r.outcome === 'injected').length)})`,
      rule: 'all',
      held: injected === f.rounds.length && f.rounds.length > 0,
      evidence: f.rounds.filter((r) => r.outcome !== 'injected').map((r) => `${r.fresh}: ${r.outcome}: ${r.detail}`),
    },
    {
      area: 'readiness',
      figure: 'time from ready to the first pod stored injected, p50 / max',
      value: delays.length ? `${percentile(delays, 50)} / ${Math.max(...delays)} ms` : 'none',
      rule: 'reported',
      held: true,
    },
    {
      area: 'readiness',
      figure: "fresh weftd's pod creation to its first ready probe, p50 / max",
      value: startups.length ? `${percentile(startups, 50)} / ${Math.max(...startups)} ms` : 'none',
      rule: 'reported',
      held: true,
    },
  ];
}

function appPod(): V1Pod {
  return {
    metadata: { name: podName, labels: { app: 'readiness-chaos' } },
    spec: { containers: [{ name: 'app', image: 'registry.example/app:1', ports: [{ containerPort: 8080 }] }] },
  };
}

/**
 * What injection changes in a pod, comparable across pods and weftd instances: containers, volumes,
 * labels and annotations, with the random suffix of the API server's projected token volume
 * (`kube-api-access-xxxxx`, added by the ServiceAccount admission plugin) made constant.
 */
function injectionOf(pod: V1Pod): {
  initContainers: string[];
  containers: string[];
  spec: unknown;
  labels: Record<string, string>;
  annotations: Record<string, string>;
} {
  const spec = { initContainers: pod.spec?.initContainers ?? [], containers: pod.spec?.containers ?? [], volumes: pod.spec?.volumes ?? [] };
  return {
    initContainers: spec.initContainers.map((c) => c.name),
    containers: spec.containers.map((c) => c.name),
    spec: JSON.parse(JSON.stringify(spec).replace(/kube-api-access-[a-z0-9]{5}/g, 'kube-api-access-*')) as unknown,
    labels: pod.metadata?.labels ?? {},
    annotations: pod.metadata?.annotations ?? {},
  };
}

function firstDifference(expected: unknown, got: unknown, path = ''): string {
  if (JSON.stringify(expected) === JSON.stringify(got)) return '';
  if (expected && got && typeof expected === 'object' && typeof got === 'object') {
    const keys = new Set([...Object.keys(expected), ...Object.keys(got)]);
    for (const key of keys) {
      const found = firstDifference((expected as Record<string, unknown>)[key], (got as Record<string, unknown>)[key], `${path}.${key}`);
      if (found) return found;
    }
  }
  return `${path || '.'}: expected ${JSON.stringify(expected)?.slice(0, 120)}, got ${JSON.stringify(got)?.slice(0, 120)}`;
}

async function ensureInjectedNamespace(core: CoreV1Api): Promise<void> {
  try {
    await core.createNamespace({ body: { metadata: { name: namespace, labels: { 'weft-injection': 'enabled' } } } });
  } catch (error) {
    if (!apiMessage(error).includes('already exists')) throw error;
  }
  // The ServiceAccount admission plugin refuses pods until the namespace's default account exists.
  await until('ServiceAccount default in ' + namespace, 60_000, async () =>
    core.readNamespacedServiceAccount({ name: 'default', namespace }).then(
      () => true,
      () => false,
    ),
  );
}

async function weftdPods(core: CoreV1Api): Promise<V1Pod[]> {
  return (await core.listNamespacedPod({ namespace: weftNamespace, labelSelector: weftdSelector })).items;
}

/**
 * The first weftd pod not in `known` to answer /ready with 200, and when (epoch ms) it first did.
 * `notReady` hears each 503's missing requirements (the body's lines after `not ready`).
 */
async function firstReady(
  core: CoreV1Api,
  known: Set<string | undefined>,
  timeoutMs: number,
  notReady: (missing: string[]) => Promise<void>,
): Promise<{ pod: V1Pod; readyAt: number; metrics: Map<string, number> }> {
  const deadline = Date.now() + timeoutMs;
  let pod: V1Pod | undefined;
  let lastPodLookup = 0;
  let last = 'no new weftd pod yet';
  while (Date.now() < deadline) {
    if (!pod?.status?.podIP && Date.now() - lastPodLookup > 200) {
      lastPodLookup = Date.now();
      pod = (await weftdPods(core).catch(() => [])).find(
        (p) => !known.has(p.metadata?.uid) && p.status?.podIP && !p.metadata?.deletionTimestamp,
      );
    }
    if (pod?.status?.podIP) {
      const answer = await fetch(`http://${pod.status.podIP}:15014/ready`, { signal: AbortSignal.timeout(1_000) }).then(
        async (response) => ({ ok: response.ok, body: await response.text() }),
        (error: unknown) => ({ ok: false, body: error instanceof Error ? error.message : String(error) }),
      );
      const readyAt = Date.now();
      // kwok may give the new pod the old one's IP while our kubelet stand-in still stops the old process:
      // only a process started after the new pod was created speaks for it.
      const metrics = answer.ok ? await metricsOf(pod.status.podIP) : new Map<string, number>();
      if (answer.ok && startedAfter(metrics, pod)) return { pod, readyAt, metrics };
      last = answer.ok ? "ready, but from the previous pod's process, still stopping" : answer.body.trim();
      if (last.startsWith('not ready')) await notReady(last.split('\n').slice(1));
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`no fresh weftd became ready within ${timeoutMs} ms (last /ready: ${last})`);
}

/** weftd's metrics on `ip`'s 15014 (`scrapeWeftdMetrics`), or none if it does not answer. */
async function metricsOf(ip: string): Promise<Map<string, number>> {
  return scrapeWeftdMetrics(ip).catch(() => new Map<string, number>());
}

/** What weftd's injector counters (`sidecar_injection_*_total`) did between two scrapes, e.g. "requests +1, skip +1". */
function injectionCountsDelta(before: Map<string, number>, after: Map<string, number>): string {
  if (after.size === 0) return 'metrics not read';
  const delta = (name: string) =>
    (after.get(`sidecar_injection_${name}_total`) ?? 0) - (before.get(`sidecar_injection_${name}_total`) ?? 0);
  return ['requests', 'success', 'skip', 'failure'].map((name) => `${name} +${delta(name)}`).join(', ');
}

/** Copies the cluster's pod logs aside for a round that went wrong (the cluster removes its own at the end). */
function keepLogs(podLogDir: string, round: number): string {
  const copy = join(tmpdir(), `weft-readiness-round-${round}-${Date.now()}`);
  try {
    // Logs only: the folder also holds each pod's kubeconfig, with its ServiceAccount token.
    cpSync(podLogDir, copy, { recursive: true, filter: (source) => !source.endsWith('.kubeconfig') });
    return copy;
  } catch (error) {
    return `nowhere (${error instanceof Error ? error.message : String(error)})`;
  }
}

/** Whether the process whose metrics these are started after `pod` was created (its `process_start_time_seconds`). */
function startedAfter(metrics: Map<string, number>, pod: V1Pod): boolean {
  const started = metrics.get('process_start_time_seconds') ?? Number.NaN;
  const created = Date.parse(pod.metadata?.creationTimestamp?.toString() ?? '') / 1000;
  // Both are whole seconds (prom-client rounds the start time): a second of slack; the old process started a round earlier.
  return started >= created - 1;
}

/** After a failed round: how long from ready until a pod is stored injected (retries every 100 ms), or undefined. */
async function untilInjected(core: CoreV1Api, readyAt: number, timeoutMs: number): Promise<number | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    await deletePod(core);
    const created = await core.createNamespacedPod({ namespace, body: appPod() }).catch(() => undefined);
    if (created && injectionOf(created).initContainers.concat(injectionOf(created).containers).includes('istio-proxy')) {
      const ms = Date.now() - readyAt;
      await deletePod(core);
      return ms;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return undefined;
}

async function deletePod(core: CoreV1Api): Promise<void> {
  try {
    await core.deleteNamespacedPod({ name: podName, namespace, gracePeriodSeconds: 0 });
  } catch (error) {
    if (isNotFound(error)) return;
    throw error;
  }
  await until(`pod ${namespace}/${podName} to be gone`, 60_000, async () =>
    core.readNamespacedPod({ name: podName, namespace }).then(
      () => false,
      (error: unknown) => isNotFound(error),
    ),
  );
}

/** Scales the operator's Deployment and waits until that many operator pods run (none left, for 0). */
async function scaleOperator(apps: AppsV1Api, core: CoreV1Api, replicas: number, timeoutMs: number): Promise<void> {
  await apps.replaceNamespacedDeploymentScale({
    name: operatorName,
    namespace: operatorNamespace,
    body: { metadata: { name: operatorName, namespace: operatorNamespace }, spec: { replicas } },
  });
  await until(`${replicas} operator pods`, timeoutMs, async () => {
    const pods = (await core.listNamespacedPod({ namespace: operatorNamespace, labelSelector: `app.kubernetes.io/name=${operatorName}` }))
      .items;
    return replicas === 0
      ? pods.length === 0
      : pods.filter((p) => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp).length >= replicas;
  });
}

/**
 * The operator's leader Lease held by no one, or expired (a leader killed rather than stopped), and
 * still so 3 s later: longer than a standby's retry period (2 s), so a standby that outlived its
 * leader's hand-over has taken it in between (and is waited for) rather than recreating the
 * configurations this round has just deleted.
 */
async function leaseReleased(coordination: CoordinationV1Api, timeoutMs: number): Promise<void> {
  const free = async () => {
    const lease = await coordination.readNamespacedLease({ name: 'weft-operator-leader', namespace: operatorNamespace });
    const renewed = lease.spec?.renewTime ? new Date(lease.spec.renewTime.toString()).getTime() : 0;
    return !lease.spec?.holderIdentity || renewed + (lease.spec.leaseDurationSeconds ?? 15) * 1_000 < Date.now();
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await until('the operator to release its leader Lease', Math.max(0, deadline - Date.now()), free);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    if (await free().catch(() => false)) return;
  }
}

/** The installation's webhook configurations as the API server holds them: each one's age against `readyAt`, writers and caBundles. */
async function webhookConfigurationsNow(kubeConfig: KubeConfig, installation: string, readyAt: number): Promise<string> {
  const admission = kubeConfig.makeApiClient(AdmissionregistrationV1Api);
  const labelSelector = `mesh.weft.dev/installation=${installation}`;
  try {
    const [mutating, validating] = await Promise.all([
      admission.listMutatingWebhookConfiguration({ labelSelector }),
      admission.listValidatingWebhookConfiguration({ labelSelector }),
    ]);
    const describe = (kind: string, items: Array<MutatingOrValidating>) =>
      items.map((c) => {
        const created = Date.parse(c.metadata?.creationTimestamp?.toString() ?? '');
        const writers = [...new Set((c.metadata?.managedFields ?? []).map((f) => f.manager))].join('+');
        const bundles = (c.webhooks ?? []).filter((w) => w.clientConfig.caBundle).length;
        return `${kind} ${c.metadata?.name} created ${created - readyAt} ms from ready by ${writers}, ${bundles}/${c.webhooks?.length ?? 0} with caBundle`;
      });
    const all = [...describe('mutating', mutating.items), ...describe('validating', validating.items)];
    return all.length > 0 ? all.join('; ') : 'no webhook configurations';
  } catch (error) {
    return `webhook configurations not read: ${apiMessage(error)}`;
  }
}

type MutatingOrValidating = {
  metadata?: { name?: string; creationTimestamp?: Date | string; managedFields?: Array<{ manager?: string }> };
  webhooks?: Array<{ clientConfig: { caBundle?: string } }>;
};

async function deleteWebhookConfigurations(kubeConfig: KubeConfig, installation: string): Promise<void> {
  const admission = kubeConfig.makeApiClient(AdmissionregistrationV1Api);
  const labelSelector = `mesh.weft.dev/installation=${installation}`;
  await admission.deleteCollectionMutatingWebhookConfiguration({ labelSelector });
  await admission.deleteCollectionValidatingWebhookConfiguration({ labelSelector });
}

/** Deletes the MeshInstallation, waits until the operator has uninstalled it, and creates it again. */
async function reinstall(custom: CustomObjectsApi, core: CoreV1Api, installation: MeshInstallation, timeoutMs: number): Promise<void> {
  const { group, version, plural } = meshInstallationApi;
  const name = installation.metadata.name;
  await custom.deleteClusterCustomObject({ group, version, plural, name });
  await until(`MeshInstallation ${name} to be uninstalled`, timeoutMs, async () =>
    custom.getClusterCustomObject({ group, version, plural, name }).then(
      () => false,
      (error: unknown) => isNotFound(error),
    ),
  );
  // The operator deletes the namespace it made; creating the installation while it terminates would only requeue.
  await until(`namespace ${weftNamespace} to be gone`, timeoutMs, async () =>
    core.readNamespace({ name: weftNamespace }).then(
      (ns) => ns.metadata?.labels?.['mesh.weft.dev/installation'] === undefined && !ns.metadata?.deletionTimestamp,
      (error: unknown) => isNotFound(error),
    ),
  );
  await custom.createClusterCustomObject({
    group,
    version,
    plural,
    body: { apiVersion: installation.apiVersion, kind: installation.kind, metadata: { name }, spec: installation.spec },
  });
}

async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function apiMessage(error: unknown): string {
  const body = (error as { body?: unknown }).body;
  if (typeof body === 'string') {
    try {
      return (JSON.parse(body) as { message?: string }).message ?? body;
    } catch {
      return body;
    }
  }
  return error instanceof Error ? error.message : String(error);
}
