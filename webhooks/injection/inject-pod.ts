// The injected pod, built from typed pieces as Istio's `sidecar` and `grpc-agent`
// templates build it for proxyv2. Pure: the webhook diffs input and output into a
// JSON patch; `weft inject` prints the output.
import type { V1Container, V1EnvVar, V1Pod, V1Probe, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import { defaultStatusPort, rewriteAppProbers, shouldRewriteAppProbers, type AppProber } from './app-probers.js';
import { mergeContainer } from './container-merge.js';
import { statusAnnotation, templatesAnnotation } from './decision.js';
import type { InjectionConfig } from './injection-config.js';

export const proxyUid = 1337;
const ports = { outboundCapture: 15001, inboundCapture: 15006, agentStatus: 15020, readiness: 15021, envoyPrometheus: 15090 };
type Template = 'sidecar' | 'grpc-agent';

/**
 * Where the `grpc-agent` template's agent writes the gRPC xDS bootstrap and the app reads it,
 * as Istio's grpc-agent.yaml has it: the `istio-xds` volume is mounted at /etc/istio/proxy in
 * both containers, and the bootstrap is pilot-agent's default GRPC_XDS_BOOTSTRAP path there
 * (the agent's XDS and SDS sockets live beside it).
 */
const grpcXds = {
  volume: 'istio-xds',
  mountPath: '/etc/istio/proxy',
  bootstrap: '/etc/istio/proxy/grpc-bootstrap.json',
} as const;
/** Where the agent writes workload certificates for a proxyless app (Istio's OUTPUT_CERTS). */
const outputCerts = '/var/lib/istio/data';

const annotation = (pod: V1Pod, key: string): string | undefined => pod.metadata?.annotations?.[key];

/** The Deployment (or other controller) that owns the pod, as Istio names it in node metadata. */
export function workloadOf(pod: V1Pod, namespace: string): { name: string; owner: string } {
  const owner = pod.metadata?.ownerReferences?.find((ref) => ref.controller) ?? pod.metadata?.ownerReferences?.[0];
  const hash = pod.metadata?.labels?.['pod-template-hash'];
  if (owner?.kind === 'ReplicaSet' && hash && owner.name.endsWith(`-${hash}`)) {
    const name = owner.name.slice(0, -hash.length - 1);
    return { name, owner: `kubernetes://apis/apps/v1/namespaces/${namespace}/deployments/${name}` };
  }
  if (owner) {
    const group = owner.apiVersion.includes('/') ? `apis/${owner.apiVersion}` : `api/${owner.apiVersion}`;
    return { name: owner.name, owner: `kubernetes://${group}/namespaces/${namespace}/${owner.kind.toLowerCase()}s/${owner.name}` };
  }
  const name = pod.metadata?.name ?? pod.metadata?.generateName?.replace(/-$/, '') ?? 'unknown';
  return { name, owner: `kubernetes://api/v1/namespaces/${namespace}/pods/${name}` };
}

function canonicalLabels(pod: V1Pod, workloadName: string): Record<string, string> {
  const l = pod.metadata?.labels ?? {};
  return {
    'service.istio.io/canonical-name': l['service.istio.io/canonical-name'] ?? l['app.kubernetes.io/name'] ?? l['app'] ?? workloadName,
    'service.istio.io/canonical-revision':
      l['service.istio.io/canonical-revision'] ?? l['app.kubernetes.io/version'] ?? l['version'] ?? 'latest',
  };
}

function templateOf(pod: V1Pod): Template {
  return annotation(pod, templatesAnnotation)
    ?.split(',')
    .map((t) => t.trim())
    .includes('grpc-agent')
    ? 'grpc-agent'
    : 'sidecar';
}

function initContainer(pod: V1Pod, config: InjectionConfig, image: string): V1Container {
  const a = (key: string, fallback: string) => annotation(pod, `traffic.sidecar.istio.io/${key}`) ?? fallback;
  const excludedInbound = [
    String(ports.envoyPrometheus),
    String(ports.readiness),
    String(ports.agentStatus),
    ...a('excludeInboundPorts', '').split(','),
  ]
    .map((p) => p.trim())
    .filter(Boolean);
  const args = [
    'istio-iptables',
    '-p',
    String(ports.outboundCapture),
    '-z',
    String(ports.inboundCapture),
    '-u',
    String(proxyUid),
    '-m',
    annotation(pod, 'sidecar.istio.io/interceptionMode') ?? 'REDIRECT',
    '-i',
    a('includeOutboundIPRanges', '*'),
    '-x',
    a('excludeOutboundIPRanges', ''),
    '-b',
    a('includeInboundPorts', '*'),
    '-d',
    [...new Set(excludedInbound)].join(','),
    ...(a('excludeOutboundPorts', '') ? ['-o', a('excludeOutboundPorts', '')] : []),
    ...(a('includeOutboundPorts', '') ? ['-q', a('includeOutboundPorts', '')] : []),
    '--log_output_level=default:info',
  ];
  return {
    name: 'istio-init',
    image,
    args,
    resources: { requests: { cpu: '10m', memory: '40Mi' }, limits: { cpu: '2', memory: '1Gi' } },
    securityContext: {
      allowPrivilegeEscalation: false,
      privileged: false,
      readOnlyRootFilesystem: false,
      runAsGroup: 0,
      runAsNonRoot: false,
      runAsUser: 0,
      capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
    },
  };
}

function proxyResources(pod: V1Pod, config: InjectionConfig): V1Container['resources'] {
  const requests: Record<string, string> = { cpu: '100m', memory: '128Mi', ...config.proxyResources.requests };
  const limits: Record<string, string> = { cpu: '2', memory: '1Gi', ...config.proxyResources.limits };
  const set = (target: Record<string, string>, key: string, value: string | undefined) => {
    if (value) target[key] = value;
  };
  set(requests, 'cpu', annotation(pod, 'sidecar.istio.io/proxyCPU'));
  set(requests, 'memory', annotation(pod, 'sidecar.istio.io/proxyMemory'));
  set(limits, 'cpu', annotation(pod, 'sidecar.istio.io/proxyCPULimit'));
  set(limits, 'memory', annotation(pod, 'sidecar.istio.io/proxyMemoryLimit'));
  return { requests, limits };
}

/** Everything the proxy container is built from, worked out once per pod. */
interface ProxyInputs {
  pod: V1Pod;
  namespace: string;
  config: InjectionConfig;
  template: Template;
  /** The application's containers as submitted (their ports and names go into node metadata). */
  appContainers: V1Container[];
  /** Original application probes and hooks, keyed by the agent's path (ISTIO_KUBE_APP_PROBERS). */
  probers: Record<string, AppProber>;
  image: string;
}

function proxyEnv({ pod, namespace, config, template, appContainers, probers }: ProxyInputs): V1EnvVar[] {
  const field = (name: string, fieldPath: string): V1EnvVar => ({ name, valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath } } });
  const workload = workloadOf(pod, namespace);
  const podPorts = appContainers.flatMap((c) =>
    (c.ports ?? []).map((p) => ({ ...(p.name ? { name: p.name } : {}), containerPort: p.containerPort, protocol: p.protocol ?? 'TCP' })),
  );
  const env: V1EnvVar[] = [
    { name: 'PILOT_CERT_PROVIDER', value: 'istiod' },
    { name: 'CA_ADDR', value: config.discoveryAddress },
    field('POD_NAME', 'metadata.name'),
    field('POD_NAMESPACE', 'metadata.namespace'),
    field('INSTANCE_IP', 'status.podIP'),
    field('SERVICE_ACCOUNT', 'spec.serviceAccountName'),
    field('HOST_IP', 'status.hostIP'),
    { name: 'ISTIO_CPU_LIMIT', valueFrom: { resourceFieldRef: { resource: 'limits.cpu', divisor: '0' } } },
    { name: 'PROXY_CONFIG', value: JSON.stringify({ discoveryAddress: config.discoveryAddress }) },
    { name: 'ISTIO_META_POD_PORTS', value: JSON.stringify(podPorts) },
    { name: 'ISTIO_META_APP_CONTAINERS', value: appContainers.map((c) => c.name).join(',') },
    { name: 'GOMEMLIMIT', valueFrom: { resourceFieldRef: { resource: 'limits.memory', divisor: '0' } } },
    { name: 'GOMAXPROCS', valueFrom: { resourceFieldRef: { resource: 'limits.cpu', divisor: '0' } } },
    { name: 'ISTIO_META_CLUSTER_ID', value: config.clusterId },
    field('ISTIO_META_NODE_NAME', 'spec.nodeName'),
    { name: 'ISTIO_META_INTERCEPTION_MODE', value: annotation(pod, 'sidecar.istio.io/interceptionMode') ?? 'REDIRECT' },
    { name: 'ISTIO_META_WORKLOAD_NAME', value: workload.name },
    { name: 'ISTIO_META_OWNER', value: workload.owner },
    { name: 'ISTIO_META_MESH_ID', value: config.meshId },
    { name: 'TRUST_DOMAIN', value: config.trustDomain },
  ];
  if (Object.keys(probers).length > 0) env.push({ name: 'ISTIO_KUBE_APP_PROBERS', value: JSON.stringify(probers) });
  if (template === 'grpc-agent') {
    env.push(
      { name: 'ISTIO_META_GENERATOR', value: 'grpc' },
      { name: 'OUTPUT_CERTS', value: outputCerts },
      // gRPC resolves xds:/// names itself; no need for the agent's DNS proxy.
      { name: 'ISTIO_META_DNS_CAPTURE', value: 'false' },
      { name: 'DISABLE_ENVOY', value: 'true' },
      // pilot-agent's own default, pinned: its default is relative to the working directory.
      { name: 'GRPC_XDS_BOOTSTRAP', value: grpcXds.bootstrap },
    );
  }
  return env;
}

