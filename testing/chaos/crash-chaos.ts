// Crash chaos: the operator and weftd killed (SIGKILL) at seeded random moments while a
// MeshInstallation goes through install, upgrade, scale, root rotation and uninstall on the
// real local cluster, with kube-apiserver and etcd restarted in place now and then. The pod
// runner restarts a killed process as the kubelet restarts a container (CrashLoopBackOff).
// After every phase the world must converge within a deadline to exactly what the operator's
// chart says (nothing missing, nothing left over after uninstall), the CA material must be the
// same as before (never regenerated unless the phase rotated it), and a proxy that keeps
// reconnecting, as Envoy does, must hold a Service created after the phase. Once per run the
// leading operator is killed and kept down, and the time until the standby holds the Lease is
// measured.
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import {
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesObject,
  type V1Deployment,
  type V1Pod,
} from '@kubernetes/client-node';
import { labels, trustBundle } from '../../api/labels.js';
import { meshInstallationApi, type MeshInstallation } from '../../api/mesh-installation.js';
import { controlPlaneManifests } from '../../cdk8s/control-plane-chart.js';
import { isConflict, isNotFound } from '../../kube/client.js';
import { leaderElectionDefaults } from '../../kube/leader-election.js';
import { ObjectClient, refKey, refOf } from '../../kube/objects.js';
import { issueCertificate, generateRsaKeyPair, privateKeyToPem } from '../../lib/x509.js';
import { weftVersion } from '../../lib/version.js';
import { managedKinds } from '../../operator/managed-kinds.js';
import { caSecretName } from '../../ca/ca-secret-store.js';
import type { ClusterBinaries } from '../cluster/binaries.js';
import type { LocalCluster } from '../cluster/local-cluster.js';
import { PodProcessRunner, weftImageRule } from '../cluster/pod-processes.js';
import type { ChaosRow } from './chaos-table.js';
import type { ChaosTarget } from './chaos-target.js';
import { seededRandom, type Random } from './seeded-random.js';
import { sidecarNode, WellBehavedProxy } from './xds-clients.js';

export const crashPhases = ['install', 'upgrade', 'scale', 'rotate', 'uninstall'] as const;
export type CrashPhase = (typeof crashPhases)[number];

export interface CrashChaosOptions {
  /** Kill points in all (WEFT_CHAOS_KILLS, 100 in `make chaos`): one per phase, five phases per cycle. */
  kills: number;
  /** In-place restarts of kube-apiserver and of etcd, each during a phase chosen at random (after its kill). */
  apiserverRestarts: number;
  etcdRestarts: number;
  /** Leader failovers measured: the leading operator killed and kept down until the other holds the Lease. */
  failovers: number;
  /** A kill lands within this long after the phase's change is written (ms), skewed towards the start. */
  killWindowMs: number;
  /** Each phase must converge within this long from its change (ms). */
  convergenceMs: number;
  /** A Service created after a phase converged must reach the reconnecting proxy's CDS within this (ms). */
  proxySyncMs: number;
  /** The kubelet's CrashLoopBackOff maximum (KubeletConfiguration crashLoopBackOff.maxContainerRestartPeriod), ms. */
  maxRestartBackOffMs: number;
  seed: number;
  repositoryRoot: string;
  binaries: ClusterBinaries;
  progress: (line: string) => void;
}

export interface PhaseRun {
  cycle: number;
  phase: CrashPhase;
  /** The killed process (namespace/pod/container) and when, ms after the phase's change. */
  victim?: string;
  killAtMs?: number;
  apiRestart?: { component: 'kube-apiserver' | 'etcd'; downMs: number };
  converged: boolean;
  /** From the phase's change until every check passed (or the deadline). */
  convergenceMs: number;
  /** What still did not match at the deadline. */
  problems: string[];
  /** Each change of what did not match yet, ms after the phase's change: where convergence time goes. */
  timeline: string[];
  /** Objects left after uninstall. */
  orphans: string[];
  /** CA material lost or replaced without a rotation. */
  lostCa: string[];
  /** From the probe Service's creation to its cluster in the proxy's CDS; undefined if it never came. */
  proxySyncMs?: number;
}

export interface CrashFigures {
  seed: number;
  runs: PhaseRun[];
  kills: { operator: number; weftd: number };
  /** Measured failovers: from the leader's SIGKILL to the Lease held by the other replica (ms). */
  failoversMs: number[];
  /** Lease duration plus the retry period: the longest a standby can need. */
  failoverBoundMs: number;
  proxyReconnects: number;
  /** Containers the runner restarted after they exited, and how many of those exits were not our SIGKILLs. */
  containerRestarts: number;
  unprovokedExits: number;
  convergenceBudgetMs: number;
  proxySyncBudgetMs: number;
  elapsedMs: number;
}

