// Rotation without downtime (#19 item 6), against weftd on the real local cluster.
// The installation is moved to a plugged-in CA (Istio's `cacerts` Secret: root A and an
// intermediate of A). Two proxyless gRPC workloads then call each other with Istio mTLS
// (a PeerAuthentication STRICT in their namespace) without pause, one call after another
// on a kept channel and on a new connection each time (a new TLS handshake, so that
// every change of certificate or trust bundle is really put to the test):
//   (a) their certificates have a short lifetime and are renewed at half of it, as
//       pilot-agent does (SECRET_TTL, SECRET_GRACE_PERIOD_RATIO 0.5);
//   (b) the operator rotates the root as Istio's plugin-CA docs say: cacerts replaced by
//       root-cert.pem with roots A and B and an intermediate of B, and once every
//       workload trusts B and holds a certificate of B, root-cert.pem with B alone.
// Each workload's agent is done here as pilot-agent does it for proxyless gRPC: a key
// and CSR per renewal, CreateCertificate on 15012 with a token bound to the pod (TLS
// checked against the namespace's istio-ca-root-cert), then cert-chain.pem, key.pem and
// root-cert.pem (the response's last element, the CA's whole root bundle) written where
// the bootstrap's `default` file_watcher provider reads them.
// This part moves the installation to a plugged CA and leaves it there: run it last.
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { CoreV1Api, CustomObjectsApi, type V1ConfigMap, type V1Pod } from '@kubernetes/client-node';
import { meshInstallationApi } from '../../api/mesh-installation.js';
import { repositoryFile } from '../../lib/repository-file.js';
import { buildCsr } from '../fixtures/csr.js';
import { cacertsFiles, testIntermediate, testRoot, type TestCa } from '../fixtures/plugged-ca.js';
import { echoService } from '../workloads/echo.js';
import { scrapeWeftdMetrics, weftdServiceName, type ChaosTarget } from './chaos-target.js';
import type { ChaosRow } from './chaos-table.js';

export interface RotationChaosOptions {
  /**
   * Lifetime the client asks for (seconds, pilot-agent's SECRET_TTL); the server asks for
   * twice as long, so that one workload holds a certificate of the old root well after the
   * other has moved on. Each renews at half its lifetime.
   */
  certTtlSeconds: number;
  /** How long (ms) calls run with renewals alone, before the root rotation. */
  renewalPhaseMs: number;
  /** How long (ms) calls go on after the old root is gone. */
  tailMs: number;
  /**
   * 'overlap': root-cert.pem holds A and B, then B (Istio's procedure). 'swap': A is
   * replaced by B at once, with no overlap: what the chaos must catch if Weft took it.
   */
  rotation?: 'overlap' | 'swap';
  progress: (line: string) => void;
}

export interface RotationFigures {
  calls: { kept: number; fresh: number };
  failed: number;
  /** Replies that did not carry the client's SPIFFE ID: the call went without mTLS. */
  withoutMtls: number;
  failures: string[];
  renewals: number;
  /** Renewals that came after the certificate they replaced had expired. */
  lateRenewals: number;
  renewalFailures: string[];
  /** From the cacerts update with root B to every ConfigMap and workload trusting B and holding a certificate of B (ms). */
  newRootEverywhereMs: number | undefined;
  /** When the operator took root A out of cacerts: the first workload certificate from intermediate B (ms after the update). */
  oldRootRemovedAfterMs: number | undefined;
  /** From root A's removal from cacerts to root A gone from every ConfigMap and workload (ms). */
  oldRootGoneMs: number | undefined;
  /** weftd's pod and process start time before and after: a reload, not a restart. */
  weftdRestarted: boolean;
  /** What timed out, if a phase never completed. */
  stuck: string[];
}

const systemNamespace = 'weft-system';
const namespace = 'rotation';
const secretName = 'cacerts';
const port = 9443;
const EchoClient = grpc.makeGenericClientConstructor(echoService, 'Echo');
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));
type GrpcXds = typeof import('@grpc/grpc-js-xds');
const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