const mount = (name: string, mountPath: string): V1VolumeMount => ({ name, mountPath });

function sidecarVolumes(template: Template): V1Volume[] {
  // grpc-agent has no Envoy: Istio's template gives it `istio-xds` where the sidecar has
  // `istio-envoy`, and no credential socket.
  const volumes: V1Volume[] = [
    { name: 'workload-socket', emptyDir: {} },
    ...(template === 'sidecar' ? [{ name: 'credential-socket', emptyDir: {} }] : []),
    { name: 'workload-certs', emptyDir: {} },
    template === 'grpc-agent'
      ? { name: grpcXds.volume, emptyDir: { medium: 'Memory' } }
      : { name: 'istio-envoy', emptyDir: { medium: 'Memory' } },
    { name: 'istio-data', emptyDir: {} },
    {
      name: 'istio-podinfo',
      downwardAPI: {
        items: [
          { path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } },
          { path: 'annotations', fieldRef: { fieldPath: 'metadata.annotations' } },
        ],
      },
    },
    // The agent authenticates to the CA with this token (audience istio-ca), as with istiod.
    {
      name: 'istio-token',
      projected: { sources: [{ serviceAccountToken: { audience: 'istio-ca', expirationSeconds: 43_200, path: 'istio-token' } }] },
    },
    { name: 'istiod-ca-cert', configMap: { name: 'istio-ca-root-cert' } },
  ];
  return volumes;
}