const installationName = 'crash';
const meshNamespace = 'weft-system';
const probeNamespace = 'crash-probe';
const operatorNamespace = 'weft-operator';
const leaseName = 'weft-operator-leader';
const { group, version, plural } = meshInstallationApi;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** What the MeshInstallation asks for after each phase of a cycle. */
interface Desired {
  profile: 'demo' | 'minimal';
  version?: string;
  replicas?: number;
  /** The plugged cacerts the rotation wrote: the signer weftd must use and the root it must distribute. */
  plugged?: PluggedCa;
  present: boolean;
}

function nextDesired(phase: CrashPhase, cycle: number, before: Desired): Desired {
  switch (phase) {
    case 'install':
      return { profile: 'demo', present: true };
    case 'upgrade':
      return { ...before, profile: 'minimal', version: `1.${cycle}.0-crash` };
    case 'scale':
      return { ...before, replicas: 2 };
    case 'rotate':
      return { ...before, plugged: pluggedCa() };
    case 'uninstall':
      return { profile: 'demo', present: false };
  }
}

interface PluggedCa {
  signerPem: string;
  keyPem: string;
  rootPem: string;
}

/** A new root and an intermediate it signs, as a user plugs them (Istio's cacerts layout). */
function pluggedCa(): PluggedCa {
  const root = generateRsaKeyPair();
  const notAfter = new Date(Date.now() + 30 * 86_400_000);
  const rootPem = issueCertificate(
    { commonName: 'crash-chaos root', organizations: ['cluster.local'], isCA: true, notAfter },
    root.publicKey,
    {
      selfSigningKey: root.privateKey,
    },
  );
  const intermediate = generateRsaKeyPair();
  const signerPem = issueCertificate(
    { commonName: 'crash-chaos intermediate', organizations: ['cluster.local'], isCA: true, notAfter },
    intermediate.publicKey,
    { certificatePem: rootPem, privateKey: root.privateKey },
  );
  return { signerPem, rootPem, keyPem: privateKeyToPem(intermediate.privateKey) };
}

/**
 * Runs the cycles on `cluster`, where nothing of Weft is installed yet: install.yaml (the
 * operator, two replicas with leader election) is applied first, and every Weft pod runs as a
 * process restarted with the kubelet's back-off.
 */