const fingerprints = (bundle: string): Set<string> =>
  new Set(
    (bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []).map(
      (pem) => new X509Certificate(pem).fingerprint256,
    ),
  );
const fp = (ca: TestCa) => new X509Certificate(ca.certPem).fingerprint256;
const issuedBy = (leafPem: string, ca: TestCa): boolean => {
  const [leaf, issuer] = [new X509Certificate(leafPem), new X509Certificate(ca.certPem)];
  return leaf.checkIssued(issuer) && leaf.verify(issuer.publicKey);
};

/** Polls `probe` every 200 ms until it returns true; false at the deadline. */
async function until(probe: () => Promise<boolean> | boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if (await probe()) return true;
    } catch {
      // Not yet: the API server or a file is mid-change.
    }
    await sleep(200);
  }
  return false;
}

/** One workload: a pod the chaos serves itself, and its agent's files. */
interface Workload {
  name: string;
  serviceAccount: string;
  ttlSeconds: number;
  pod: V1Pod;
  ip: string;
  dir: string;
  /** notAfter (epoch ms) of the certificate on disk. */
  notAfter: number;
  /** The leaf on disk, PEM. */
  leafPem: string;
  renewals: number;
  late: number;
  stopped: boolean;
  timer?: NodeJS.Timeout;
}

