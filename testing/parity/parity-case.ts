// A parity case: Kubernetes and Istio objects, one sidecar and the calls to make
// from or to it. The same objects go to Weft's generator (here) and to Istio's
// (the oracle, testing/istio-oracle), so both configs answer the same calls.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { V1EndpointSlice, V1Namespace, V1Pod, V1Secret, V1Service } from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';
import { ResourceEncoder, SnapshotCache } from '../../xds/cache/snapshot-cache.js';
import { envoySidecarResources } from '../../xds/generate/envoy-sidecar-resources.js';
import { ProxyGroups } from '../../xds/cache/proxy-groups.js';
import { istioConfigOf, istioKinds, meshModelOf, type IstioObject } from '../../xds/model/mesh-model-of.js';
import type { MeshDefaults, MeshModel, MeshTelemetry } from '../../xds/model/mesh-model.js';
import { verifiedCertificateReferences } from '../../xds/traffic/gateway-certificate-references.js';
import { typeUrls } from '../../xds/protos.js';
import { ProxyView } from '../../xds/traffic/proxy-view.js';
import { generateRsaKeyPair, issueCertificate, privateKeyToPem } from '../../lib/x509.js';
import { componentLogger } from '../../lib/logger.js';
import { CredentialSource } from '../../xds/credentials/credential-source.js';
import { keptSecret, type KeptSecret } from '../../xds/credentials/secret-layouts.js';
import { testRoot, type TestCa } from '../fixtures/plugged-ca.js';
import { gatewayApiKinds, type GatewayApiObjects } from '../../gatewayapi/gateway-api-config.js';
import { gatewayApiGroup, type Gateway } from '../../gatewayapi/gateway-api-types.js';
import { gatewayNameLabel } from '../../gatewayapi/gateway-api-input.js';
import { isManaged, managedGatewayName } from '../../gatewayapi/gateways.js';
import { gatewayServicePorts } from '../../cdk8s/gateway-api-deployment.js';
import { GeneratedObjects, withGatewayApi } from '../../xds/model/gateway-api-source.js';
import { withCrdDefaults } from './crd-defaults.js';

/** One simulated connection or request (testing/istio-oracle/types.go, CallSpec). */
export interface ParityCall {
  name: string;
  /** A proxyless gRPC call's `xds:///` target (host:port), the listener it asks for. */
  target?: string;
  /** The Service called, as `name.namespace`: its cluster IP becomes the address unless one is given. */
  to?: string;
  /**
   * outbound (captured to 15001), inbound (to 15006) or gateway (no capture: to the listener
   * on `port`, as a gateway's pod receives it). Outbound by default; gateway for a router.
   */
  mode?: 'outbound' | 'inbound' | 'gateway';
  address?: string;
  port: number;
  protocol?: 'http' | 'http2' | 'tcp';
  tls?: 'plaintext' | 'tls' | 'mtls';
  alpn?: string;
  sni?: string;
  host?: string;
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  /** The caller's SPIFFE ID, for inbound calls over mTLS. */
  sourcePrincipal?: string;
  sourceIp?: string;
  /** In a case with several `proxies`, the one the call is made through (its key). */
  from?: string;
}

export interface ParityProxy {
  /**
   * An Envoy sidecar (the default), a proxyless gRPC client (GENERATOR=grpc) or a
   * gateway (`router`: Istio's proxyv2 in router mode, node id `router~<ip>~<pod>.<ns>~<ns>.svc.cluster.local`).
   */
  kind?: 'sidecar' | 'grpc' | 'router';
  name: string;
  namespace: string;
  ip: string;
  labels: Record<string, string>;
  serviceAccount?: string;
}

export interface ParityCase {
  name: string;
  /** Kubernetes objects: Services, Pods, EndpointSlices (apiVersion and kind set). */
  kube: KubeObject[];
  istio: IstioObject[];
  /**
   * Kubernetes Gateway API objects (`gateway.networking.k8s.io`): Istio's gateway controller reads
   * them from the API server, weftd's gatewayapi/ converts them; absent in cases without any.
   */
  gatewayApi?: KubeObject[];
  mesh: Pick<MeshDefaults, 'outboundTrafficPolicy'> & {
    /** MeshConfig in Istio's own shape (extensionProviders, defaultProviders, accessLogFile...), for both sides. */
    config?: Record<string, unknown>;
  };
  proxy: ParityProxy;
  calls: ParityCall[];
}

/** A Kubernetes object of a case, as plain JSON: the fields the cases read are typed. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
  spec?: { clusterIP?: string; ports?: Array<{ port: number }>; [field: string]: unknown };
  [field: string]: unknown;
}

/** The parts of Istio objects' specs the derived cases read. */
interface ServiceEntrySpec {
  hosts?: string[];
  addresses?: string[];
  ports?: Array<{ number: number; protocol?: string }>;
}
interface SelectorSpec {
  selector?: { matchLabels?: Record<string, string> };
}
interface PolicySpec extends SelectorSpec {
  rules?: Array<{
    from?: Array<{ source?: { principals?: string[]; namespaces?: string[]; ipBlocks?: string[] } }>;
    to?: Array<{ operation?: { ports?: string[]; methods?: string[]; paths?: string[]; hosts?: string[] } }>;
  }>;
}
interface HttpMatch {
  uri?: { exact?: string; prefix?: string };
  headers?: Record<string, { exact?: string; prefix?: string }>;
  method?: { exact?: string };
  port?: number;
}