export async function crashChaos(cluster: LocalCluster, options: CrashChaosOptions): Promise<CrashFigures> {
  const started = Date.now();
  const random = seededRandom(options.seed);
  const kubeConfig = cluster.kubeConfig();
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const runner = new PodProcessRunner(kubeConfig, {
    server: cluster.server,
    caFile: cluster.pki.caFile,
    workDir: join(cluster.workDir, 'logs', 'pods'),
    rules: [weftImageRule(options.repositoryRoot)],
    crashLoopBackOff: { maxMs: options.maxRestartBackOffMs },
  });
  runner.start();
  const proxy = new ReconnectingProxy(kubeConfig);
  const figures: CrashFigures = {
    seed: options.seed,
    runs: [],
    kills: { operator: 0, weftd: 0 },
    failoversMs: [],
    failoverBoundMs: leaderElectionDefaults.leaseDurationSeconds * 1000 + leaderElectionDefaults.retryPeriodMs,
    proxyReconnects: 0,
    containerRestarts: 0,
    unprovokedExits: 0,
    convergenceBudgetMs: options.convergenceMs,
    proxySyncBudgetMs: options.proxySyncMs,
    elapsedMs: 0,
  };
  try {
    installOperator(cluster, options);
    await core.createNamespace({ body: { metadata: { name: probeNamespace } } }).catch((error: unknown) => {
      if (!isConflict(error)) throw error;
    });
    await leaseHolder(kubeConfig, 120_000);

    const cycles = Math.ceil(options.kills / crashPhases.length);
    const totalPhases = cycles * crashPhases.length;
    // Which phases also restart the API server or etcd: distinct, drawn from the seed.
    const restarts = new Map<number, 'kube-apiserver' | 'etcd'>();
    const draw = (component: 'kube-apiserver' | 'etcd', count: number) => {
      for (let i = 0; i < count && restarts.size < totalPhases; i++) {
        let at = random.int(totalPhases);
        while (restarts.has(at)) at = (at + 1) % totalPhases;
        restarts.set(at, component);
      }
    };
    draw('kube-apiserver', options.apiserverRestarts);
    draw('etcd', options.etcdRestarts);
    const failoverCycles = new Set(
      Array.from({ length: Math.min(options.failovers, cycles) }, (_, i) => Math.floor((i * cycles) / options.failovers)),
    );

    let desired: Desired = { profile: 'demo', present: false };
    let caBaseline: string | undefined;
    let killsLeft = options.kills;
    for (let cycle = 0; cycle < cycles; cycle++) {
      if (failoverCycles.has(cycle)) {
        const ms = await measureFailover(kubeConfig, runner);
        figures.failoversMs.push(ms);
        options.progress(`crash: leader failover in ${ms} ms`);
      }
      for (const phase of crashPhases) {
        const index = cycle * crashPhases.length + crashPhases.indexOf(phase);
        const next = nextDesired(phase, cycle, desired);
        const run: PhaseRun = { cycle, phase, converged: false, convergenceMs: 0, problems: [], timeline: [], orphans: [], lostCa: [] };
        const phaseStart = Date.now();
        await writeDesired(kubeConfig, phase, next);
        if (killsLeft > 0) {
          killsLeft--;
          // Skewed towards the phase's start, where the operator's writes and weftd's start-up are.
          const killAt = Math.floor(random.next() ** 2 * options.killWindowMs);
          await sleep(Math.max(0, phaseStart + killAt - Date.now()));
          const victim = pickVictim(runner, random, await leaseHolderNow(kubeConfig));
          if (victim) {
            run.victim = victim;
            run.killAtMs = Date.now() - phaseStart;
            await runner.kill(victim).catch(() => undefined);
            if (victim.startsWith(`${operatorNamespace}/`)) figures.kills.operator++;
            else figures.kills.weftd++;
          }
        }
        const component = restarts.get(index);
        if (component) {
          const downMs = await cluster.restart(component);
          run.apiRestart = { component, downMs };
        }
        // Converged: every check passes at once.
        const deadline = phaseStart + options.convergenceMs;
        for (;;) {
          const state = await observe(kubeConfig, next, caBaseline).catch((error: unknown) => ({
            problems: [`observing: ${message(error)}`],
            orphans: [],
            lostCa: [],
            caSigner: undefined,
          }));
          const seen = [...state.problems, ...state.orphans, ...state.lostCa].join('; ');
          if (seen !== [...run.problems, ...run.orphans, ...run.lostCa].join('; ') || run.timeline.length === 0)
            run.timeline.push(`${Date.now() - phaseStart} ms: ${seen || 'converged'}`);
          run.problems = state.problems;
          run.orphans = state.orphans;
          run.lostCa = state.lostCa;
          if (state.problems.length === 0 && state.orphans.length === 0 && state.lostCa.length === 0) {
            run.converged = true;
            if (phase === 'install') caBaseline = state.caSigner;
            break;
          }
          if (Date.now() > deadline) break;
          await sleep(1_000);
        }
        run.convergenceMs = Date.now() - phaseStart;
        if (!next.present) caBaseline = undefined;
        if (next.present && run.converged)
          run.proxySyncMs = await probeProxy(kubeConfig, proxy, `probe-${cycle}-${phase}`, options.proxySyncMs);
        figures.runs.push(run);
        options.progress(
          `crash: cycle ${cycle} ${phase}: ${run.victim ? `killed ${run.victim} at ${run.killAtMs} ms, ` : ''}${
            run.apiRestart ? `${run.apiRestart.component} restarted (${run.apiRestart.downMs} ms), ` : ''
          }${run.converged ? 'converged' : 'NOT converged'} in ${run.convergenceMs} ms${
            run.proxySyncMs !== undefined ? `, proxy synced in ${run.proxySyncMs} ms` : ''
          }${run.converged ? '' : `: ${[...run.problems, ...run.orphans, ...run.lostCa].slice(0, 3).join('; ')}`}`,
        );
        if (process.env['WEFT_CHAOS_DEBUG']) for (const line of run.timeline) options.progress(`crash:   ${line}`);
        desired = next;
        if (!run.converged && next.present) {
          // Start the next cycle from a clean slate rather than pile failures on one another.
          break;
        }
      }
      if (desired.present) {
        await writeDesired(kubeConfig, 'uninstall', { profile: 'demo', present: false });
        await waitGone(kubeConfig, options.convergenceMs);
        desired = { profile: 'demo', present: false };
      }
    }
    figures.proxyReconnects = proxy.connects;
    figures.containerRestarts = runner.restarts();
    // Every SIGKILL (failovers' included) is followed by one restart, unless its pod went first.
    figures.unprovokedExits = Math.max(
      0,
      figures.containerRestarts - figures.kills.operator - figures.kills.weftd - figures.failoversMs.length,
    );
  } finally {
    proxy.stop();
    await runner.stop();
  }
  figures.elapsedMs = Date.now() - started;
  return figures;
}