export async function rotationChaos(target: ChaosTarget, options: RotationChaosOptions): Promise<RotationFigures> {
  const kc = target.kubeConfig;
  const core = kc.makeApiClient(CoreV1Api);
  const stuck: string[] = [];
  const ttlMs = options.certTtlSeconds * 1000;

  // 1. The installation on a plugged CA: root A, intermediate A.
  const rootA = testRoot('weft-chaos-root-a');
  const caA = testIntermediate(rootA, 'weft-chaos-intermediate-a');
  options.progress('rotation: moving the installation to a plugged cacerts Secret (root A)');
  await putCacerts(core, cacertsFiles(caA, rootA, [rootA]));
  const custom = kc.makeApiClient(CustomObjectsApi);
  await custom.patchClusterCustomObject({
    group: meshInstallationApi.group,
    version: meshInstallationApi.version,
    plural: meshInstallationApi.plural,
    name: 'default',
    body: [{ op: 'add', path: '/spec/ca', value: { mode: 'Plugged', pluggedSecretName: secretName, workloadCertTTL: '24h' } }],
  });
  const weftd = async (): Promise<V1Pod | undefined> => {
    const pods = await core.listNamespacedPod({ namespace: systemNamespace, labelSelector: 'app.kubernetes.io/name=weftd' });
    const live = pods.items.filter((p) => !p.metadata?.deletionTimestamp);
    const plugged = live.filter(
      (p) =>
        p.status?.phase === 'Running' &&
        p.status.podIP &&
        p.spec?.containers.some((c) => c.env?.some((e) => e.name === 'WEFT_CA_MODE' && e.value === 'Plugged')),
    );
    // Only once the SelfSigned replica is gone: two CAs would take turns at the ConfigMaps.
    return live.length === plugged.length && plugged.length === 1 ? plugged[0] : undefined;
  };
  const bundleHolds = async (ns: string, want: Set<string>, not: Set<string> = new Set()) => {
    const cm = await core.readNamespacedConfigMap({ name: 'istio-ca-root-cert', namespace: ns });
    const have = fingerprints(cm.data?.['root-cert.pem'] ?? '');
    return [...want].every((f) => have.has(f)) && [...not].every((f) => !have.has(f));
  };
  let weftdPod: V1Pod | undefined;
  const pluggedUp = await until(async () => {
    weftdPod = await weftd();
    if (!weftdPod || !(await bundleHolds(systemNamespace, new Set([fp(rootA)])))) return false;
    // Ready: among the rest, the webhooks' caBundle verifies its new serving certificate.
    const ready = await fetch(`http://${weftdPod.status?.podIP}:15014/ready`, { signal: AbortSignal.timeout(2_000) });
    return ready.ok;
  }, 120_000);
  if (!pluggedUp || !weftdPod) throw new Error('rotation chaos: weftd did not come up on the plugged CA within 120 s');
  const weftdIp = weftdPod.status?.podIP as string;
  const startTime = async () => (await scrapeWeftdMetrics(weftdIp)).get('process_start_time_seconds');
  const weftdBefore = { uid: weftdPod.metadata?.uid, started: await startTime() };
  options.progress(`rotation: weftd ${weftdPod.metadata?.name} signs with intermediate A`);

  // 2. Two workloads under STRICT mTLS.
  await core.createNamespace({ body: { metadata: { name: namespace } } }).catch(ignoreConflict);
  for (const sa of ['echo', 'client'])
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: sa } } }).catch(ignoreConflict);
  await core
    .createNamespacedService({
      namespace,
      body: { metadata: { name: 'echo' }, spec: { selector: { app: 'echo' }, ports: [{ name: 'grpc', port, targetPort: port }] } },
    })
    .catch(ignoreConflict);
  await custom
    .createNamespacedCustomObject({
      group: 'security.istio.io',
      version: 'v1',
      namespace,
      plural: 'peerauthentications',
      body: {
        apiVersion: 'security.istio.io/v1',
        kind: 'PeerAuthentication',
        metadata: { name: 'default' },
        spec: { mtls: { mode: 'STRICT' } },
      },
    })
    .catch(ignoreConflict);
  const workDir = join(target.cluster.workDir, 'rotation-chaos', String(Date.now()));
  const workloads: Workload[] = [];
  for (const [name, serviceAccount, ttlSeconds] of [
    ['echo', 'echo', 2 * options.certTtlSeconds],
    ['client', 'client', options.certTtlSeconds],
  ] as const) {
    // An image no process runner claims: the chaos serves the pod's IP itself.
    await core
      .createNamespacedPod({
        namespace,
        body: {
          metadata: { name, labels: { app: name } },
          spec: { serviceAccountName: serviceAccount, containers: [{ name: 'app', image: 'registry.example/rotation-echo:1' }] },
        },
      })
      .catch(ignoreConflict);
    let pod: V1Pod | undefined;
    if (!(await until(async () => Boolean((pod = await core.readNamespacedPod({ name, namespace })).status?.podIP), 60_000)) || !pod)
      throw new Error(`rotation chaos: pod ${namespace}/${name} got no IP`);
    const dir = join(workDir, name);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    workloads.push({
      name,
      serviceAccount,
      ttlSeconds,
      pod,
      ip: pod.status?.podIP as string,
      dir,
      notAfter: 0,
      leafPem: '',
      renewals: 0,
      late: 0,
      stopped: false,
    });
  }

  // 3. Agents: the first certificate, then renewals at half the lifetime.
  const renewalFailures: string[] = [];
  const agent = new Agent(kc, weftdIp);
  const renew = async (w: Workload): Promise<void> => {
    if (w.stopped) return;
    try {
      const issued = await agent.issue(w);
      if (w.notAfter > 0) {
        w.renewals++;
        if (Date.now() >= w.notAfter) w.late++;
      }
      w.notAfter = issued.notAfter;
      w.leafPem = issued.leafPem;
      const lifetime = issued.notAfter - issued.issuedAt;
      // Pods renew at different moments: the second one's first renewal comes a quarter lifetime earlier.
      const stagger = w.renewals === 0 ? workloads.indexOf(w) * 0.25 : 0;
      w.timer = setTimeout(() => void renew(w), lifetime * (0.5 - stagger));
    } catch (error) {
      if (renewalFailures.length < 20) renewalFailures.push(`${w.name}: ${message(error)}`);
      // As pilot-agent: retried with backoff while the certificate on disk lasts.
      w.timer = setTimeout(() => void renew(w), 500);
    }
  };
  for (const w of workloads) {
    await renew(w);
    if (!w.leafPem) throw new Error(`rotation chaos: no first certificate for ${w.name}: ${renewalFailures.at(-1)}`);
  }

  // 4. The server and the client: xDS from weftd's 15010, certificates from the files.
  process.env['GRPC_XDS_EXPERIMENTAL_RBAC'] = 'true';
  const grpcXds: GrpcXds = await import('@grpc/grpc-js-xds');
  grpcXds.register();
  const [echo, client] = workloads as [Workload, Workload];
  const bootstrap = (w: Workload) =>
    JSON.stringify({
      xds_servers: [{ server_uri: `${weftdIp}:15010`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
      node: {
        id: `sidecar~${w.ip}~${w.name}.${namespace}~${namespace}.svc.cluster.local`,
        locality: {},
        metadata: { GENERATOR: 'grpc', NAMESPACE: namespace, INSTANCE_IPS: w.ip, LABELS: { app: w.name } },
      },
      server_listener_resource_name_template: 'xds.istio.io/grpc/lds/inbound/%s',
      certificate_providers: {
        default: {
          plugin_name: 'file_watcher',
          config: {
            certificate_file: join(w.dir, 'cert-chain.pem'),
            private_key_file: join(w.dir, 'key.pem'),
            ca_certificate_file: join(w.dir, 'root-cert.pem'),
            // pilot-agent writes 900s for 24h certificates; these live seconds.
            refresh_interval: '1s',
          },
        },
      },
    });
  const clientSpiffeId = `spiffe://cluster.local/ns/${namespace}/sa/client`;
  const server = new grpcXds.XdsServer({ 'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config': bootstrap(echo) });
  server.addService(echoService, {
    Echo: (call: grpc.ServerUnaryCall<{ message: string }, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      const san = call.getAuthContext().sslPeerCertificate?.subjectaltname ?? '';
      const peer = /URI:(spiffe:\/\/[^,\s]+)/.exec(san)?.[1];
      callback(null, { pod: 'echo', message: call.request.message, ...(peer ? { peer } : {}) });
    },
  });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`${echo.ip}:${port}`, new grpcXds.XdsServerCredentials(grpc.ServerCredentials.createInsecure()), (e) =>
      e ? reject(e) : resolve(),
    ),
  );
  const channelOptions = { 'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config': bootstrap(client) };
  const newClient = (fresh: boolean) =>
    new EchoClient(
      `xds:///echo.${namespace}.svc.cluster.local:${port}`,
      new grpcXds.XdsChannelCredentials(grpc.credentials.createInsecure()),
      {
        ...channelOptions,
        // Its own subchannels: a new connection, a new TLS handshake.
        ...(fresh ? { 'grpc.use_local_subchannel_pool': 1 } : {}),
      },
    );
  const call = (c: grpc.Client) =>
    new Promise<{ peer?: string }>((resolve, reject) =>
      (c as unknown as Record<string, (r: object, o: object, cb: (e: grpc.ServiceError | null, v: { peer?: string }) => void) => void>)[
        'Echo'
      ]?.({ message: 'rotate' }, { deadline: Date.now() + 5_000 }, (e, v) => (e ? reject(e) : resolve(v))),
    );

  const kept = newClient(false);
  // Warm-up, not counted: until the STRICT listener and the client's mTLS cluster have arrived.
  const warm = await until(async () => (await call(kept)).peer === clientSpiffeId, 60_000);
  if (!warm) stuck.push('no mTLS call succeeded within 60 s of the workloads starting');

  const figures = { kept: 0, fresh: 0, failed: 0, withoutMtls: 0, failures: [] as string[] };
  let running = true;
  const record = async (kind: 'kept' | 'fresh', c: grpc.Client) => {
    figures[kind]++;
    try {
      const reply = await call(c);
      if (reply.peer !== clientSpiffeId) {
        figures.withoutMtls++;
        if (figures.failures.length < 10) figures.failures.push(`${kind}: reply without the client's SPIFFE ID (${reply.peer ?? 'none'})`);
      }
    } catch (error) {
      figures.failed++;
      if (figures.failures.length < 10) figures.failures.push(`${kind} at ${new Date().toISOString()}: ${message(error)}`);
    }
  };
  const loops = [
    (async () => {
      while (running) {
        await record('kept', kept);
        await sleep(20);
      }
    })(),
    (async () => {
      while (running) {
        const c = newClient(true);
        await record('fresh', c);
        c.close();
        await sleep(100);
      }
    })(),
  ];

  let newRootEverywhereMs: number | undefined;
  let oldRootGoneMs: number | undefined;
  let oldRootRemovedAfterMs: number | undefined;
  try {
    // (a) renewals alone.
    options.progress(`rotation: calls with ${options.certTtlSeconds} s certificates for ${Math.round(options.renewalPhaseMs / 1000)} s`);
    await sleep(options.renewalPhaseMs);

    // (b) the root rotation.
    const rootB = testRoot('weft-chaos-root-b');
    const caB = testIntermediate(rootB, 'weft-chaos-intermediate-b');
    const bundleNamespaces = async () =>
      (await core.listConfigMapForAllNamespaces({ fieldSelector: 'metadata.name=istio-ca-root-cert' })).items as V1ConfigMap[];
    const everywhere = async (want: Set<string>, not: Set<string>, signedBy?: TestCa) => {
      for (const cm of await bundleNamespaces()) {
        const have = fingerprints(cm.data?.['root-cert.pem'] ?? '');
        if (![...want].every((f) => have.has(f)) || [...not].some((f) => have.has(f))) return false;
      }
      for (const w of workloads) {
        const have = fingerprints(readFileSync(join(w.dir, 'root-cert.pem'), 'utf8'));
        if (![...want].every((f) => have.has(f)) || [...not].some((f) => have.has(f))) return false;
        if (signedBy && !issuedBy(w.leafPem, signedBy)) return false;
      }
      return true;
    };
    const budget = 4 * ttlMs + 60_000;
    if (options.rotation === 'swap') {
      options.progress('rotation: cacerts swapped from root A to root B with no overlap');
      const t0 = Date.now();
      await putCacerts(core, cacertsFiles(caB, rootB, [rootB]));
      if (await until(() => everywhere(new Set([fp(rootB)]), new Set([fp(rootA)]), caB), budget)) newRootEverywhereMs = Date.now() - t0;
      else stuck.push(`root B did not replace root A everywhere within ${budget / 1000} s`);
      oldRootGoneMs = newRootEverywhereMs;
      oldRootRemovedAfterMs = 0;
    } else {
      options.progress('rotation: cacerts with roots A and B, signed by intermediate B');
      const t0 = Date.now();
      await putCacerts(core, cacertsFiles(caB, rootB, [rootA, rootB]));
      // The operator takes root A out as soon as weftd signs with intermediate B, before every workload has
      // renewed: certificates under A still live, and Weft must keep A trusted until they expire.
      if (await until(() => workloads.some((w) => issuedBy(w.leafPem, caB)), budget)) oldRootRemovedAfterMs = Date.now() - t0;
      else stuck.push(`no workload got a certificate from intermediate B within ${budget / 1000} s`);
      options.progress(`rotation: a first certificate from intermediate B after ${oldRootRemovedAfterMs ?? '-'} ms; removing root A`);
      const t1 = Date.now();
      await putCacerts(core, cacertsFiles(caB, rootB, [rootB]));
      if (await until(() => everywhere(new Set([fp(rootB)]), new Set(), caB), budget)) newRootEverywhereMs = Date.now() - t0;
      else stuck.push(`root B was not trusted everywhere, with every workload on intermediate B, within ${budget / 1000} s`);
      if (await until(() => everywhere(new Set([fp(rootB)]), new Set([fp(rootA)])), budget)) oldRootGoneMs = Date.now() - t1;
      else stuck.push(`root A did not leave every ConfigMap and workload within ${budget / 1000} s`);
    }
    options.progress(`rotation: root A gone after ${oldRootGoneMs ?? '-'} ms; calls go on for ${Math.round(options.tailMs / 1000)} s`);
    await sleep(options.tailMs);
  } finally {
    running = false;
    await Promise.all(loops);
    for (const w of workloads) {
      w.stopped = true;
      clearTimeout(w.timer);
    }
    kept.close();
    server.forceShutdown();
    agent.close();
  }
  const after = await weftd();
  const weftdRestarted = after?.metadata?.uid !== weftdBefore.uid || (await startTime()) !== weftdBefore.started;
  return {
    calls: { kept: figures.kept, fresh: figures.fresh },
    failed: figures.failed,
    withoutMtls: figures.withoutMtls,
    failures: figures.failures,
    renewals: workloads.reduce((sum, w) => sum + w.renewals, 0),
    lateRenewals: workloads.reduce((sum, w) => sum + w.late, 0),
    renewalFailures,
    newRootEverywhereMs,
    oldRootRemovedAfterMs,
    oldRootGoneMs,
    weftdRestarted,
    stuck,
  };
}