function proxyContainer(inputs: ProxyInputs): V1Container {
  const { pod, config, template, image } = inputs;
  const logLevel = annotation(pod, 'sidecar.istio.io/logLevel') ?? config.proxyLogLevel;
  const mounts = [
    mount('workload-socket', '/var/run/secrets/workload-spiffe-uds'),
    ...(template === 'sidecar' ? [mount('credential-socket', '/var/run/secrets/credential-uds')] : []),
    mount('workload-certs', '/var/run/secrets/workload-spiffe-credentials'),
    mount('istiod-ca-cert', '/var/run/secrets/istio'),
    mount('istio-data', outputCerts),
    template === 'grpc-agent' ? mount(grpcXds.volume, grpcXds.mountPath) : mount('istio-envoy', '/etc/istio/proxy'),
    mount('istio-token', '/var/run/secrets/tokens'),
    mount('istio-podinfo', '/etc/istio/pod'),
  ];
  const readiness: V1Probe =
    template === 'grpc-agent'
      ? { httpGet: { path: '/healthz/ready', port: ports.agentStatus }, periodSeconds: 15, timeoutSeconds: 3, failureThreshold: 4 }
      : { httpGet: { path: '/healthz/ready', port: ports.readiness }, periodSeconds: 15, timeoutSeconds: 3, failureThreshold: 4 };
  return {
    name: 'istio-proxy',
    image,
    args: [
      'proxy',
      'sidecar',
      '--domain',
      `$(POD_NAMESPACE).svc.${config.clusterDomain}`,
      `--proxyLogLevel=${logLevel}`,
      '--proxyComponentLogLevel=misc:error',
      '--log_output_level=default:info',
    ],
    env: proxyEnv(inputs),
    ports: template === 'grpc-agent' ? [] : [{ containerPort: ports.envoyPrometheus, name: 'http-envoy-prom', protocol: 'TCP' }],
    readinessProbe: readiness,
    ...(template === 'sidecar'
      ? {
          startupProbe: {
            httpGet: { path: '/healthz/ready', port: ports.readiness },
            periodSeconds: 1,
            failureThreshold: 600,
            timeoutSeconds: 3,
          },
        }
      : {}),
    resources: proxyResources(pod, config),
    securityContext: {
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      privileged: false,
      readOnlyRootFilesystem: true,
      runAsGroup: proxyUid,
      runAsNonRoot: true,
      runAsUser: proxyUid,
    },
    volumeMounts: mounts,
  };
}

