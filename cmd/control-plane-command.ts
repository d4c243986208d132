// `weft control-plane` (weftd): hosts the xDS server, the CA and the sidecar
// injector in one process, as istiod does.
import * as grpc from '@grpc/grpc-js';
import { CoreV1Api, VersionApi } from '@kubernetes/client-node';
import type { Command } from 'commander';
import { parse } from 'yaml';
import { ports } from '../api/labels.js';
import { CertificateAuthority } from '../ca/certificate-authority.js';
import { certificateServiceDefinition, certificateServiceImplementation } from '../ca/server/certificate-service.js';
import { TokenAuthenticator } from '../ca/server/token-authenticator.js';
import { loadKubeConfig } from '../kube/client.js';
import { NamespaceLabels } from '../kube/namespace-labels.js';
import { reviewInjection, reviewValidation } from '../webhooks/admission-review.js';
import { CaBundleKeeper } from '../webhooks/ca-bundle-keeper.js';
import { injectionConfigFromValues, type InjectionConfig } from '../webhooks/injection/injection-config.js';
import { WebhookServer } from '../webhooks/webhook-server.js';
import { ProxyGroups } from '../xds/cache/proxy-groups.js';
import { KubeMeshModel } from '../xds/model/kube-mesh-model.js';
import type { ExtensionProvider } from '../xds/model/mesh-model.js';
import { aggregatedDiscoveryService } from '../xds/protos.js';
import { AdsServer } from '../xds/server/ads-server.js';
import { parseDurationSeconds } from '../lib/duration.js';
import { componentLogger } from '../lib/logger.js';
import { startMonitoringServer } from '../lib/monitoring.js';
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
  let ready = false;
  // xDS: Services and EndpointSlices in, versioned resources out, to every connected proxy.
  const proxyGroups = new ProxyGroups();
  const ads = new AdsServer(proxyGroups, log.child({ component: 'ads' }));
  const monitoring = await startMonitoringServer(host, Number(options.monitoringPort), () => ready, {
    '/debug/syncz': () => ads.status(),
    '/debug/config_dump': (query) => ads.configDump(query.get('proxyID') ?? ''),
  });

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
  // The control plane's namespace is the mesh's root namespace (Istio's istio-system).
  const meshModel = new KubeMeshModel(config, proxyGroups, log.child({ component: 'xds-model' }), 'cluster.local', namespace, {
    writeStatus: true,
    trustDomain,
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
  const defaultTtl = parseDurationSeconds(process.env['WEFT_WORKLOAD_CERT_TTL'] ?? '24h');

  const mode = process.env['WEFT_CA_MODE'] === 'Plugged' ? 'Plugged' : 'SelfSigned';
  const pluggedSecretName = process.env['WEFT_CA_SECRET'];
  const installation = process.env['WEFT_INSTALLATION'];
  const ca = await CertificateAuthority.start(
    config,
    { namespace, trustDomain, mode, ...(pluggedSecretName ? { pluggedSecretName } : {}), ...(installation ? { installation } : {}) },
    log.child({ component: 'ca' }),
  );
  const authenticator = new TokenAuthenticator(config, ['istio-ca']);

  await meshModel.start();
  const server = new grpc.Server();
  // On 15012 proxies authenticate with their ServiceAccount token, as with istiod.
  server.addService(
    aggregatedDiscoveryService(),
    ads.implementation((authorization) => authenticator.authenticate(authorization)),
  );
  server.addService(
    certificateServiceDefinition(),
    certificateServiceImplementation({
      authenticate: (authorization) => authenticator.authenticate(authorization),
      signingCa: () => ca.signingCa(),
      trustDomain,
      // Istio's default maximum workload lifetime is 90 days.
      ttl: { defaultSeconds: defaultTtl, maxSeconds: Math.max(defaultTtl, 90 * 86_400) },
      log: log.child({ component: 'ca-server' }),
    }),
  );
  const names = [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`];
  const serving = ca.servingCertificate(names);
  await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      `${host}:${options.grpcTlsPort}`,
      grpc.ServerCredentials.createSsl(null, [
        { cert_chain: Buffer.from(serving.certChainPem), private_key: Buffer.from(serving.privateKeyPem) },
      ]),
      (error, port) => (error ? reject(error) : resolve(port)),
    ),
  );

  // Sidecar injection: everything the webhook needs is prepared here, never on the request path.
  const core = config.makeApiClient(CoreV1Api);
  const injectorConfigMap = await core.readNamespacedConfigMap({
    name: process.env['WEFT_INJECTOR_CONFIGMAP'] ?? 'weft-sidecar-injector',
    namespace,
  });
  const serverVersion = await config.makeApiClient(VersionApi).getCode();
  const nativeSidecars = Number.parseInt(serverVersion.major, 10) > 1 || Number.parseInt(serverVersion.minor, 10) >= 29;
  const injection: InjectionConfig = injectionConfigFromValues(injectorConfigMap.data?.['values'] ?? '{}', namespace, nativeSidecars);
  const namespaceLabels = new NamespaceLabels(config, log.child({ component: 'namespaces' }));
  await namespaceLabels.start();
  const webhookCertificate = () => ca.servingCertificate(names, 7 * 86_400);
  const webhooks = new WebhookServer(
    webhookCertificate(),
    {
      '/inject': (body) => reviewInjection(body, (ns) => namespaceLabels.get(ns), injection),
      '/validate': (body) => reviewValidation(body),
    },
    log.child({ component: 'webhook' }),
  );
  await webhooks.listen(host, Number(options.webhookPort));
  // Rotated daily, a week before expiry: new connections get the new certificate.
  const rotation = setInterval(() => webhooks.rotate(webhookCertificate()), 86_400_000);
  rotation.unref();
  const caBundles = new CaBundleKeeper(
    config,
    { mutating: required('WEFT_MUTATING_WEBHOOK'), validating: required('WEFT_VALIDATING_WEBHOOK') },
    ca.trustBundle(),
    log.child({ component: 'ca-bundle' }),
  );
  await caBundles.setBundle(ca.trustBundle());
  caBundles.start();

  // Plaintext xDS on 15010, as istiod serves it (inside the cluster network; the CA is only on TLS).
  const plaintext = new grpc.Server();
  plaintext.addService(aggregatedDiscoveryService(), ads.implementation());
  await new Promise<number>((resolve, reject) =>
    plaintext.bindAsync(`${host}:${options.grpcPlaintextPort}`, grpc.ServerCredentials.createInsecure(), (error, port) =>
      error ? reject(error) : resolve(port),
    ),
  );

  ready = true;
  log.info(
    {
      version: weftVersion,
      installation: process.env['WEFT_INSTALLATION'],
      trustDomain,
      grpcTlsPort: Number(options.grpcTlsPort),
      grpcPlaintextPort: Number(options.grpcPlaintextPort),
      webhookPort: Number(options.webhookPort),
      nativeSidecars,
    },
    'weftd ready',
  );

  const stop = (): void => {
    log.info('shutting down');
    ready = false;
    ca.stop();
    caBundles.stop();
    namespaceLabels.close();
    clearInterval(rotation);
    void webhooks.close();
    void meshModel.stop();
    ads.close();
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