export interface RotationBudgets {
  /** Calls that must have been made, kept and fresh together. */
  minimumCalls: number;
  /** Renewals that must have happened (all workloads together). */
  minimumRenewals: number;
  /** Most time (ms) a root change may take to reach every ConfigMap and workload. */
  propagationMs: number;
}

export function rotationRows(f: RotationFigures, budgets: RotationBudgets): ChaosRow[] {
  const calls = f.calls.kept + f.calls.fresh;
  const ms = (value: number | undefined) => (value === undefined ? 'never' : `${(value / 1000).toFixed(1)} s`);
  return [
    {
      area: 'rotation',
      figure: `mTLS calls during renewals and a root rotation (${f.calls.kept} kept channel, ${f.calls.fresh} new connections)`,
      value: String(calls),
      rule: `>= ${budgets.minimumCalls}`,
      held: calls >= budgets.minimumCalls && f.stuck.length === 0,
      evidence: f.stuck,
    },
    {
      area: 'rotation',
      figure: 'failed calls, and replies without mTLS',
      value: `${f.failed}, ${f.withoutMtls}`,
      rule: '0, 0',
      held: f.failed === 0 && f.withoutMtls === 0,
      evidence: f.failures,
    },
    {
      area: 'rotation',
      figure: 'workload certificate renewals / after expiry',
      value: `${f.renewals} / ${f.lateRenewals}`,
      rule: `>= ${budgets.minimumRenewals} / 0`,
      held: f.renewals >= budgets.minimumRenewals && f.lateRenewals === 0,
      evidence: f.renewalFailures,
    },
    {
      area: 'rotation',
      figure: `root B trusted everywhere, workloads on its intermediate / root A gone everywhere (removed from cacerts after ${ms(f.oldRootRemovedAfterMs)})`,
      value: `${ms(f.newRootEverywhereMs)} / ${ms(f.oldRootGoneMs)}`,
      rule: `each <= ${ms(budgets.propagationMs)}`,
      held:
        f.newRootEverywhereMs !== undefined &&
        f.oldRootGoneMs !== undefined &&
        f.newRootEverywhereMs <= budgets.propagationMs &&
        f.oldRootGoneMs <= budgets.propagationMs,
    },
    {
      area: 'rotation',
      figure: 'weftd restarted to take the new cacerts',
      value: f.weftdRestarted ? 'yes' : 'no',
      rule: 'no',
      held: !f.weftdRestarted,
    },
  ];
}

