// `weft control-plane` (weftd): hosts the xDS server, the CA and the sidecar
// injector in one process, as istiod does.
import * as grpc from '@grpc/grpc-js';
import { CoreV1Api, VersionApi, type V1ServiceAccount } from '@kubernetes/client-node';
import type { Command } from 'commander';
import { parse } from 'yaml';
import { ports } from '../api/labels.js';
import { CertificateAuthority } from '../ca/certificate-authority.js';
import { RotatingServerCredentials } from '../ca/serving-credentials.js';
import { certificateServiceDefinition, certificateServiceImplementation } from '../ca/server/certificate-service.js';
import { TokenAuthenticator } from '../ca/server/token-authenticator.js';
import { loadKubeConfig } from '../kube/client.js';
import { startInformer } from '../kube/informer.js';
import { NamespaceLabels } from '../kube/namespace-labels.js';
import { reviewInjection, reviewValidation } from '../webhooks/admission-review.js';
import { CaBundleKeeper } from '../webhooks/ca-bundle-keeper.js';
import { checkWebhookReadiness } from '../webhooks/webhook-readiness.js';
import { probeWebhookCalls, reviewProbeMutation, reviewProbeValidation, webhookProbePaths } from '../webhooks/webhook-probe.js';
import { injectionConfigFromValues, type InjectionConfig } from '../webhooks/injection/injection-config.js';
import { WebhookServer } from '../webhooks/webhook-server.js';
import { ProxyGroups } from '../xds/cache/proxy-groups.js';
import { KubeCredentials } from '../xds/credentials/kube-credentials.js';
import { verifiedCertificateReferences } from '../xds/traffic/gateway-certificate-references.js';
import { SourceByType } from '../xds/server/source-by-type.js';
import { KubeMeshModel } from '../xds/model/kube-mesh-model.js';
import { Propagation } from '../xds/model/propagation.js';
import { ReplicatedPropagation, type PropagationReport } from '../xds/model/propagation-replicas.js';
import { GatewayDeploymentController } from '../xds/model/gateway-deployment-controller.js';
import type { ExtensionProvider, MeshModel } from '../xds/model/mesh-model.js';
import type { ConfigVerdict } from '../xds/traffic/config-analysis.js';
import { dashboardRoutes } from '../dashboard/dashboard-routes.js';
import { meshGraph, propagationOf } from '../dashboard/mesh-graph.js';
import { withPrometheusEdges } from '../dashboard/prometheus-edges.js';
import { PrometheusSource } from '../dashboard/prometheus-source.js';
import { aggregatedDiscoveryService, typeUrls } from '../xds/protos.js';
import { AdsServer } from '../xds/server/ads-server.js';
import { LoadStore } from '../xds/load/load-store.js';
import { LoadReportingServer, loadReportingService } from '../xds/server/load-reporting.js';
import { parseDurationSeconds } from '../lib/duration.js';
import { serveGrpc } from '../lib/grpc-listener.js';
import { componentLogger } from '../lib/logger.js';
import { startMonitoringServer } from '../lib/monitoring.js';
import { ReadinessGate } from '../lib/readiness.js';
import { startTracing } from '../lib/tracing.js';
import { weftVersion } from '../lib/version.js';