/** An app container of the `grpc-agent` template: it reads the agent's bootstrap, sockets and certificates. */
function grpcAppContainer(container: V1Container): V1Container {
  const env: V1EnvVar[] = [
    { name: 'GRPC_XDS_EXPERIMENTAL_SECURITY_SUPPORT', value: 'true' },
    // grpc-js-xds and grpc-java enforce AuthorizationPolicy (xDS RBAC) only when asked to.
    { name: 'GRPC_XDS_EXPERIMENTAL_RBAC', value: 'true' },
    { name: 'GRPC_XDS_BOOTSTRAP', value: grpcXds.bootstrap },
  ];
  const mounts = [
    mount('istio-data', outputCerts),
    mount(grpcXds.volume, grpcXds.mountPath),
    mount('workload-certs', '/var/run/secrets/workload-spiffe-credentials'),
  ];
  const injectedEnv = new Set(env.map((e) => e.name));
  const injectedPaths = new Set(mounts.map((m) => m.mountPath));
  return {
    ...container,
    env: [...(container.env ?? []).filter((e) => !injectedEnv.has(e.name)), ...env],
    volumeMounts: [...(container.volumeMounts ?? []).filter((m) => !injectedPaths.has(m.mountPath)), ...mounts],
  };
}

const proxyName = 'istio-proxy';
const initName = 'istio-init';

/**
 * Why a pod cannot be injected as submitted, naming the field (e.g.
 * `spec.containers[0].ports is not a list`), or undefined when its shape is sound.
 * The API server checks these too, but only after the webhook ran; the injector must
 * answer with a refusal rather than fail on them. `at` prefixes the field paths
 * (`spec.template.` for a workload's pod template).
 */