function ignoreConflict(error: unknown): void {
  if ((error as { code?: number }).code === 409) return;
  throw error;
}

async function putCacerts(core: CoreV1Api, files: Record<string, string>): Promise<void> {
  const body = { metadata: { name: secretName, namespace: systemNamespace }, type: 'Opaque', stringData: files };
  await core.createNamespacedSecret({ namespace: systemNamespace, body }).catch(async (error: unknown) => {
    if ((error as { code?: number }).code !== 409) throw error;
    await core.replaceNamespacedSecret({ name: secretName, namespace: systemNamespace, body });
  });
}

/** What pilot-agent does for a proxyless workload's identity, against weftd's CA on 15012. */
class Agent {
  private readonly Client: grpc.ServiceClientConstructor;
  private readonly tokens = new Map<string, { token: string; expires: number }>();

  constructor(
    private readonly kc: ChaosTarget['kubeConfig'],
    private readonly weftdIp: string,
  ) {
    const definition = loadSync(repositoryFile('ca/proto/ca.proto', import.meta.url), { keepCase: true, longs: String, defaults: true });
    this.Client = grpc.makeGenericClientConstructor(
      definition['istio.v1.auth.IstioCertificateService'] as grpc.ServiceDefinition,
      'IstioCertificateService',
    );
  }