// Secrets hold gateways' credentialName certificates (Istio's credentials controller reads them).
const kubeKinds = new Set(['Service', 'Pod', 'EndpointSlice', 'Namespace', 'Secret']);

/** A workload of the built-in mesh: one pod behind one service. */
interface Workload {
  service: string;
  namespace: string;
  pod: string;
  ip: string;
  version: string;
  serviceAccount: string;
}

/**
 * bookinfo as the traffic cases know it (xds/traffic/traffic.test.ts): reviews v1-v3,
 * ratings v1-v2, details, one service in the root namespace and one elsewhere,
 * each on port 9080 named `http`, with cluster IPs 10.96.0.x.
 */
export function bookinfo(): KubeObject[] {
  const workloads: Workload[] = [
    ['reviews', 'bookinfo', 'reviews-v1-a', '10.244.1.1', 'v1'],
    ['reviews', 'bookinfo', 'reviews-v2-a', '10.244.1.2', 'v2'],
    ['reviews', 'bookinfo', 'reviews-v3-a', '10.244.1.3', 'v3'],
    ['ratings', 'bookinfo', 'ratings-v1-a', '10.244.2.1', 'v1'],
    ['ratings', 'bookinfo', 'ratings-v2-a', '10.244.2.2', 'v2'],
    ['details', 'bookinfo', 'details-v1-a', '10.244.3.1', 'v1'],
    ['productpage', 'bookinfo', 'productpage-v1-a', '10.244.0.9', 'v1'],
    ['weftd', 'istio-system', 'weftd-a', '10.244.9.1', 'v1'],
    ['ledger', 'other', 'ledger-a', '10.244.8.1', 'v1'],
  ].map(([service, namespace, pod, ip, version]) => ({
    service: service as string,
    namespace: namespace as string,
    pod: pod as string,
    ip: ip as string,
    version: version as string,
    serviceAccount: `bookinfo-${service}`,
  }));
  return meshOf(workloads, [{ name: 'http', port: 9080 }]);
}

/** Services (with cluster IPs 10.96.0.<n>), their EndpointSlices and ready pods, as the API server would hold them. */
export function meshOf(workloads: Workload[], ports: Array<{ name: string; port: number; appProtocol?: string; targetPort?: number }>) {
  const services = [...new Set(workloads.map((w) => `${w.namespace}/${w.service}`))];
  const objects: KubeObject[] = [];
  services.forEach((key, index) => {
    const [namespace, name] = key.split('/') as [string, string];
    objects.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace },
      spec: {
        clusterIP: `10.96.0.${index + 10}`,
        clusterIPs: [`10.96.0.${index + 10}`],
        selector: { app: name },
        ports: ports.map((p) => ({
          name: p.name,
          port: p.port,
          protocol: 'TCP',
          targetPort: p.targetPort ?? p.port,
          ...(p.appProtocol ? { appProtocol: p.appProtocol } : {}),
        })),
      },
    });
    objects.push({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      addressType: 'IPv4',
      metadata: { name: `${name}-abc`, namespace, labels: { 'kubernetes.io/service-name': name } },
      ports: ports.map((p) => ({ name: p.name, port: p.targetPort ?? p.port, protocol: 'TCP' })),
      endpoints: workloads
        .filter((w) => w.service === name && w.namespace === namespace)
        .map((w) => ({ addresses: [w.ip], conditions: { ready: true }, targetRef: { kind: 'Pod', name: w.pod, namespace } })),
    });
  });
  for (const w of workloads) {
    objects.push({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: w.pod,
        namespace: w.namespace,
        labels: { app: w.service, version: w.version, 'security.istio.io/tlsMode': 'istio' },
      },
      spec: { serviceAccountName: w.serviceAccount, containers: [{ name: 'app', image: 'app' }] },
      status: { phase: 'Running', podIP: w.ip, podIPs: [{ ip: w.ip }], conditions: [{ type: 'Ready', status: 'True' }] },
    });
  }
  return objects;
}

/** A Service of the case, written short: its ports, cluster IP and pods (each gets a ready endpoint). */
interface ServiceSpec {
  name: string;
  namespace: string;
  clusterIP: string;
  ports: Array<{ name?: string; port: number; targetPort?: number; appProtocol?: string; protocol?: string }>;
  pods: Array<{ name: string; ip: string; labels?: Record<string, string>; serviceAccount?: string }>;
}

/** The Service, EndpointSlice and Pods a {@link ServiceSpec} stands for. */
function serviceObjects(spec: ServiceSpec): KubeObject[] {
  const ports = spec.ports.map((p, i) => ({ ...p, name: p.name ?? (spec.ports.length > 1 ? `port-${i}` : undefined) }));
  return [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: spec.name, namespace: spec.namespace },
      spec: {
        clusterIP: spec.clusterIP,
        clusterIPs: [spec.clusterIP],
        selector: { app: spec.name },
        ports: ports.map((p) => ({
          ...(p.name ? { name: p.name } : {}),
          port: p.port,
          protocol: p.protocol ?? 'TCP',
          targetPort: p.targetPort ?? p.port,
          ...(p.appProtocol ? { appProtocol: p.appProtocol } : {}),
        })),
      },
    },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      addressType: 'IPv4',
      metadata: { name: `${spec.name}-abc`, namespace: spec.namespace, labels: { 'kubernetes.io/service-name': spec.name } },
      ports: ports.map((p) => ({ ...(p.name ? { name: p.name } : {}), port: p.targetPort ?? p.port, protocol: p.protocol ?? 'TCP' })),
      endpoints: spec.pods.map((pod) => ({
        addresses: [pod.ip],
        conditions: { ready: true },
        targetRef: { kind: 'Pod', name: pod.name, namespace: spec.namespace },
      })),
    },
    ...spec.pods.map((pod) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: pod.name,
        namespace: spec.namespace,
        labels: { app: spec.name, ...pod.labels, 'security.istio.io/tlsMode': 'istio' },
      },
      spec: { serviceAccountName: pod.serviceAccount ?? spec.name, containers: [{ name: 'app', image: 'app' }] },
      status: { phase: 'Running', podIP: pod.ip, podIPs: [{ ip: pod.ip }], conditions: [{ type: 'Ready', status: 'True' }] },
    })),
  ];
}