export function podShapeProblem(pod: unknown, at = ''): string | undefined {
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObject(pod)) return `${at || 'the pod'} is not an object`;
  const metadata = pod['metadata'];
  if (metadata !== undefined && metadata !== null) {
    if (!isObject(metadata)) return `${at}metadata is not an object`;
    for (const field of ['labels', 'annotations']) {
      const map = metadata[field];
      if (map === undefined || map === null) continue;
      if (!isObject(map)) return `${at}metadata.${field} is not a map`;
      const bad = Object.entries(map).find(([, v]) => typeof v !== 'string');
      if (bad) return `${at}metadata.${field}.${bad[0]} is not a string`;
    }
    for (const field of ['name', 'generateName', 'namespace']) {
      const value = metadata[field];
      if (value !== undefined && value !== null && typeof value !== 'string') return `${at}metadata.${field} is not a string`;
    }
    // The workload name and ISTIO_META_OWNER come from the controlling owner; the API server requires these fields as strings.
    const owners = metadata['ownerReferences'];
    if (owners !== undefined && owners !== null) {
      if (!Array.isArray(owners)) return `${at}metadata.ownerReferences is not a list`;
      for (const [i, owner] of owners.entries()) {
        if (!isObject(owner)) return `${at}metadata.ownerReferences[${i}] is not an object`;
        for (const field of ['apiVersion', 'kind', 'name'])
          if (typeof owner[field] !== 'string' || !owner[field]) return `${at}metadata.ownerReferences[${i}].${field} is not a string`;
      }
    }
  }
  const spec = pod['spec'];
  if (!isObject(spec)) return `${at}spec is not an object`;
  if (!Array.isArray(spec['containers'])) return `${at}spec.containers is not a list`;
  for (const list of ['containers', 'initContainers']) {
    const containers = spec[list];
    if (containers === undefined || containers === null) continue;
    if (!Array.isArray(containers)) return `${at}spec.${list} is not a list`;
    for (const [i, c] of containers.entries()) {
      const here = `${at}spec.${list}[${i}]`;
      if (!isObject(c)) return `${here} is not an object`;
      if (typeof c['name'] !== 'string' || !c['name']) return `${here}.name is not a string`;
      for (const field of ['ports', 'env', 'volumeMounts', 'args', 'command']) {
        const value = c[field];
        if (value !== undefined && value !== null && !Array.isArray(value)) return `${here}.${field} is not a list`;
        if (Array.isArray(value) && field !== 'args' && field !== 'command' && value.some((item) => !isObject(item)))
          return `${here}.${field} has an item that is not an object`;
      }
      for (const field of ['readinessProbe', 'livenessProbe', 'startupProbe', 'lifecycle', 'resources', 'securityContext']) {
        const value = c[field];
        if (value !== undefined && value !== null && !isObject(value)) return `${here}.${field} is not an object`;
      }
    }
  }
  for (const field of ['volumes', 'imagePullSecrets']) {
    const value = spec[field];
    if (value !== undefined && value !== null && !Array.isArray(value)) return `${at}spec.${field} is not a list`;
  }
  return undefined;
}

/** Istio's adjustInitContainerUser: a user's istio-proxy running as another uid moves istio-init's `-u` with it. */
function adjustInitUser(init: V1Container, userProxy: V1Container | undefined, pod: V1Pod): V1Container {
  const uid = userProxy?.securityContext?.runAsUser;
  if (!uid || annotation(pod, 'sidecar.istio.io/interceptionMode') === 'TPROXY') return init;
  const args = [...(init.args ?? [])];
  const at = args.indexOf('-u');
  if (at >= 0 && at + 1 < args.length) args[at + 1] = String(uid);
  return { ...init, args };
}

/**
 * The pod with Istio's sidecar (or grpc-agent) injected, as istiod's webhook would
 * build it: the template's containers and volumes; a user's own `istio-proxy` (in
 * containers or initContainers, with or without `image: auto`) and `istio-init` merged
 * field by field into the injected ones, never duplicated (their originals recorded in
 * `proxy.istio.io/overrides`); probes and hooks rewritten to the agent unless
 * `sidecar.istio.io/rewriteAppHTTPProbers: "false"`. An already injected pod (it carries
 * `sidecar.istio.io/status`) is returned unchanged. The pod's shape must have passed
 * `podShapeProblem`.
 */
