// Stands in for Istio's pilot-agent of the `grpc-agent` template on the embedded
// cluster, where no container runs. When the injector gave the app GRPC_XDS_BOOTSTRAP,
// it does what the agent does for a proxyless app, then runs the app in this same
// process:
//   - the workload identity: a P-256 key and a CSR for
//     spiffe://<TRUST_DOMAIN>/ns/<ns>/sa/<sa>, signed by weftd's real CA
//     (istio.v1.auth.IstioCertificateService/CreateCertificate on CA_ADDR, over TLS
//     checked against the namespace's istio-ca-root-cert, authenticated with a token of
//     the pod's ServiceAccount for the audience istio-ca, as the kubelet projects
//     `istio-token`); cert-chain.pem, key.pem and root-cert.pem in OUTPUT_CERTS,
//     renewed at half their lifetime;
//   - the proxyless bootstrap at GRPC_XDS_BOOTSTRAP: node id in Istio's form,
//     GENERATOR=grpc, the `default` file_watcher certificate provider over those
//     files and the server listener template; pointing straight at weftd's plaintext
//     ADS port through the Service's EndpointSlice (the sandbox has no cluster DNS and
//     routes no Service IP).
// CA_ADDR, TRUST_DOMAIN and OUTPUT_CERTS are read from the pod's istio-proxy container,
// where the injector put them. The pod's files live under <pods-dir>/<ns>_<pod>/, which
// stands for the container's root: /var/lib/istio/data is <pods-dir>/<ns>_<pod>/var/lib/istio/data.
// Without GRPC_XDS_BOOTSTRAP it just runs the app. The private key is never logged.
// Every pod of the sandbox shares one network namespace, where a pod has its own: a
// listen on all addresses (grpc-js-xds's XdsServer listens so, whatever address it was
// bound to) is narrowed to the pod's IP, as its own namespace would have it.
//   argv: --kubeconfig <path> --xds-service <name>.<namespace>:<port> --pods-dir <dir> <app module>
//   env: POD_NAME, POD_NAMESPACE, POD_IP (from the pod, as for any workload)
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { Server as NetServer, type ListenOptions } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { CoreV1Api, DiscoveryV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { repositoryFile } from '../../lib/repository-file.js';
import { buildCsr } from '../fixtures/csr.js';

const { values, positionals } = parseArgs({
  options: { kubeconfig: { type: 'string' }, 'xds-service': { type: 'string' }, 'pods-dir': { type: 'string' } },
  allowPositionals: true,
});
const app = positionals[0];
if (!app)
  throw new Error('usage: local-grpc-agent --kubeconfig <path> --xds-service <name>.<namespace>:<port> --pods-dir <dir> <app module>');

const podIp = process.env['POD_IP'];
if (podIp) {
  const listen = NetServer.prototype.listen as (this: NetServer, ...args: unknown[]) => NetServer;
  const anyAddress = (host: unknown) => host === undefined || host === '::' || host === '0.0.0.0' || host === '';
  NetServer.prototype.listen = function (this: NetServer, ...args: unknown[]): NetServer {
    const [first, second] = args;
    if ((typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) && typeof second !== 'string')
      return listen.call(this, first, podIp, ...args.slice(1));
    if (typeof first === 'number' && anyAddress(second)) return listen.call(this, first, podIp, ...args.slice(2));
    if (first && typeof first === 'object' && 'port' in first && anyAddress((first as ListenOptions).host))
      return listen.call(this, { ...(first as ListenOptions), host: podIp }, ...args.slice(1));
    return listen.apply(this, args);
  } as typeof NetServer.prototype.listen;
}

const say = (message: string) => process.stdout.write(`local-grpc-agent: ${message}\n`);
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/** Polls until `attempt` returns a value, or throws its last error at the deadline. */
async function retrying<T>(what: string, attempt: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = 'nothing yet';
  for (let delay = 500; ; delay = Math.min(delay * 2, 5_000)) {
    try {
      const value = await attempt();
      if (value !== undefined) return value;
    } catch (error) {
      last = (error as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`${what}: gave up after ${timeoutMs / 1000} s (last: ${last})`);
    await sleep(delay);
  }
}

/** A ready endpoint address of a Service, from its EndpointSlices. */
async function serviceAddress(kc: KubeConfig, name: string, namespace: string): Promise<string> {
  const discovery = kc.makeApiClient(DiscoveryV1Api);
  return retrying(`a ready endpoint of Service ${namespace}/${name}`, async () => {
    const slices = await discovery.listNamespacedEndpointSlice({ namespace, labelSelector: `kubernetes.io/service-name=${name}` });
    return slices.items.flatMap((slice) => slice.endpoints ?? []).find((e) => e.conditions?.ready !== false && e.addresses[0])
      ?.addresses[0];
  });
}

/** Writes a file whole or not at all: gRPC's file watcher never reads half a key. */
function writeAtomically(path: string, content: string, mode: number): void {
  const temporary = `${path}.tmp`;
  writeFileSync(temporary, content, { mode });
  renameSync(temporary, path);
}

interface Identity {
  pod: V1Pod;
  namespace: string;
  serviceAccount: string;
  trustDomain: string;
  caAddress: string;
  certsDir: string;
}

/** One certificate from weftd's CA, written where the app's file watcher reads it; returns the leaf's lifetime. */
async function fetchCertificate(kc: KubeConfig, id: Identity): Promise<{ notBefore: number; notAfter: number }> {
  const core = kc.makeApiClient(CoreV1Api);
  const root = await retrying(`the trust bundle istio-ca-root-cert in ${id.namespace}`, async () => {
    const configMap = await core.readNamespacedConfigMap({ name: 'istio-ca-root-cert', namespace: id.namespace });
    return configMap.data?.['root-cert.pem'];
  });
  // As the kubelet projects the template's `istio-token` volume: the pod's ServiceAccount, audience istio-ca, bound to the pod.
  const token = await core.createNamespacedServiceAccountToken({
    name: id.serviceAccount,
    namespace: id.namespace,
    body: {
      spec: {
        audiences: ['istio-ca'],
        expirationSeconds: 3600,
        boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: id.pod.metadata?.name, uid: id.pod.metadata?.uid },
      },
    },
  });
  const [, host = '', port = ''] = /^(.+):(\d+)$/.exec(id.caAddress) ?? [];
  const [service, serviceNamespace] = host.split('.');
  if (!service || !serviceNamespace || !port) throw new Error(`CA_ADDR must be <service>.<namespace>[.svc...]:<port>, not ${id.caAddress}`);
  const address = await serviceAddress(kc, service, serviceNamespace);

  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spiffeId = `spiffe://${id.trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`;
  const csr = buildCsr({ privateKey, publicKey, uris: [spiffeId] });
  const definition = loadSync(repositoryFile('ca/proto/ca.proto', import.meta.url), { keepCase: true, longs: String, defaults: true });
  const Client = grpc.makeGenericClientConstructor(
    definition['istio.v1.auth.IstioCertificateService'] as grpc.ServiceDefinition,
    'IstioCertificateService',
  );
  // weftd's serving certificate names the Service; the connection goes to its endpoint.
  const client = new Client(`ipv4:${address}:${port}`, grpc.credentials.createSsl(Buffer.from(root)), {
    'grpc.ssl_target_name_override': host,
    'grpc.default_authority': host,
  });
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${token.status?.token ?? ''}`);
  let chain: string[];
  try {
    chain = await retrying(
      `a certificate for ${spiffeId} from ${id.caAddress}`,
      () =>
        new Promise<string[]>((done, fail) =>
          (
            client as unknown as Record<
              string,
              (
                r: object,
                m: grpc.Metadata,
                o: grpc.CallOptions,
                cb: (e: grpc.ServiceError | null, v: { cert_chain: string[] }) => void,
              ) => void
            >
          )['CreateCertificate']?.({ csr, validity_duration: 0 }, metadata, { deadline: Date.now() + 10_000 }, (error, reply) =>
            error ? fail(error) : done(reply.cert_chain),
          ),
        ),
    );
  } finally {
    client.close();
  }
  const leaf = new X509Certificate(chain[0] ?? '');
  if (!leaf.subjectAltName?.includes(`URI:${spiffeId}`)) throw new Error(`the CA issued ${leaf.subjectAltName}, not ${spiffeId}`);
  mkdirSync(id.certsDir, { recursive: true, mode: 0o700 });
  // The key first: the watcher pairs whatever it reads, and a new key with the old chain fails only until the chain follows.
  writeAtomically(join(id.certsDir, 'key.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 0o600);
  writeAtomically(join(id.certsDir, 'cert-chain.pem'), chain.join(''), 0o644);
  writeAtomically(join(id.certsDir, 'root-cert.pem'), root, 0o644);
  const lifetime = { notBefore: Date.parse(leaf.validFrom), notAfter: Date.parse(leaf.validTo) };
  say(`${spiffeId}: certificate valid until ${leaf.validTo}, in ${id.certsDir}`);
  return lifetime;
}

/** Renews at half the lifetime, as the agent does (SECRET_GRACE_PERIOD_RATIO 0.5); failures retry. */
function keepRenewing(kc: KubeConfig, id: Identity, lifetime: { notBefore: number; notAfter: number }): void {
  const at = lifetime.notBefore + (lifetime.notAfter - lifetime.notBefore) / 2;
  const timer = setTimeout(
    () => {
      fetchCertificate(kc, id).then(
        (next) => keepRenewing(kc, id, next),
        (error: Error) => {
          say(`renewal failed, retrying: ${error.message}`);
          keepRenewing(kc, id, { notBefore: Date.now() - 60_000, notAfter: Date.now() + 60_000 });
        },
      );
    },
    Math.max(1_000, Math.min(at - Date.now(), 2 ** 31 - 1)),
  );
  timer.unref();
}

if (process.env['GRPC_XDS_BOOTSTRAP']) {
  const podName = process.env['POD_NAME'];
  const namespace = process.env['POD_NAMESPACE'];
  const ip = process.env['POD_IP'];
  const podsDir = values['pods-dir'];
  if (!podName || !namespace || !ip || !values.kubeconfig || !values['xds-service'] || !podsDir)
    throw new Error('local-grpc-agent needs POD_NAME, POD_NAMESPACE, POD_IP, --kubeconfig, --xds-service and --pods-dir');
  const [, xdsName, xdsNamespace, xdsPort] = /^([^.]+)\.([^:]+):(\d+)$/.exec(values['xds-service']) ?? [];
  if (!xdsName || !xdsNamespace || !xdsPort)
    throw new Error(`--xds-service must be <name>.<namespace>:<port>, not ${values['xds-service']}`);
  const kc = new KubeConfig();
  kc.loadFromFile(values.kubeconfig);

  const pod = await kc.makeApiClient(CoreV1Api).readNamespacedPod({ name: podName, namespace });
  const agent = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find((c) => c.name === 'istio-proxy');
  const agentEnv = Object.fromEntries((agent?.env ?? []).map((e) => [e.name, e.value]));
  const podRoot = join(podsDir, `${namespace}_${podName}`);
  const inPod = (path: string) => join(podRoot, path);
  const identity: Identity = {
    pod,
    namespace,
    serviceAccount: pod.spec?.serviceAccountName ?? 'default',
    trustDomain: agentEnv['TRUST_DOMAIN'] ?? 'cluster.local',
    caAddress: agentEnv['CA_ADDR'] ?? 'istiod.istio-system.svc:15012',
    certsDir: inPod(agentEnv['OUTPUT_CERTS'] ?? '/var/lib/istio/data'),
  };
  keepRenewing(kc, identity, await fetchCertificate(kc, identity));

  const server = `${await serviceAddress(kc, xdsName, xdsNamespace)}:${xdsPort}`;
  const file = (name: string) => join(identity.certsDir, name);
  const bootstrap = {
    xds_servers: [{ server_uri: server, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: {
      id: `sidecar~${ip}~${podName}.${namespace}~${namespace}.svc.cluster.local`,
      locality: {},
      // LABELS as pilot-agent sends them (ISTIO_META_LABELS): selectors and load reports name the workload by them.
      metadata: { GENERATOR: 'grpc', NAMESPACE: namespace, INSTANCE_IPS: ip, LABELS: pod.metadata?.labels ?? {} },
    },
    // As pilot-agent writes it for gRPC: one provider, `default`, over the files it keeps fresh.
    certificate_providers: {
      default: {
        plugin_name: 'file_watcher',
        config: {
          certificate_file: file('cert-chain.pem'),
          private_key_file: file('key.pem'),
          ca_certificate_file: file('root-cert.pem'),
          refresh_interval: '900s',
        },
      },
    },
    server_listener_resource_name_template: 'xds.istio.io/grpc/lds/inbound/%s',
  };
  const bootstrapPath = inPod(process.env['GRPC_XDS_BOOTSTRAP']);
  mkdirSync(dirname(bootstrapPath), { recursive: true });
  writeAtomically(bootstrapPath, JSON.stringify(bootstrap, null, 2), 0o644);
  // The app reads the same file, at its place in this pod's stand-in for a filesystem.
  process.env['GRPC_XDS_BOOTSTRAP'] = bootstrapPath;
  say(`${podName}.${namespace} gets its xDS from ${server}; bootstrap ${bootstrapPath}`);
}
await import(pathToFileURL(resolve(app)).href);