/** A built-in set of objects a case can start from. */
type Base = 'bookinfo' | 'istio-ingressgateway' | 'istio-egressgateway';

/** A proxy as a case names it: a router's name and IP may be left to the gateway pod its labels select. */
type ProxySpec = Omit<ParityProxy, 'name' | 'ip'> & Partial<Pick<ParityProxy, 'name' | 'ip'>>;

interface CaseHeader {
  kind: 'ParityCase';
  /**
   * Built-in objects: `bookinfo` (the built-in mesh), `istio-ingressgateway` and
   * `istio-egressgateway` (the gateway Services and pods of Istio's demo profile).
   */
  base?: Base | Base[];
  services?: ServiceSpec[];
  mesh?: ParityCase['mesh'];
  /** The proxy the calls go through (productpage in bookinfo by default)... */
  proxy?: ProxySpec;
  /** ...or several, by a key each call names in `from`: one case per proxy, named `<file>/<key>`. */
  proxies?: Record<string, ProxySpec>;
  calls: ParityCall[];
}

/**
 * The gateway Services of Istio's demo profile (manifests/profiles/demo.yaml): each
 * maps its ports to the pod's (80 to 8080, 443 to 8443), so a Gateway server on
 * port 80 is a listener on 8080, as istiod resolves it through the Service.
 */
function gatewayBase(base: 'istio-ingressgateway' | 'istio-egressgateway'): KubeObject[] {
  const ingress = base === 'istio-ingressgateway';
  return serviceObjects({
    name: base,
    namespace: 'istio-system',
    clusterIP: ingress ? '10.96.9.1' : '10.96.9.2',
    ports: [
      { name: 'status-port', port: 15021 },
      { name: 'http2', port: 80, targetPort: 8080 },
      { name: 'https', port: 443, targetPort: 8443 },
      ...(ingress
        ? [
            { name: 'tcp', port: 31400 },
            { name: 'tls', port: 15443 },
          ]
        : []),
    ],
    pods: [
      {
        name: `${base}-a`,
        ip: ingress ? '10.244.9.10' : '10.244.9.20',
        labels: { istio: ingress ? 'ingressgateway' : 'egressgateway' },
        serviceAccount: `${base}-service-account`,
      },
    ],
  });
}

function baseObjects(base: Base): KubeObject[] {
  return base === 'bookinfo' ? bookinfo() : gatewayBase(base);
}

/** The proxy most cases call from: productpage in bookinfo. */
export const productpage: ParityProxy = {
  name: 'productpage-v1-a',
  namespace: 'bookinfo',
  ip: '10.244.0.9',
  labels: { app: 'productpage', version: 'v1', 'security.istio.io/tlsMode': 'istio' },
  serviceAccount: 'bookinfo-productpage',
};

/** Reads a case file with one proxy: a `ParityCase` document (proxy, calls), then Kubernetes and Istio objects. */
export function loadParityCase(file: string): ParityCase {
  const cases = loadParityCases(file);
  if (cases.length !== 1) throw new Error(`${file}: ${cases.length} proxies where one was expected`);
  return cases[0] as ParityCase;
}

/**
 * Reads a case file: a `ParityCase` document (`proxy` or `proxies`, calls), then
 * Kubernetes and Istio objects, which (as with `kubectl apply`) go to namespace
 * `default` when they name none. A file with `proxies` gives one case per proxy,
 * with the calls whose `from` names it, so one task's YAML is called from a gateway
 * and from a sidecar alike. Throws naming the file on a missing header, an unknown
 * `from`, or a router whose labels select no pod.
 */