function installOperator(cluster: LocalCluster, options: CrashChaosOptions): void {
  const installYaml = join(options.repositoryRoot, 'dist', 'install.yaml');
  if (!existsSync(installYaml)) throw new Error(`${installYaml} is missing; run 'make manifests'`);
  const kubectl = (args: string[]): void => {
    const result = spawnSync(options.binaries.kubectl, args, {
      env: { ...process.env, KUBECONFIG: cluster.kubeconfigPath },
      encoding: 'utf8',
    });
    if (result.status !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${result.stderr.trim()}`);
  };
  options.progress('crash: kubectl apply --server-side -f dist/install.yaml');
  kubectl(['apply', '--server-side', '-f', installYaml]);
  kubectl(['wait', '--for=condition=Established', 'crd/meshinstallations.mesh.weft.dev', '--timeout=60s']);
}

/** The Lease's holder, waiting up to `timeoutMs` for one. */
async function leaseHolder(kubeConfig: KubeConfig, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const holder = await leaseHolderNow(kubeConfig);
    if (holder) return holder;
    if (Date.now() > deadline) throw new Error(`no operator holds Lease ${operatorNamespace}/${leaseName} after ${timeoutMs / 1000} s`);
    await sleep(250);
  }
}

async function leaseHolderNow(kubeConfig: KubeConfig): Promise<string | undefined> {
  const lease = await kubeConfig
    .makeApiClient(CoordinationV1Api)
    .readNamespacedLease({ name: leaseName, namespace: operatorNamespace })
    .catch(() => undefined);
  const spec = lease?.spec;
  if (!spec?.holderIdentity || !spec.renewTime) return undefined;
  const expires = new Date(spec.renewTime).getTime() + (spec.leaseDurationSeconds ?? 15) * 1000;
  return expires > Date.now() ? spec.holderIdentity : undefined;
}

/** Half the kills go to the leading operator, half to a weftd (the leader again when none runs). */
function pickVictim(runner: PodProcessRunner, random: Random, leader: string | undefined): string | undefined {
  const keys = [...runner.processes()].filter(([, process]) => process.running).map(([key]) => key);
  const weftd = keys.filter((key) => key.startsWith(`${meshNamespace}/`));
  const operators = keys.filter((key) => key.startsWith(`${operatorNamespace}/`));
  const leading = operators.find((key) => key.split('/')[1] === leader);
  if (weftd.length > 0 && (random.next() < 0.5 || !leading)) return random.pick(weftd);
  return leading ?? (operators.length > 0 ? random.pick(operators) : undefined);
}

/**
 * Kills the leading operator and keeps it down (its node gone, say) until the other replica holds
 * the Lease; returns how long that took (ms). The killed replica is then let back, as a standby.
 */
async function measureFailover(kubeConfig: KubeConfig, runner: PodProcessRunner): Promise<number> {
  // The Lease may still name a replica whose process just exited (an earlier kill, or the operator leaving on an
  // API server restart) and is waiting out its restart back-off: wait for a holder whose process runs.
  const deadline = Date.now() + 60_000;
  let leader: string | undefined;
  let key: string | undefined;
  for (;;) {
    leader = await leaseHolder(kubeConfig, 60_000);
    key = [...runner.processes()].find(([k, process]) => k.startsWith(`${operatorNamespace}/${leader}/`) && process.running)?.[0];
    if (key) break;
    if (Date.now() > deadline) throw new Error(`the Lease holder ${leader} has run no process for 60 s`);
    await sleep(200);
  }
  const killed = Date.now();
  await runner.kill(key, { hold: true });
  try {
    const coordination = kubeConfig.makeApiClient(CoordinationV1Api);
    for (;;) {
      const lease = await coordination.readNamespacedLease({ name: leaseName, namespace: operatorNamespace }).catch(() => undefined);
      const holder = lease?.spec?.holderIdentity;
      if (holder && holder !== leader) return Date.now() - killed;
      if (Date.now() - killed > 120_000) throw new Error(`no standby took Lease ${leaseName} within 120 s of killing ${leader}`);
      await sleep(100);
    }
  } finally {
    runner.release(key);
  }
}

async function writeDesired(kubeConfig: KubeConfig, phase: CrashPhase, desired: Desired): Promise<void> {
  const custom = kubeConfig.makeApiClient(CustomObjectsApi);
  const core = kubeConfig.makeApiClient(CoreV1Api);
  if (!desired.present) {
    await custom.deleteClusterCustomObject({ group, version, plural, name: installationName }).catch((error: unknown) => {
      if (!isNotFound(error)) throw error;
    });
    return;
  }
  if (phase === 'rotate' && desired.plugged) {
    const { signerPem, rootPem, keyPem } = desired.plugged;
    await core.deleteNamespacedSecret({ name: 'cacerts', namespace: meshNamespace }).catch(() => undefined);
    await core.createNamespacedSecret({
      namespace: meshNamespace,
      body: {
        metadata: { name: 'cacerts' },
        stringData: { 'ca-cert.pem': signerPem, 'ca-key.pem': keyPem, 'root-cert.pem': rootPem, 'cert-chain.pem': signerPem + rootPem },
      },
    });
  }
  const spec = {
    namespace: meshNamespace,
    profile: desired.profile,
    ...(desired.version ? { version: desired.version } : {}),
    meshConfig: { trustDomain: 'cluster.local', mtls: { mode: 'PERMISSIVE' } },
    ...(desired.replicas ? { controlPlane: { replicas: desired.replicas } } : {}),
    ...(desired.plugged ? { ca: { mode: 'Plugged', pluggedSecretName: 'cacerts' } } : {}),
  };
  for (let attempt = 0; ; attempt++) {
    const live = (await custom.getClusterCustomObject({ group, version, plural, name: installationName }).catch((error: unknown) => {
      if (isNotFound(error)) return undefined;
      throw error;
    })) as MeshInstallation | undefined;
    try {
      if (!live || live.metadata.deletionTimestamp) {
        if (live) throw new Error(`MeshInstallation ${installationName} is still being deleted`);
        await custom.createClusterCustomObject({
          group,
          version,
          plural,
          body: { apiVersion: `${group}/${version}`, kind: 'MeshInstallation', metadata: { name: installationName }, spec },
        });
      } else {
        // Replace keeps the resourceVersion: a write racing ours is retried, never lost.
        await custom.replaceClusterCustomObject({ group, version, plural, name: installationName, body: { ...live, spec } });
      }
      return;
    } catch (error) {
      if (attempt >= 20) throw error;
      await sleep(500);
    }
  }
}

async function waitGone(kubeConfig: KubeConfig, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const state = await observe(kubeConfig, { profile: 'demo', present: false }, undefined).catch(() => undefined);
    if (state && state.orphans.length === 0 && state.problems.length === 0) return;
    await sleep(1_000);
  }
}

interface Observation {
  problems: string[];
  orphans: string[];
  lostCa: string[];
  /** The SelfSigned root's certificate (PEM) in weft-ca-secret. */
  caSigner: string | undefined;
}

/** Everything the phase should have led to, checked against the live cluster; empty lists mean converged. */
async function observe(kubeConfig: KubeConfig, desired: Desired, caBaseline: string | undefined): Promise<Observation> {
  const custom = kubeConfig.makeApiClient(CustomObjectsApi);
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const objects = new ObjectClient(kubeConfig, 'crash-chaos');
  const problems: string[] = [];
  const orphans: string[] = [];
  const lostCa: string[] = [];
  const selector = `${labels.installation}=${installationName}`;
  const labelled: KubernetesObject[] = [];
  for (const kind of [...managedKinds, { apiVersion: 'v1', kind: 'Secret' }, { apiVersion: 'v1', kind: 'Pod' }]) {
    labelled.push(...(await objects.list(kind.apiVersion, kind.kind, selector)));
  }
  const live = (await custom.getClusterCustomObject({ group, version, plural, name: installationName }).catch((error: unknown) => {
    if (isNotFound(error)) return undefined;
    throw error;
  })) as MeshInstallation | undefined;

  if (!desired.present) {
    if (live)
      problems.push(`MeshInstallation ${installationName} still exists (finalizers ${JSON.stringify(live.metadata.finalizers ?? [])})`);
    for (const object of labelled) orphans.push(`${object.kind} ${object.metadata?.namespace ?? ''}/${object.metadata?.name}`);
    const bundles = (await objects.list('v1', 'ConfigMap', `${labels.partOf}=weft`)).filter(
      (cm) => cm.metadata?.name === trustBundle.configMap,
    );
    for (const bundle of bundles) orphans.push(`ConfigMap ${bundle.metadata?.namespace}/${bundle.metadata?.name}`);
    const namespace = await core.readNamespace({ name: meshNamespace }).catch(() => undefined);
    if (namespace) orphans.push(`Namespace ${meshNamespace} (${namespace.status?.phase})`);
    return { problems, orphans, lostCa, caSigner: undefined };
  }

  if (!live) return { problems: ['MeshInstallation not found'], orphans, lostCa, caSigner: undefined };
  const ready = live.status?.conditions?.find((c) => c.type === 'Ready');
  const generation = live.metadata.generation ?? 0;
  if (ready?.status !== 'True' || ready.observedGeneration !== generation)
    problems.push(`Ready=${ready?.status} (${ready?.reason}) for generation ${ready?.observedGeneration} of ${generation}`);

  // What the chart says, against what exists: each desired object present with the desired labels (and, for
  // weftd's Deployment, the desired replicas and pod template), nothing else labelled with the installation.
  const desiredObjects = controlPlaneManifests({ installation: live, operatorVersion: weftVersion }) as KubernetesObject[];
  const desiredKeys = new Set(desiredObjects.map((object) => refKey(refOf(object))));
  for (const want of desiredObjects) {
    const have = labelled.find((object) => refKey(refOf(object)) === refKey(refOf(want)));
    const got = have ?? (want.kind === 'Namespace' ? await objects.read(refOf(want)) : undefined);
    if (!got) {
      problems.push(`missing ${want.kind} ${want.metadata?.name}`);
      continue;
    }
    const wrongLabel = Object.entries(want.metadata?.labels ?? {}).find(([k, v]) => got.metadata?.labels?.[k] !== v);
    if (wrongLabel && want.kind !== 'Namespace')
      problems.push(`${want.kind} ${want.metadata?.name}: label ${wrongLabel[0]} is not ${wrongLabel[1]}`);
    if (want.kind === 'Deployment') {
      const w = want as V1Deployment;
      const g = got as V1Deployment;
      if (g.spec?.replicas !== w.spec?.replicas)
        problems.push(`Deployment ${w.metadata?.name}: replicas ${g.spec?.replicas}, want ${w.spec?.replicas}`);
      // Image and env values (the API server fills defaults into valueFrom, so those are compared by name only).
      const template = (d: V1Deployment) =>
        JSON.stringify(d.spec?.template.spec?.containers.map((c) => [c.image, (c.env ?? []).map((e) => [e.name, e.value ?? ''])]));
      if (template(g) !== template(w)) problems.push(`Deployment ${w.metadata?.name}: pod template differs from the chart`);
    }
  }
  for (const object of labelled) {
    if (object.kind === 'Pod' || object.kind === 'Secret') continue;
    if (!desiredKeys.has(refKey(refOf(object))))
      orphans.push(`${object.kind} ${object.metadata?.namespace ?? ''}/${object.metadata?.name} not in the chart`);
  }

  // weftd: exactly the desired pods, each with the desired image, serving and ready.
  const deployment = desiredObjects.find((object) => object.kind === 'Deployment') as V1Deployment | undefined;
  const image = deployment?.spec?.template.spec?.containers[0]?.image;
  const pods = labelled.filter((object): object is V1Pod => object.kind === 'Pod' && !object.metadata?.deletionTimestamp);
  const current = pods.filter((pod) => pod.spec?.containers[0]?.image === image && pod.status?.phase === 'Running' && pod.status.podIP);
  if (pods.length !== deployment?.spec?.replicas || current.length !== pods.length)
    problems.push(`weftd pods: ${pods.length} (${current.length} current and running), want ${deployment?.spec?.replicas}`);

  // The CA: weft-ca-secret is the root made at install, never made again; with plugged cacerts, weftd signs with them.
  const caSecret = await core.readNamespacedSecret({ name: caSecretName, namespace: meshNamespace }).catch(() => undefined);
  const caSigner = caSecret?.data?.['ca-cert.pem'] ? Buffer.from(caSecret.data['ca-cert.pem'], 'base64').toString('utf8') : undefined;
  if (!caSigner) problems.push(`Secret ${caSecretName} missing`);
  else if (caBaseline && fingerprint(caSigner) !== fingerprint(caBaseline))
    lostCa.push(
      `${caSecretName}: its CA certificate changed (${fingerprint(caBaseline).slice(0, 16)} -> ${fingerprint(caSigner).slice(0, 16)}) without a rotation`,
    );
  const signerPem = desired.plugged?.signerPem ?? caSigner;
  const rootPem = desired.plugged?.rootPem ?? caSigner;
  if (signerPem && rootPem) {
    for (const pod of current) {
      const ip = pod.status?.podIP as string;
      const readyNow = await fetch(`http://${ip}:15014/ready`, { signal: AbortSignal.timeout(2_000) }).then(
        (r) => r.ok,
        () => false,
      );
      if (!readyNow) {
        problems.push(`weftd ${pod.metadata?.name}: /ready not 200`);
        continue;
      }
      const leaf = await servedCertificate(ip).catch(() => undefined);
      const signer = new X509Certificate(signerPem);
      if (!leaf) problems.push(`weftd ${pod.metadata?.name}: no TLS on 15012`);
      else if (!leaf.checkIssued(signer) || !leaf.verify(signer.publicKey))
        problems.push(
          `weftd ${pod.metadata?.name}: serves a certificate not signed by the ${desired.plugged ? 'plugged intermediate' : 'install-time root'}`,
        );
    }
    for (const namespace of [meshNamespace, probeNamespace]) {
      const bundle = await core.readNamespacedConfigMap({ name: trustBundle.configMap, namespace }).catch(() => undefined);
      const roots = bundle?.data?.[trustBundle.key] ?? '';
      if (!roots.includes(rootPem.trim()))
        problems.push(`${namespace}/${trustBundle.configMap} lacks the ${desired.plugged ? 'plugged' : 'install-time'} root`);
    }
  }
  return { problems, orphans, lostCa, caSigner };
}