export function injectPod(pod: V1Pod, namespace: string, config: InjectionConfig): V1Pod {
  if (annotation(pod, statusAnnotation)) return pod;
  const template = templateOf(pod);
  const image = annotation(pod, 'sidecar.istio.io/proxyImage') ?? config.proxyImage;
  const spec = pod.spec ?? { containers: [] };
  // The user's own versions of the injected containers (Istio's FindContainerFromPod: containers first).
  const userContainer = (name: string) => spec.containers.find((c) => c.name === name) ?? spec.initContainers?.find((c) => c.name === name);
  const userProxy = userContainer(proxyName);
  const userInit = userContainer(initName);
  const injectedNames = new Set([proxyName, ...(template === 'sidecar' && !config.cni ? [initName] : [])]);
  const appContainers = spec.containers.filter((c) => !injectedNames.has(c.name));
  const userInitContainers = (spec.initContainers ?? []).filter((c) => !injectedNames.has(c.name));

  const statusPort = defaultStatusPort;
  const rewrite = shouldRewriteAppProbers(pod.metadata?.annotations);
  const rewrittenInit = rewrite ? rewriteAppProbers(userInitContainers, statusPort) : { containers: userInitContainers, probers: {} };
  const rewrittenApps = rewrite ? rewriteAppProbers(appContainers, statusPort) : { containers: appContainers, probers: {} };
  const probers = Object.fromEntries(
    Object.entries({ ...rewrittenInit.probers, ...rewrittenApps.probers }).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
  const workloadContainers =
    template === 'grpc-agent' ? rewrittenApps.containers.map((c) => grpcAppContainer(c)) : rewrittenApps.containers;
  const injectedProxy = proxyContainer({ pod, namespace, config, template, appContainers, probers, image });
  const proxy = userProxy ? mergeContainer(injectedProxy, userProxy) : injectedProxy;
  const injectedInit =
    template === 'sidecar' && !config.cni ? adjustInitUser(initContainer(pod, config, image), userProxy, pod) : undefined;
  const capture = injectedInit ? [userInit ? mergeContainer(injectedInit, userInit) : injectedInit] : [];
  const volumes = sidecarVolumes(template);
  const injectedVolumeNames = new Set(volumes.map((v) => v.name));
  const initContainers = config.nativeSidecars
    ? [...capture, { ...proxy, restartPolicy: 'Always' }, ...rewrittenInit.containers]
    : [...capture, ...rewrittenInit.containers];
  const containers = config.nativeSidecars ? workloadContainers : [proxy, ...workloadContainers];
  const status = {
    initContainers: initContainers.filter((c) => c.name.startsWith('istio-')).map((c) => c.name),
    containers: config.nativeSidecars ? [] : [proxyName],
    volumes: volumes.map((v) => v.name),
    imagePullSecrets: null,
    revision: config.revision || 'default',
  };
  const overrides = {
    ...(userProxy && spec.containers.includes(userProxy) ? { containers: [userProxy] } : {}),
    ...(userInit || (userProxy && !spec.containers.includes(userProxy))
      ? { initContainers: [userProxy && !spec.containers.includes(userProxy) ? userProxy : undefined, userInit].filter(Boolean) }
      : {}),
  };
  const workload = workloadOf(pod, namespace);
  const firstApp = appContainers[0]?.name;
  return {
    ...pod,
    metadata: {
      ...pod.metadata,
      labels: { ...pod.metadata?.labels, 'security.istio.io/tlsMode': 'istio', ...canonicalLabels(pod, workload.name) },
      annotations: {
        ...pod.metadata?.annotations,
        ...(firstApp
          ? { 'kubectl.kubernetes.io/default-container': firstApp, 'kubectl.kubernetes.io/default-logs-container': firstApp }
          : {}),
        'prometheus.io/scrape': pod.metadata?.annotations?.['prometheus.io/scrape'] ?? 'true',
        'prometheus.io/port': pod.metadata?.annotations?.['prometheus.io/port'] ?? String(ports.agentStatus),
        'prometheus.io/path': pod.metadata?.annotations?.['prometheus.io/path'] ?? '/stats/prometheus',
        ...(Object.keys(overrides).length > 0 ? { 'proxy.istio.io/overrides': JSON.stringify(overrides) } : {}),
        'istio.io/rev': config.revision || 'default',
        [statusAnnotation]: JSON.stringify(status),
      },
    },
    spec: {
      ...spec,
      initContainers,
      containers,
      // A user's volume of an injected name would be a duplicate the API server refuses: the template's wins, as in Istio's merge.
      volumes: [...(spec.volumes ?? []).filter((v) => !injectedVolumeNames.has(v.name)), ...volumes],
    },
  };
}