export function loadParityCases(file: string): ParityCase[] {
  const documents = parseAllDocuments(readFileSync(file, 'utf8'))
    .map((d) => d.toJS() as KubeObject | null)
    .filter((d): d is KubeObject => d !== null);
  const header = documents.find((d) => d['kind'] === 'ParityCase') as CaseHeader | undefined;
  if (!header) throw new Error(`${file}: no ParityCase document (proxy and calls)`);
  const bases = header.base === undefined ? [] : Array.isArray(header.base) ? header.base : [header.base];
  const credentials = caseCredentials();
  const rest = [
    ...documents
      .filter((d) => d !== (header as unknown))
      .map(inDefaultNamespace)
      .map((d) => (d.kind === 'Secret' ? withStringData(d, credentials) : d)),
    ...(header.services ?? []).flatMap(serviceObjects),
  ];
  // As the API server holds them: at the version istiod and weftd read, with the CRD's defaults.
  const gatewayApi = rest.filter(isGatewayApi).map((o) => withCrdDefaults(atServedVersion(o)));
  const kube = withoutRepeatedPods([
    ...bases.flatMap(baseObjects),
    ...rest.filter((d) => kubeKinds.has(d.kind ?? '') && !isGatewayApi(d)),
    ...managedGatewayObjects(gatewayApi),
  ]);
  const proxies: Array<[string | undefined, ProxySpec]> = header.proxies
    ? Object.entries(header.proxies)
    : [[undefined, header.proxy ?? productpage]];
  for (const call of header.calls) {
    if (header.proxies ? !(call.from && call.from in header.proxies) : call.from !== undefined) {
      throw new Error(
        `${file}: call '${call.name}' has from: '${call.from ?? ''}', which must name one of the case's proxies (${Object.keys(header.proxies ?? {}).join(', ') || 'it has a single proxy: leave from out'})`,
      );
    }
  }
  return proxies.map(([key, spec]) => {
    const proxy = resolveProxy(spec, kube, file);
    return {
      name: key === undefined ? basename(file, '.yaml') : `${basename(file, '.yaml')}/${key}`,
      kube,
      istio: rest.filter((d) => !kubeKinds.has(d.kind ?? '') && !isGatewayApi(d)) as IstioObject[],
      ...(gatewayApi.length > 0 ? { gatewayApi } : {}),
      mesh: header.mesh ?? {},
      proxy,
      calls: header.calls
        .filter((call) => call.from === key)
        .map(({ from: _from, ...call }) => ({
          ...call,
          // Inbound calls arrive at the proxy's own address, and so do a gateway's.
          address:
            call.address ??
            (call.mode === 'inbound' || (proxy.kind === 'router' && !call.to) ? proxy.ip : clusterIpOf(kube, call.to, file)),
        })),
    };
  });
}

/**
 * The certificates a case's Secrets name, made when the case loads (no key is kept in the
 * repository): one CA (CN example.com, as Istio's tasks make it) and, per host, a server
 * certificate it signs, valid for a day.
 */
function caseCredentials() {
  let ca: TestCa | undefined;
  const servers = new Map<string, { certPem: string; keyPem: string }>();
  const caOf = () => (ca ??= testRoot('example.com'));
  return {
    caPem: () => caOf().certPem,
    server(host: string) {
      let server = servers.get(host);
      if (!server) {
        const keys = generateRsaKeyPair();
        const certPem = issueCertificate(
          { commonName: host, dnsNames: [host], usages: ['serverAuth'], notAfter: new Date(Date.now() + 86_400_000) },
          keys.publicKey,
          { certificatePem: caOf().certPem, privateKey: caOf().key },
        );
        server = { certPem, keyPem: privateKeyToPem(keys.privateKey) };
        servers.set(host, server);
      }
      return server;
    },
  };
}

/**
 * A Secret's `stringData` merged into `data` (base64) as the API server does, each value
 * naming what to make: `certificate for <host>`, `key for <host>` (a server certificate the
 * case's CA signs, and its key) or `CA certificate`. Any other value is kept as written.
 */
function withStringData(secret: KubeObject, credentials: ReturnType<typeof caseCredentials>): KubeObject {
  const stringData = secret['stringData'] as Record<string, string> | undefined;
  if (!stringData) return secret;
  const data = { ...(secret['data'] as Record<string, string> | undefined) };
  for (const [key, value] of Object.entries(stringData)) {
    const made = /^(certificate|key) for (\S+)$/.exec(value);
    const text =
      value === 'CA certificate'
        ? credentials.caPem()
        : made
          ? credentials.server(made[2] as string)[made[1] === 'key' ? 'keyPem' : 'certPem']
          : value;
    data[key] = Buffer.from(text).toString('base64');
  }
  const { stringData: _made, ...rest } = secret;
  return { ...rest, data };
}

/**
 * The objects with each Pod once: two `services` may list the same pod (bookinfo's `reviews` and
 * `reviews-v1` both select reviews-v1), which the API server holds once; the first listing wins.
 */