const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;

/** The leaf weftd serves on 15012 (the name proxies dial), unverified: the caller checks its issuer. */
function servedCertificate(ip: string): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: ip,
      port: 15012,
      servername: 'weftd.weft-system.svc',
      rejectUnauthorized: false,
      ALPNProtocols: ['h2'],
    });
    const timer = setTimeout(() => socket.destroy(new Error('timeout')), 3_000);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const raw = socket.getPeerCertificate().raw;
      socket.destroy();
      if (raw) resolve(new X509Certificate(raw));
      else reject(new Error('no peer certificate'));
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/** Creates a Service and waits for its cluster in the proxy's CDS; returns the time it took, or undefined past `withinMs`. */
async function probeProxy(kubeConfig: KubeConfig, proxy: ReconnectingProxy, name: string, withinMs: number): Promise<number | undefined> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const created = Date.now();
  await core.createNamespacedService({
    namespace: probeNamespace,
    body: { metadata: { name }, spec: { selector: { app: name }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } },
  });
  const cluster = `outbound|80||${name}.${probeNamespace}.svc.cluster.local`;
  while (Date.now() - created <= withinMs) {
    if (proxy.clusters().has(cluster)) return Date.now() - created;
    await sleep(100);
  }
  return undefined;
}

/**
 * A sidecar that stays connected as Envoy does: on 15010 to a running weftd pod, reconnecting
 * 500 ms after its stream ends (Envoy's xDS retry starts at 500 ms) to whichever weftd runs then.
 */