  /** One certificate, written to the workload's files; returns its leaf and lifetime. */
  async issue(w: Workload): Promise<{ leafPem: string; issuedAt: number; notAfter: number }> {
    const core = this.kc.makeApiClient(CoreV1Api);
    // The CA's TLS is checked against the namespace's istio-ca-root-cert, as the agent mounts it.
    const trust = (await core.readNamespacedConfigMap({ name: 'istio-ca-root-cert', namespace })).data?.['root-cert.pem'];
    if (!trust) throw new Error(`istio-ca-root-cert in ${namespace} has no root-cert.pem`);
    const spiffeId = `spiffe://cluster.local/ns/${namespace}/sa/${w.serviceAccount}`;
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const csr = buildCsr({ privateKey, publicKey, uris: [spiffeId] });
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${await this.token(w)}`);
    const client = new this.Client(`ipv4:${this.weftdIp}:15012`, grpc.credentials.createSsl(Buffer.from(trust)), {
      'grpc.ssl_target_name_override': weftdServiceName,
      'grpc.default_authority': weftdServiceName,
    });
    const issuedAt = Date.now();
    let chain: string[];
    try {
      chain = await new Promise<string[]>((resolve, reject) =>
        (
          client as unknown as Record<
            string,
            (r: object, m: grpc.Metadata, o: object, cb: (e: grpc.ServiceError | null, v: { cert_chain: string[] }) => void) => void
          >
        )['CreateCertificate']?.({ csr, validity_duration: w.ttlSeconds }, metadata, { deadline: Date.now() + 5_000 }, (e, v) =>
          e ? reject(e) : resolve(v.cert_chain),
        ),
      );
    } finally {
      client.close();
    }
    const leafPem = chain[0] ?? '';
    const leaf = new X509Certificate(leafPem);
    if (!leaf.subjectAltName?.includes(`URI:${spiffeId}`)) throw new Error(`the CA issued ${leaf.subjectAltName}, not ${spiffeId}`);
    // As pilot-agent: the last element is the CA's root bundle (root-cert.pem), the rest the chain.
    const roots = chain.at(-1) ?? '';
    const write = (file: string, content: string, mode: number) => {
      const temporary = join(w.dir, `.${file}.tmp`);
      writeFileSync(temporary, content, { mode });
      renameSync(temporary, join(w.dir, file));
    };
    // Trust first: a peer already on the new root is accepted before our own new certificate is shown.
    write('root-cert.pem', roots, 0o644);
    write('key.pem', privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 0o600);
    write('cert-chain.pem', chain.slice(0, -1).join(''), 0o644);
    return { leafPem, issuedAt, notAfter: Date.parse(leaf.validTo) };
  }

  close(): void {
    this.tokens.clear();
  }

  /** A token of the pod's ServiceAccount for the audience istio-ca, bound to the pod, as the kubelet projects `istio-token`. */
  private async token(w: Workload): Promise<string> {
    const cached = this.tokens.get(w.name);
    if (cached && cached.expires > Date.now() + 60_000) return cached.token;
    const core = this.kc.makeApiClient(CoreV1Api);
    const response = await core.createNamespacedServiceAccountToken({
      name: w.serviceAccount,
      namespace,
      body: {
        spec: {
          audiences: ['istio-ca'],
          expirationSeconds: 3600,
          boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: w.pod.metadata?.name, uid: w.pod.metadata?.uid },
        },
      },
    });
    const token = response.status?.token ?? '';
    this.tokens.set(w.name, { token, expires: Date.now() + 3_600_000 });
    return token;
  }
}