function withoutRepeatedPods(objects: KubeObject[]): KubeObject[] {
  const seen = new Set<string>();
  return objects.filter((o) => {
    if (o.kind !== 'Pod') return true;
    const key = `${o.metadata?.namespace}/${o.metadata?.name}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Whether an object of a case is a Kubernetes Gateway API one (`gateway.networking.k8s.io/*`). */
const isGatewayApi = (object: KubeObject) => object.apiVersion?.split('/')[0] === gatewayApiGroup;

/**
 * What istiod's deployment controller makes for each managed Gateway of class `istio` (no address, or
 * one IP: Istio's IsManaged), as far as config generation sees it: the Service `<gateway>-istio` (or
 * the `gateway.istio.io/name-override`) in the Gateway's namespace with its ports
 * (`gatewayServicePorts`: status-port, then one per listener port, Envoy listening on the port
 * itself), and one ready pod labelled `gateway.networking.k8s.io/gateway-name: <gateway>` running
 * as ServiceAccount `<gateway>-istio`, its endpoint. The n-th such Gateway gets cluster IP
 * 10.96.7.<n> and pod IP 10.244.7.<n>; a case's proxy names the pod by namespace and that label.
 */
function managedGatewayObjects(gatewayApi: KubeObject[]): KubeObject[] {
  const gateways = (gatewayApi.filter((o) => o.kind === 'Gateway') as unknown as Gateway[]).filter(
    (g) => g.spec?.gatewayClassName === 'istio' && isManaged(g),
  );
  return gateways.flatMap((gateway, index) => {
    const name = managedGatewayName(gateway);
    const gatewayName = gateway.metadata?.name as string;
    const objects = serviceObjects({
      name,
      namespace: gateway.metadata?.namespace as string,
      clusterIP: `10.96.7.${index + 1}`,
      ports: gatewayServicePorts(gateway).map(({ name: portName, port, appProtocol }) => ({ name: portName, port, appProtocol })),
      pods: [{ name: `${name}-a`, ip: `10.244.7.${index + 1}`, labels: { [gatewayNameLabel]: gatewayName }, serviceAccount: name }],
    });
    // The Service selects the gateway's pods by Istio's label, as the deployment controller's does.
    for (const object of objects.filter((o) => o.kind === 'Service')) {
      object.metadata = {
        ...object.metadata,
        labels: { [gatewayNameLabel]: gatewayName, 'gateway.networking.k8s.io/gateway-class-name': 'istio' },
      };
      object.spec = { ...object.spec, type: 'LoadBalancer', selector: { [gatewayNameLabel]: gatewayName } };
    }
    return objects;
  });
}

/** `kubectl apply` puts an object that names no namespace in `default`: so do cases, to keep Istio's task YAML unchanged. */
function inDefaultNamespace(object: KubeObject): KubeObject {
  // Namespaces and GatewayClasses are cluster-scoped.
  if (object.metadata?.namespace || object.kind === 'Namespace' || (object.kind === 'GatewayClass' && isGatewayApi(object))) return object;
  return { ...object, metadata: { ...object.metadata, namespace: 'default' } };
}

/** A proxy of the case: a router named only by namespace and labels is the pod they select there. */
function resolveProxy(spec: ProxySpec, kube: KubeObject[], file: string): ParityProxy {
  if (spec.name !== undefined && spec.ip !== undefined) return spec as ParityProxy;
  const pod = kube.find(
    (o) =>
      o.kind === 'Pod' &&
      o.metadata?.namespace === spec.namespace &&
      Object.entries(spec.labels).every(([k, v]) => o.metadata?.labels?.[k] === v),
  );
  const ip = (pod?.['status'] as { podIP?: string } | undefined)?.podIP;
  if (!pod || !ip) {
    throw new Error(
      `${file}: proxy ${JSON.stringify(spec.labels)} in ${spec.namespace} has no name and ip, and selects no pod of the case`,
    );
  }
  const serviceAccount = (pod['spec'] as { serviceAccountName?: string } | undefined)?.serviceAccountName;
  return {
    ...spec,
    name: pod.metadata?.name as string,
    ip,
    labels: { ...pod.metadata?.labels, ...spec.labels },
    ...(spec.serviceAccount === undefined && serviceAccount !== undefined ? { serviceAccount } : {}),
  };
}

function clusterIpOf(documents: KubeObject[], to: string | undefined, file: string): string | undefined {
  if (!to) return undefined;
  const [name, namespace] = to.split('.');
  const service = [...bookinfo(), ...documents].find(
    (d) => d['kind'] === 'Service' && d['metadata']?.name === name && d['metadata']?.namespace === namespace,
  );
  if (!service) throw new Error(`${file}: a call goes to ${to}, which is no Service of the case`);
  return service['spec']?.clusterIP;
}

/** The informer key (plural) of an Istio kind; a kind Weft does not read is a mistake in the case. */
function plural(kind: string | undefined): string {
  const known = istioKinds.find((k) => k.kind === kind);
  if (!known) throw new Error(`parity case: Weft reads no Istio kind ${kind}`);
  return known.plural;
}

/** The Istio objects Weft's validation refuses, as Kind/namespace/name (the oracle's names). */
export function weftRejected(parity: ParityCase): string[] {
  return (istioConfigOf(byPluralOf(parity)).rejected ?? []).map((r) => `${r.kind}/${r.namespace}/${r.name}`).sort();
}

function byPluralOf(parity: ParityCase): Record<string, IstioObject[]> {
  const byPlural: Record<string, IstioObject[]> = {};
  for (const object of parity.istio) (byPlural[plural(object.kind)] ??= []).push(object);
  return byPlural;
}

/** Weft's Envoy config for the case's proxy, each resource serialized and base64 encoded, as the oracle reads it. */
export function weftResources(
  parity: ParityCase,
): Record<'listeners' | 'clusters' | 'routes' | 'endpoints', string[]> & { secrets?: string[] } {
  const byPlural = byPluralOf(parity);
  const ofKind = <T>(kind: string) => parity.kube.filter((o) => o['kind'] === kind) as T[];
  // Gateway API objects join as weftd joins them (xds/model/kube-mesh-model.ts): converted by
  // gatewayapi/, beside the case's own Istio objects.
  const { istio } = withGatewayApi(
    istioConfigOf(byPlural),
    gatewayApiObjectsOf(parity.gatewayApi ?? []),
    ofKind<V1Service>('Service'),
    ofKind<V1Namespace>('Namespace'),
    'cluster.local',
    new GeneratedObjects(),
    new Date().toISOString(),
  );
  const model = meshModelOf(
    ofKind<V1Service>('Service'),
    ofKind<V1EndpointSlice>('EndpointSlice'),
    'cluster.local',
    ofKind<V1Pod>('Pod'),
    istio,
    'istio-system',
  );
  if (parity.mesh.outboundTrafficPolicy)
    model.meshConfig = { ...model.meshConfig, outboundTrafficPolicy: parity.mesh.outboundTrafficPolicy };
  if (parity.mesh.config) model.meshConfig = { ...model.meshConfig, telemetry: meshTelemetryOf(parity.mesh.config) };
  const kind = parity.proxy.kind ?? 'sidecar';
  let encoded: (typeUrl: string) => string[];
  if (kind === 'router') {
    // A gateway is served as weftd serves it: ProxyGroups, by a node whose id says `router`.
    const groups = new ProxyGroups();
    groups.update(model);
    const node = {
      id: `router~${parity.proxy.ip}~${parity.proxy.name}.${parity.proxy.namespace}~${parity.proxy.namespace}.svc.cluster.local`,
      metadata: { NAMESPACE: parity.proxy.namespace, LABELS: parity.proxy.labels },
    };
    groups.connected(node);
    encoded = (typeUrl: string) =>
      groups.resources(node, typeUrl, []).resources.map((r) => Buffer.from(r.resource.value).toString('base64'));
    return {
      listeners: encoded(typeUrls.listener),
      clusters: encoded(typeUrls.cluster),
      routes: encoded(typeUrls.route),
      endpoints: encoded(typeUrls.endpoint),
      secrets: weftSecrets(parity, model),
    };
  } else if (kind === 'grpc') {
    // A proxyless client asks for listeners by name (its xds:/// targets): answered by weftd's own
    // ConfigSource, which also serves the names istiod resolves (short names, name.namespace).
    const groups = new ProxyGroups();
    groups.update(model);
    const node = {
      id: `sidecar~${parity.proxy.ip}~${parity.proxy.name}.${parity.proxy.namespace}~${parity.proxy.namespace}.svc.cluster.local`,
      metadata: { GENERATOR: 'grpc', NAMESPACE: parity.proxy.namespace, LABELS: parity.proxy.labels },
    };
    groups.connected(node);
    const targets = parity.calls.flatMap((c) => (c.target ? [c.target] : []));
    encoded = (typeUrl: string) =>
      groups
        .resources(node, typeUrl, typeUrl === typeUrls.listener ? targets : [])
        .resources.map((r) => Buffer.from(r.resource.value).toString('base64'));
  } else {
    const view = new ProxyView(model, { kind, namespace: parity.proxy.namespace, labels: parity.proxy.labels });
    const cache = new SnapshotCache(new ResourceEncoder());
    cache.update(envoySidecarResources(view));
    encoded = (typeUrl: string) =>
      cache.resources({ id: 'parity' }, typeUrl, []).resources.map((r) => Buffer.from(r.resource.value).toString('base64'));
  }
  return {
    listeners: encoded(typeUrls.listener),
    clusters: encoded(typeUrls.cluster),
    routes: encoded(typeUrls.route),
    endpoints: encoded(typeUrls.endpoint),
  };
}

/** A case's Gateway API objects by kind, as weftd's informers list them. */
function gatewayApiObjectsOf(objects: KubeObject[]): GatewayApiObjects {
  return Object.fromEntries(
    gatewayApiKinds.map(({ kind, field }) => [field, objects.filter((o) => o.kind === kind)]),
  ) as unknown as GatewayApiObjects;
}

/**
 * A Gateway API object at the version Istio's informers (and weftd's) read it: the API server
 * serves every version of a CRD, the oracle's fake client only the one written.
 */
function atServedVersion(object: KubeObject): KubeObject {
  const served = gatewayApiKinds.find((k) => k.kind === object.kind);
  return served ? { ...object, apiVersion: `${gatewayApiGroup}/${served.version}` } : object;
}

/**
 * Weft's SDS answers (weftd's CredentialSource) to a router proxied by the case's identity
 * (its namespace and ServiceAccount, as proved on 15012, allowed to read its namespace's
 * Secrets as Istio's gateway Role allows), for every name a case's Secret can be asked by:
 * `kubernetes://<name>`, `kubernetes://<namespace>/<name>`, `kubernetes-gateway://<namespace>/<name>`
 * (a Gateway API listener's certificateRefs, served when `model`'s Gateways verifiably refer to
 * it, as weftd checks) and their `-cacert` forms. The oracle reads the ones the listeners use.
 */
function weftSecrets(parity: ParityCase, model: MeshModel): string[] {
  const secrets = new Map<string, KeptSecret>();
  for (const object of parity.kube.filter((o) => o.kind === 'Secret')) {
    const kept = keptSecret(object as V1Secret);
    secrets.set(`${kept.metadata.namespace}/${kept.metadata.name}`, kept);
  }
  const source = new CredentialSource({
    secrets: { get: (namespace, name) => secrets.get(`${namespace}/${name}`) },
    access: () => ({ state: 'allowed' }),
    log: componentLogger('parity-sds'),
    verifiedCertificateReferences: (node) => verifiedCertificateReferences(model, node),
  });
  const names = [...secrets.values()].flatMap(({ metadata: { namespace, name } }) =>
    [`kubernetes://${name}`, `kubernetes://${namespace}/${name}`, `kubernetes-gateway://${namespace}/${name}`].flatMap((n) => [
      n,
      `${n}-cacert`,
    ]),
  );
  const node = {
    id: `router~${parity.proxy.ip}~${parity.proxy.name}.${parity.proxy.namespace}~${parity.proxy.namespace}.svc.cluster.local`,
    metadata: { NAMESPACE: parity.proxy.namespace, LABELS: parity.proxy.labels },
    verifiedIdentity: { namespace: parity.proxy.namespace, serviceAccount: parity.proxy.serviceAccount ?? 'default' },
  };
  return source
    .resources(node, typeUrls.secret, [...new Set(names)])
    .resources.map((r) => Buffer.from(r.resource.value).toString('base64'));
}

/** Weft's telemetry defaults from Istio's MeshConfig fields (the MeshInstallation carries the same names). */
function meshTelemetryOf(config: Record<string, unknown>): MeshTelemetry {
  const sampling = (config['defaultConfig'] as { tracing?: { sampling?: number } } | undefined)?.tracing?.sampling;
  const pick = (key: string) => (config[key] !== undefined ? { [key]: config[key] } : {});
  return {
    ...pick('accessLogFile'),
    ...pick('accessLogEncoding'),
    ...pick('accessLogFormat'),
    ...pick('extensionProviders'),
    ...pick('defaultProviders'),
    ...(sampling !== undefined ? { tracingSampling: sampling } : {}),
  } as MeshTelemetry;
}

/** The case as the oracle reads it (testing/istio-oracle/types.go, Case). */
export function oracleCase(parity: ParityCase) {
  const yaml = (objects: KubeObject[]) => objects.map((o) => stringify(o)).join('---\n');
  return {
    name: parity.name,
    // Istio's gateway controller reads the Gateway API objects from the (fake) API server.
    kube: yaml([...parity.kube, ...(parity.gatewayApi ?? [])]),
    istio: yaml(parity.istio as KubeObject[]),
    mesh: {
      ...(parity.mesh.outboundTrafficPolicy ? { outboundTrafficPolicy: parity.mesh.outboundTrafficPolicy } : {}),
      ...(parity.mesh.config ? { config: stringify(parity.mesh.config) } : {}),
    },
    proxy: {
      ...(parity.proxy.kind ? { kind: parity.proxy.kind } : {}),
      id: `${parity.proxy.name}.${parity.proxy.namespace}`,
      namespace: parity.proxy.namespace,
      ip: parity.proxy.ip,
      labels: parity.proxy.labels,
      ...(parity.proxy.kind === 'router' ? { serviceAccount: parity.proxy.serviceAccount ?? 'default' } : {}),
    },
    weft: weftResources(parity),
    calls: parity.calls,
  };
}

/**
 * A case made from another suite's Istio objects (the traffic cases in
 * xds/traffic/testdata/cases) over bookinfo, with calls derived from the objects: one
 * per Service and ServiceEntry host and port, and one per VirtualService HTTP rule
 * built to satisfy its first match (URI exact or prefix, headers exact or prefix, method).
 */
export function derivedParityCase(file: string, name: string): ParityCase {
  const istio = parseAllDocuments(readFileSync(file, 'utf8'))
    .map((d) => d.toJS() as IstioObject | null)
    .filter((d): d is IstioObject => d !== null);
  const kube = bookinfo();
  const calls: ParityCall[] = [];
  for (const service of kube.filter((o) => o['kind'] === 'Service')) {
    const { name: svc, namespace } = service.metadata ?? {};
    for (const port of service.spec?.ports ?? []) {
      calls.push({
        name: `GET ${svc}.${namespace}:${port.port}`,
        address: service.spec?.clusterIP,
        port: port.port,
        protocol: 'http',
        host: `${svc}.${namespace}.svc.cluster.local`,
      });
    }
  }
  for (const entry of istio.filter((o) => o.kind === 'ServiceEntry')) {
    const spec = entry.spec as { hosts?: string[]; addresses?: string[]; ports?: Array<{ number: number; protocol?: string }> };
    for (const host of spec.hosts ?? []) {
      for (const port of spec.ports ?? []) {
        const http = ['HTTP', 'HTTP2', 'GRPC', undefined].includes(port.protocol?.toUpperCase());
        calls.push({
          name: `${http ? 'GET' : 'TCP'} ${host}:${port.number}`,
          address: spec.addresses?.[0]?.split('/')[0] ?? '192.0.2.99',
          port: port.number,
          protocol: http ? 'http' : 'tcp',
          ...(http ? { host } : {}),
        });
      }
    }
  }
  for (const vs of istio.filter((o) => o.kind === 'VirtualService')) {
    const spec = vs.spec as { hosts?: string[]; http?: Array<{ name?: string; match?: HttpMatch[] }> };
    const namespace = vs.metadata?.namespace ?? 'default';
    const host = spec.hosts?.[0];
    if (!host || host.includes('*')) continue;
    const fqdn = host.includes('.') ? host : `${host}.${namespace}.svc.cluster.local`;
    const service = kube.find((o) => o.kind === 'Service' && `${o.metadata?.name}.${o.metadata?.namespace}.svc.cluster.local` === fqdn);
    const entry = istio.find((o) => o.kind === 'ServiceEntry' && ((o.spec as { hosts?: string[] }).hosts ?? []).includes(host));
    const port = service?.spec?.ports?.[0]?.port ?? (entry?.spec as ServiceEntrySpec | undefined)?.ports?.[0]?.number ?? 80;
    const address = service?.spec?.clusterIP ?? (entry?.spec as ServiceEntrySpec | undefined)?.addresses?.[0] ?? '192.0.2.99';
    (spec.http ?? []).forEach((rule, index) => {
      const match: HttpMatch = rule.match?.[0] ?? {};
      const uri = match.uri;
      const headers: Record<string, string> = {};
      for (const [header, condition] of Object.entries(match.headers ?? {})) {
        const value = condition.exact ?? (condition.prefix !== undefined ? `${condition.prefix}x` : undefined);
        if (value !== undefined) headers[header.toLowerCase()] = value;
      }
      calls.push({
        name: `${vs.metadata?.name} rule ${rule.name ?? index}`,
        address,
        port: match.port ?? port,
        protocol: 'http',
        host: fqdn,
        path: uri?.exact ?? (uri?.prefix !== undefined ? `${uri.prefix}` : '/'),
        ...(match.method?.exact ? { method: match.method.exact } : {}),
        headers,
      });
    });
  }
  return { name, kube, istio, mesh: {}, proxy: productpage, calls };
}

/** A concrete value a policy's pattern accepts: Istio's `*` prefix/suffix wildcards and `{*}`/`{**}` path templates filled in. */
function instanceOf(pattern: string): string {
  return pattern
    .replace(/\{\*\*\}/g, 'a/b')
    .replace(/\{\*\}/g, 'a')
    .replace(/^\*$/, 'x')
    .replace(/^\*/, 'x')
    .replace(/\*$/, 'x');
}

/**
 * A case made from the security suite's policies (xds/security/testdata/cases): the
 * workload they select (or httpbin in their namespace) serves HTTP on 8080 and TCP on
 * 9000, and the calls are derived from the rules: one per rule built to satisfy its
 * first source and operation, plus calls from an unrelated identity, in plaintext,
 * and over TCP, so each rule is seen to match and not to match.
 */
export function derivedSecurityCase(file: string, name: string): ParityCase {
  const istio = parseAllDocuments(readFileSync(file, 'utf8'))
    .map((d) => d.toJS() as IstioObject | null)
    .filter((d): d is IstioObject => d !== null);
  const selected = istio.find(
    (o) => (o.spec as SelectorSpec | undefined)?.selector?.matchLabels && o.metadata?.namespace !== 'istio-system',
  );
  const namespace =
    selected?.metadata?.namespace ?? istio.find((o) => o.metadata?.namespace !== 'istio-system')?.metadata?.namespace ?? 'foo';
  const labels: Record<string, string> = { app: 'httpbin', ...((selected?.spec as SelectorSpec | undefined)?.selector?.matchLabels ?? {}) };
  const app = labels['app'] as string;
  const proxy: ParityProxy = { name: `${app}-a`, namespace, ip: '10.244.6.1', labels: { ...labels, 'security.istio.io/tlsMode': 'istio' } };
  const kube = serviceObjects({
    name: app,
    namespace,
    clusterIP: '10.96.3.1',
    ports: [
      { name: 'http', port: 8000, targetPort: 8080 },
      { name: 'tcp', port: 9000 },
    ],
    pods: [{ name: proxy.name, ip: proxy.ip, labels, serviceAccount: app }],
  });
  const inbound = (call: Omit<ParityCall, 'mode' | 'address' | 'port' | 'protocol'> & Partial<ParityCall>): ParityCall => ({
    mode: 'inbound',
    address: proxy.ip,
    port: 8080,
    protocol: 'http',
    tls: 'mtls',
    host: `${app}.${namespace}.svc.cluster.local`,
    ...call,
  });
  const calls: ParityCall[] = [
    inbound({ name: 'GET / from a mesh client', sourcePrincipal: `spiffe://cluster.local/ns/${namespace}/sa/sleep` }),
    inbound({
      name: 'POST /admin from another namespace',
      method: 'POST',
      path: '/admin',
      sourcePrincipal: 'spiffe://cluster.local/ns/elsewhere/sa/x',
    }),
    inbound({ name: 'GET / in plaintext', tls: 'plaintext' }),
    inbound({
      name: 'TCP on 9000 from a mesh client',
      port: 9000,
      protocol: 'tcp',
      host: undefined,
      sourcePrincipal: `spiffe://cluster.local/ns/${namespace}/sa/sleep`,
    }),
  ];
  for (const policy of istio.filter((o) => o.kind === 'AuthorizationPolicy')) {
    const rules = (policy.spec as PolicySpec | undefined)?.rules ?? [];
    rules.forEach((rule, index) => {
      const source = rule.from?.[0]?.source ?? {};
      const operation = rule.to?.[0]?.operation ?? {};
      const principal =
        source.principals?.[0] !== undefined
          ? `spiffe://${instanceOf(source.principals[0])}`
          : source.namespaces?.[0] !== undefined
            ? `spiffe://cluster.local/ns/${instanceOf(source.namespaces[0])}/sa/x`
            : `spiffe://cluster.local/ns/${namespace}/sa/sleep`;
      const port = operation.ports?.[0] !== undefined ? Number(operation.ports[0]) : 8080;
      calls.push(
        inbound({
          name: `${policy.metadata?.name} rule ${index}`,
          port,
          ...(port === 9000 ? { protocol: 'tcp' as const, host: undefined } : {}),
          ...(operation.methods?.[0] ? { method: operation.methods[0] } : {}),
          ...(operation.paths?.[0] ? { path: instanceOf(operation.paths[0]) } : {}),
          ...(operation.hosts?.[0] ? { host: instanceOf(operation.hosts[0]) } : {}),
          sourcePrincipal: principal,
          ...(source.ipBlocks?.[0] ? { sourceIp: source.ipBlocks[0].split('/')[0] } : {}),
        }),
      );
    });
  }
  return { name, kube, istio, mesh: {}, proxy, calls };
}