class ReconnectingProxy {
  connects = 0;
  private current: WellBehavedProxy | undefined;
  private currentIp: string | undefined;
  private readonly timer: NodeJS.Timeout;
  private checking = false;

  constructor(kubeConfig: KubeConfig) {
    const core = kubeConfig.makeApiClient(CoreV1Api);
    this.timer = setInterval(() => {
      if (this.checking) return;
      this.checking = true;
      void this.check(core).finally(() => (this.checking = false));
    }, 500);
  }

  clusters(): Set<string> {
    return this.current?.clusters ?? new Set();
  }

  private async check(core: CoreV1Api): Promise<void> {
    if (this.current && this.current.end === undefined) return;
    this.current?.close();
    this.current = undefined;
    const pods = await core
      .listNamespacedPod({ namespace: meshNamespace, labelSelector: `${labels.name}=weftd` })
      .then((list) => list.items.filter((pod) => pod.status?.phase === 'Running' && pod.status.podIP && !pod.metadata?.deletionTimestamp))
      .catch(() => []);
    const ip = pods.map((pod) => pod.status?.podIP as string).find((candidate) => candidate !== this.currentIp) ?? pods[0]?.status?.podIP;
    if (!ip) return;
    this.currentIp = ip;
    this.connects++;
    this.current = new WellBehavedProxy(
      { weftdIp: ip } as ChaosTarget,
      15010,
      undefined,
      sidecarNode('crash-proxy', probeNamespace, '10.253.0.1', { app: 'crash-proxy' }),
    );
  }