interface ControlPlaneOptions {
  monitoringPort: string;
  grpcTlsPort: string;
  grpcPlaintextPort: string;
  webhookPort: string;
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set; weftd runs from the Deployment the operator creates, which sets it`);
  return value;
}

async function runControlPlane(options: ControlPlaneOptions): Promise<void> {
  const log = componentLogger('control-plane');
  // OTLP traces of config changes (watch event to each proxy's ACK), when OTEL_EXPORTER_OTLP_ENDPOINT is set.
  const tracing = startTracing('weftd');
  const config = loadKubeConfig();
  const namespace = required('POD_NAMESPACE');
  const service = process.env['WEFT_SERVICE'] ?? 'weftd';
  const host = process.env['POD_IP'] ?? '0.0.0.0';
  const injectorConfigMapName = process.env['WEFT_INJECTOR_CONFIGMAP'] ?? 'weft-sidecar-injector';
  // Ready means a pod created now is injected: the webhook serves its certificate, the API server holds
  // the caBundle that verifies it, the injector config is loaded and the mesh model is synced (as istiod's
  // readiness waits for its informers). Each missing requirement is named in /ready's body and the log.
  const gate = new ReadinessGate([
    { requirement: 'mesh model', problem: 'informers not started' },
    { requirement: 'injector config', problem: `ConfigMap ${namespace}/${injectorConfigMapName} not loaded yet` },
    { requirement: 'webhook serving certificate', problem: `not yet served on ${options.webhookPort}` },
    { requirement: 'webhook caBundle', problem: 'not yet read back from the API server' },
    { requirement: 'webhook calls', problem: 'not yet probed (waits for the serving certificate and caBundle)' },
    { requirement: 'xDS and CA', problem: `not yet listening on ${options.grpcPlaintextPort} and ${options.grpcTlsPort}` },
  ]);
  let stopping = false;
  let announced = false;
  gate.onChange((report) => {
    if (report.ready && !announced) {
      announced = true;
      log.info(
        {
          version: weftVersion,
          installation: process.env['WEFT_INSTALLATION'],
          grpcTlsPort: Number(options.grpcTlsPort),
          grpcPlaintextPort: Number(options.grpcPlaintextPort),
          webhookPort: Number(options.webhookPort),
        },
        'weftd ready',
      );
    } else if (report.ready) log.info('weftd ready again');
    else if (announced) log.warn({ missing: report.missing }, 'weftd not ready');
    else log.info({ missing: report.missing }, 'weftd starting');
  });
  // xDS: Services and EndpointSlices in, versioned resources out, to every connected proxy.
  const proxyGroups = new ProxyGroups();
  // SDS beside it on the same streams: gateway certificates (credentialName) from Kubernetes Secrets, as istiod's SecretGen.
  // A gateway proxy may also read the kubernetes-gateway:// Secrets its Gateway API listeners verifiably refer to.
  const credentials = new KubeCredentials(config, log.child({ component: 'sds' }), {
    verifiedCertificateReferences: (node) => verifiedCertificateReferences(currentModel(), node),
  });
  const ads = new AdsServer(new SourceByType(proxyGroups, { [typeUrls.secret]: credentials.source }), log.child({ component: 'ads' }));
  // Load reports (LRS) from proxyless clients: live request and error rates per workload and cluster, a minute's window.
  const loads = new LoadStore({ windowMs: 60_000, maxClustersPerStream: 10_000 });
  const lrs = new LoadReportingServer(loads, { intervalSeconds: 10, maxClusters: 10_000, log: log.child({ component: 'lrs' }) });
  const isReady = () => (stopping ? { ready: false, missing: [{ requirement: 'weftd', problem: 'shutting down' }] } : gate.report());
  // The dashboard draws the model the proxies' config comes from (set once the model exists, below).
  let currentModel: () => MeshModel | undefined = () => undefined;
  let currentVerdicts: () => ReadonlyArray<ConfigVerdict> = () => [];
  // Istio's `Reconciled` conditions (set below, once the model's options are known).
  let propagation: ReplicatedPropagation | undefined = undefined;
  // Istio's request metrics in Prometheus, when the MeshInstallation names one (spec.dashboard.prometheus.url): the edges
  // of callers that send no load reports (Envoy sidecars), beside the LRS ones.
  // A bad URL (the CRD's CEL rule refuses one) costs the dashboard its second source, never weftd its start.
  let prometheus: PrometheusSource | undefined;
  try {
    const prometheusUrl = process.env['WEFT_PROMETHEUS_URL'];
    prometheus = prometheusUrl ? new PrometheusSource(prometheusUrl, log.child({ component: 'prometheus' })) : undefined;
    prometheus?.start();
  } catch (error) {
    log.error({ error: (error as Error).message }, 'not querying Prometheus for the dashboard');
  }
  const dashboard = dashboardRoutes({
    // The control plane's own namespace is not part of the picture.
    graph: () => {
      const model = currentModel() ?? { clusterDomain: 'cluster.local', services: [] };
      const graph = meshGraph(model, loads.edges(), ads.status(), {
        hiddenNamespaces: [namespace],
        verdicts: currentVerdicts(),
        // As written to the objects' statuses: on a replica that does not write them, none.
        propagation: propagation ? propagationOf(currentModel(), (kind, ns, name) => propagation?.condition(kind, ns, name)) : [],
      });
      return prometheus ? withPrometheusEdges(graph, model, prometheus.edges()) : graph;
    },
  });
  // Istio's `Reconciled` condition on each Istio object (docs/analysis.md): this weftd's counts for its own proxies.
  const localPropagation = process.env['WEFT_RECONCILED_STATUS'] === 'false' ? undefined : new Propagation();
  const monitoring = await startMonitoringServer(
    host,
    Number(options.monitoringPort),
    isReady,
    {
      '/debug/syncz': () => ads.status(),
      '/debug/config_dump': (query) => ads.configDump(query.get('proxyID') ?? ''),
      '/debug/loadz': () => loads.edges(),
      '/debug/prometheusz': () => prometheus?.status() ?? { configured: false },
      // Read by the replica that sums every replica's counts (xds/model/propagation-replicas.ts).
      '/debug/propagationz': (): PropagationReport => ({ objects: localPropagation?.counts() ?? {} }),
    },
    dashboard,
  );

  const meshConfigMap = await config
    .makeApiClient(CoreV1Api)
    .readNamespacedConfigMap({ name: process.env['WEFT_MESH_CONFIGMAP'] ?? 'weft', namespace });
  const mesh = (parse(meshConfigMap.data?.['mesh'] ?? '{}') ?? {}) as {
    trustDomain?: string;
    outboundTrafficPolicy?: { mode?: 'ALLOW_ANY' | 'REGISTRY_ONLY' };
    weft?: { mtlsMode?: 'STRICT' | 'PERMISSIVE' };
    accessLogFile?: string;
    accessLogEncoding?: 'TEXT' | 'JSON';
    accessLogFormat?: string;
    defaultConfig?: { tracing?: { sampling?: number } };
    extensionProviders?: ExtensionProvider[];
    defaultProviders?: { tracing?: string[]; accessLogging?: string[] };
  };
  const trustDomain = mesh.trustDomain ?? 'cluster.local';
  // With several replicas (weftd's Service's endpoint addresses), each counts only its own proxies: the one with the lowest
  // pod IP sums every replica's /debug/propagationz once a second and writes the condition; the others do not write it.
  propagation =
    localPropagation &&
    new ReplicatedPropagation(localPropagation, {
      self: process.env['POD_IP'],
      replicas: (model) =>
        model.services.find((s) => s.namespace === namespace && s.name === service && !s.hostname)?.endpoints.map((e) => e.address) ?? [],
      port: Number(options.monitoringPort),
      log: log.child({ component: 'propagation' }),
    });
  if (localPropagation) ads.observeSync(localPropagation);
  // The control plane's namespace is the mesh's root namespace (Istio's istio-system).
  const meshModel = new KubeMeshModel(config, proxyGroups, log.child({ component: 'xds-model' }), 'cluster.local', namespace, {
    writeStatus: true,
    trustDomain,
    ...(propagation ? { propagation } : {}),
    meshConfig: {
      ...(mesh.weft?.mtlsMode ? { mtlsMode: mesh.weft.mtlsMode } : {}),
      ...(mesh.outboundTrafficPolicy?.mode ? { outboundTrafficPolicy: mesh.outboundTrafficPolicy.mode } : {}),
      telemetry: {
        ...(mesh.accessLogFile ? { accessLogFile: mesh.accessLogFile } : {}),
        ...(mesh.accessLogEncoding ? { accessLogEncoding: mesh.accessLogEncoding } : {}),
        ...(mesh.accessLogFormat ? { accessLogFormat: mesh.accessLogFormat } : {}),
        ...(mesh.defaultConfig?.tracing?.sampling !== undefined ? { tracingSampling: mesh.defaultConfig.tracing.sampling } : {}),
        ...(mesh.extensionProviders ? { extensionProviders: mesh.extensionProviders } : {}),
        ...(mesh.defaultProviders ? { defaultProviders: mesh.defaultProviders } : {}),
      },
    },
  });
  currentModel = () => meshModel.current();
  currentVerdicts = () => meshModel.verdicts();
  const defaultTtl = parseDurationSeconds(process.env['WEFT_WORKLOAD_CERT_TTL'] ?? '24h');

  const mode = process.env['WEFT_CA_MODE'] === 'Plugged' ? 'Plugged' : 'SelfSigned';
  const pluggedSecretName = process.env['WEFT_CA_SECRET'];
  const installation = process.env['WEFT_INSTALLATION'];
  const ca = await CertificateAuthority.start(
    config,
    { namespace, trustDomain, mode, ...(pluggedSecretName ? { pluggedSecretName } : {}), ...(installation ? { installation } : {}) },
    log.child({ component: 'ca' }),
  );
  // Authentication's existence checks read watches (the pods the mesh model watches, and ServiceAccounts); a miss asks
  // the API server. With reviews reused for 10 s, a caller costs at most one TokenReview (#19: 2,000 proxies at once).
  const serviceAccounts = await startInformer<V1ServiceAccount>(
    config,
    '/api/v1/serviceaccounts',
    () => config.makeApiClient(CoreV1Api).listServiceAccountForAllNamespaces(),
    () => undefined,
    log.child({ component: 'serviceaccounts' }),
  );
  const authenticator = new TokenAuthenticator(config, ['istio-ca'], {
    watched: {
      serviceAccount: (ns, name) => serviceAccounts.get(`${ns}/${name}`),
      pod: (ns, name) => meshModel.pod(ns, name),
    },
  });

  // The readiness checks run from here on, every 200 ms until ready, then every 10 s (a caBundle
  // overwritten or a certificate no longer served makes weftd unready again).
  // Filled in once the webhook server listens and the caBundle keeper runs.
  const admission: { webhooks?: WebhookServer; caBundles?: CaBundleKeeper } = {};
  let lastRepair = 0;
  const probeApi = config.makeApiClient(CoreV1Api);
  const webhookAddress = { host: host === '0.0.0.0' ? '127.0.0.1' : host, port: Number(options.webhookPort) };
  const checkReadiness = async (): Promise<void> => {
    const sync = meshModel.syncStatus();
    gate.set(
      'mesh model',
      sync.synced
        ? undefined
        : sync.pending.length > 0
          ? `informers not synced: ${sync.pending.join(', ')}`
          : 'building the first model from the synced informers',
    );
    const { webhooks, caBundles } = admission;
    if (!webhooks || !caBundles) return;
    let views;
    try {
      views = await caBundles.readBack();
    } catch (error) {
      // The API server briefly unreachable says nothing about the webhook: once met, the requirement stays met.
      if (gate.report().missing.some((m) => m.requirement === 'webhook caBundle'))
        gate.miss('webhook caBundle', `cannot read the webhook configurations: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    const result = await checkWebhookReadiness({
      address: webhookAddress,
      serverName: `${service}.${namespace}.svc`,
      servedChainPem: webhooks.servedChainPem,
      configurations: views,
    });
    gate.set('webhook serving certificate', result.serving);
    gate.set('webhook caBundle', result.caBundle);
    // The API server admits through its own cache of webhook configurations: a dry-run proves it calls weftd now.
    if (result.serving === undefined && result.caBundle === undefined) {
      const probe = await probeWebhookCalls(probeApi, namespace, process.env['POD_NAME'] ?? 'weftd');
      const met = !gate.report().missing.some((m) => m.requirement === 'webhook calls');
      // As for the caBundle: the API server briefly failing a request says nothing about the webhooks.
      if (probe.called) gate.met('webhook calls');
      else if (!(probe.apiError && met)) gate.miss('webhook calls', probe.problem);
    } else gate.miss('webhook calls', 'waits for the serving certificate and caBundle');
    // An apply that failed is otherwise retried only on the configuration's next change.
    if (result.caBundle && Date.now() - lastRepair > 5_000) {
      lastRepair = Date.now();
      await caBundles.repair(views);
    }
  };
  let readinessTimer: NodeJS.Timeout | undefined;
  const readinessLoop = (): void => {
    void checkReadiness()
      .catch((error: unknown) => log.warn({ error: error instanceof Error ? error.message : String(error) }, 'readiness check failed'))
      .finally(() => {
        if (!stopping) readinessTimer = setTimeout(readinessLoop, gate.report().ready ? 10_000 : 200);
      });
  };
  readinessLoop();

  await Promise.all([meshModel.start(), credentials.start()]);
  const server = new grpc.Server();
  // On 15012 proxies authenticate with their ServiceAccount token, as with istiod.
  server.addService(
    aggregatedDiscoveryService(),
    ads.implementation((authorization, signal) => authenticator.authenticate(authorization, signal)),
  );
  server.addService(
    loadReportingService(),
    lrs.implementation((authorization) => authenticator.authenticate(authorization)),
  );
  server.addService(
    certificateServiceDefinition(),
    certificateServiceImplementation({
      authenticate: (authorization) => authenticator.authenticate(authorization),
      signingCa: () => ca.signingCa(),
      // The response ends with every root to trust now, as istiod's; issued chains keep their root distributed while they live.
      trustBundle: () => ca.trustBundle(),
      issued: (chain) => ca.recordIssued(chain),
      trustDomain,
      // Istio's default maximum workload lifetime is 90 days.
      ttl: { defaultSeconds: defaultTtl, maxSeconds: Math.max(defaultTtl, 90 * 86_400) },
      log: log.child({ component: 'ca-server' }),
    }),
  );
  const names = [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`];
  // Issued again whenever the CA changes (cacerts reloaded, a rotation step), as istiod does.
  const servingCredentials = new RotatingServerCredentials(ca.servingCertificate(names));
  // Not bindAsync: the kernel's backlog, several accepting sockets and Istio's HTTP/2 windows, for storms of proxies.
  const acceptFailed = (error: Error) => log.warn({ error: error.message }, 'a gRPC connection could not be accepted');
  const tlsListener = await serveGrpc(server, servingCredentials, host, Number(options.grpcTlsPort), acceptFailed);

  // Sidecar injection: everything the webhook needs is prepared here, never on the request path.
  const core = config.makeApiClient(CoreV1Api);
  const serverVersion = await config.makeApiClient(VersionApi).getCode();
  const nativeSidecars = Number.parseInt(serverVersion.major, 10) > 1 || Number.parseInt(serverVersion.minor, 10) >= 29;
  // Retried until it loads: meanwhile /ready says why (a ConfigMap missing, values that do not parse).
  let injection: InjectionConfig | undefined;
  for (let attempt = 0; !injection; attempt++) {
    try {
      const injectorConfigMap = await core.readNamespacedConfigMap({ name: injectorConfigMapName, namespace });
      injection = injectionConfigFromValues(injectorConfigMap.data?.['values'] ?? '{}', namespace, nativeSidecars);
    } catch (error) {
      const problem = `ConfigMap ${namespace}/${injectorConfigMapName}: ${error instanceof Error ? error.message : String(error)}`;
      gate.miss('injector config', problem);
      if (attempt === 0) log.warn({ error: problem }, 'cannot load the injector config; retrying');
      await new Promise((resolve) => setTimeout(resolve, Math.min(10_000, 500 * 2 ** attempt)));
    }
  }
  const loadedInjection = injection;
  gate.met('injector config');
  // The Gateway API's automated deployment (#17): a ServiceAccount, Deployment and Service per Gateway of a
  // class Weft serves, with the proxy image and CA address sidecars get. Not on weftd's readiness path.
  const gatewayDeployments = new GatewayDeploymentController(
    config,
    {
      image: loadedInjection.proxyImage,
      proxyLogLevel: loadedInjection.proxyLogLevel,
      discoveryAddress: loadedInjection.discoveryAddress,
      trustDomain,
      revision: loadedInjection.revision,
      resources: loadedInjection.proxyResources,
    },
    log.child({ component: 'gateway-deployments' }),
  );
  void gatewayDeployments
    .start()
    .catch((error: unknown) =>
      log.error({ error: error instanceof Error ? error.message : String(error) }, 'gateway deployments not started'),
    );
  const namespaceLabels = new NamespaceLabels(config, log.child({ component: 'namespaces' }));
  await namespaceLabels.start();
  const webhookCertificate = () => ca.servingCertificate(names, 7 * 86_400);
  const webhookServer = new WebhookServer(
    webhookCertificate(),
    {
      '/inject': (body) => reviewInjection(body, (ns) => namespaceLabels.get(ns), loadedInjection),
      '/validate': (body) => reviewValidation(body),
      [webhookProbePaths.mutate]: (body) => reviewProbeMutation(body),
      [webhookProbePaths.validate]: (body) => reviewProbeValidation(body),
    },
    log.child({ component: 'webhook' }),
  );
  await webhookServer.listen(host, Number(options.webhookPort));
  admission.webhooks = webhookServer;
  // Rotated daily, a week before expiry: new connections get the new certificate.
  const rotation = setInterval(() => webhookServer.rotate(webhookCertificate()), 86_400_000);
  rotation.unref();
  const bundleKeeper = new CaBundleKeeper(
    config,
    { mutating: required('WEFT_MUTATING_WEBHOOK'), validating: required('WEFT_VALIDATING_WEBHOOK') },
    ca.trustBundle(),
    log.child({ component: 'ca-bundle' }),
  );
  await bundleKeeper.setBundle(ca.trustBundle());
  bundleKeeper.start();
  admission.caBundles = bundleKeeper;
  // A new signing CA or trust bundle: serving certificates and the webhooks' caBundle follow.
  ca.onChange(() => {
    servingCredentials.rotate(ca.servingCertificate(names));
    webhookServer.rotate(webhookCertificate());
    void bundleKeeper.setBundle(ca.trustBundle());
  });

  // Plaintext xDS on 15010, as istiod serves it (inside the cluster network; the CA is only on TLS).
  const plaintext = new grpc.Server();
  plaintext.addService(aggregatedDiscoveryService(), ads.implementation());
  plaintext.addService(loadReportingService(), lrs.implementation());
  const plaintextListener = await serveGrpc(
    plaintext,
    grpc.ServerCredentials.createInsecure(),
    host,
    Number(options.grpcPlaintextPort),
    acceptFailed,
  );

  gate.met('xDS and CA');
  log.info({ trustDomain, nativeSidecars }, 'weftd serving; ready once the webhook checks pass');

  const stop = (): void => {
    log.info('shutting down');
    stopping = true;
    clearTimeout(readinessTimer);
    ca.stop();
    bundleKeeper.stop();
    prometheus?.stop();
    namespaceLabels.close();
    clearInterval(rotation);
    void webhookServer.close();
    void meshModel.stop();
    void serviceAccounts.stop();
    void gatewayDeployments.stop();
    void credentials.stop();
    ads.close();
    plaintextListener.close();
    tlsListener.close();
    plaintext.forceShutdown();
    server.tryShutdown(() => monitoring.close(() => void tracing.shutdown().finally(() => process.exit(0))));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

export function registerControlPlaneCommand(program: Command): void {
  program
    .command('control-plane')
    .description('run weftd: ADS (15010, and 15012 with TLS), the CA (15012), the sidecar injector (15017)')
    .option('--monitoring-port <port>', 'port for /metrics, /healthz and /ready', String(ports.monitoring))
    .option('--grpc-tls-port <port>', 'port for the CA (and xDS) over TLS', String(ports.xdsTls))
    .option('--grpc-plaintext-port <port>', 'port for xDS without TLS', String(ports.xdsPlaintext))
    .option('--webhook-port <port>', 'port for the admission webhooks (HTTPS)', String(ports.webhook))
    .action(async (options: ControlPlaneOptions) => runControlPlane(options));
}