  stop(): void {
    clearInterval(this.timer);
    this.current?.close();
  }
}

/** The rows of the chaos table for the crash part. */
export function crashRows(f: CrashFigures, requestedKills: number): ChaosRow[] {
  const count = (n: number) => n.toLocaleString('en-US');
  const restarts = f.runs.filter((r) => r.apiRestart);
  const restartOf = (c: string) => restarts.filter((r) => r.apiRestart?.component === c).length;
  const converged = f.runs.filter((r) => r.converged);
  const orphans = f.runs.flatMap((r) => r.orphans.map((o) => `cycle ${r.cycle} ${r.phase}: ${o}`));
  const lost = f.runs.flatMap((r) => r.lostCa.map((o) => `cycle ${r.cycle} ${r.phase}: ${o}`));
  const maxConvergence = Math.max(0, ...f.runs.map((r) => r.convergenceMs));
  const probed = f.runs.filter((r) => r.converged && r.phase !== 'uninstall');
  const stale = probed.filter((r) => r.proxySyncMs === undefined);
  const maxSync = Math.max(0, ...probed.map((r) => r.proxySyncMs ?? 0));
  const kills = f.kills.operator + f.kills.weftd;
  return [
    {
      area: 'crash',
      figure: 'SIGKILLs during install/upgrade/scale/rotation/uninstall (operator + weftd); apiserver, etcd restarts',
      value: `${count(kills)} (${f.kills.operator} + ${f.kills.weftd}); ${restartOf('kube-apiserver')}, ${restartOf('etcd')}`,
      rule: `>= ${count(requestedKills)}`,
      held: kills >= requestedKills,
    },
    {
      area: 'crash',
      figure: 'phases that converged to the chart, Ready for their generation',
      value: `${converged.length} of ${f.runs.length}`,
      rule: 'all',
      held: converged.length === f.runs.length && f.runs.length > 0,
      evidence: f.runs
        .filter((r) => !r.converged)
        .map(
          (r) =>
            `cycle ${r.cycle} ${r.phase} (killed ${r.victim ?? 'nothing'} at ${r.killAtMs ?? '-'} ms): ${r.problems.slice(0, 3).join('; ')}`,
        ),
    },
    {
      area: 'crash',
      figure: 'orphaned objects (after uninstall, or labelled and not in the chart)',
      value: count(orphans.length),
      rule: '0',
      held: orphans.length === 0,
      evidence: orphans,
    },
    {
      area: 'crash',
      figure: 'CA material lost or regenerated without a rotation',
      value: count(lost.length),
      rule: '0',
      held: lost.length === 0,
      evidence: lost,
    },
    {
      area: 'crash',
      figure: 'convergence time after a phase change, max',
      value: `${count(maxConvergence)} ms`,
      rule: `<= ${count(f.convergenceBudgetMs)} ms`,
      held: maxConvergence <= f.convergenceBudgetMs,
    },
    {
      area: 'crash',
      figure: `a reconnecting proxy holds a Service created after each phase (${count(f.proxyReconnects)} connects), max`,
      value: `${count(maxSync)} ms; ${stale.length} stale`,
      rule: `each <= ${count(f.proxySyncBudgetMs)} ms`,
      held: stale.length === 0 && probed.length > 0,
      evidence: stale.map((r) => `cycle ${r.cycle} ${r.phase}: probe-${r.cycle}-${r.phase} not in CDS within ${f.proxySyncBudgetMs} ms`),
    },
    {
      area: 'crash',
      figure: 'container restarts by the kubelet back-off / exits not caused by a SIGKILL (e.g. on an API restart)',
      value: `${count(f.containerRestarts)} / ${count(f.unprovokedExits)}`,
      rule: 'reported',
      held: true,
    },
    {
      area: 'crash',
      figure: 'leader failover: leading operator SIGKILLed and kept down, until the other holds the Lease',
      value: f.failoversMs.length > 0 ? f.failoversMs.map((ms) => `${count(ms)} ms`).join(', ') : 'not measured',
      rule: `each <= ${count(f.failoverBoundMs)} ms (lease + retry)`,
      held: f.failoversMs.length > 0 && f.failoversMs.every((ms) => ms <= f.failoverBoundMs),
    },
  ];
}
