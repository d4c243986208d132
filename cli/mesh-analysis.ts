// `weft analyze`: what istioctl analyze says, for the objects given (files, a live
// cluster, or both), with Istio's message codes. Pure: objects in, messages out.
//   IST0106 SchemaValidationError     an Istio object Weft's validating webhook would refuse (or warn about)
//   IST0101 ReferencedResourceNotFound a route to a host or subset that does not exist (xds/traffic/config-analysis),
//                                     a Gateway credentialName with no Secret (xds/traffic/gateway-secret-analyzer)
//   IST0127 NoMatchingWorkloadsFound   a selector that matches no pod or WorkloadEntry
//   IST0103 PodMissingProxy            a pod the injector would inject, without the istio-proxy container
//   IST0102 NamespaceNotInjected       a namespace with no injection label at all
//   IST0123, IST0118, IST0108, IST0107 Kubernetes objects' labels, port names, annotations (object-analyzers.ts)
//   IST0109, IST0130, IST0131, IST0128, IST0129, IST0110, IST0111, IST0157, IST0159, IST0160 (xds/traffic/config-analysis,
//                                     also written to status)
//   WEFT0001-WEFT0006                 what Weft does not apply or enforce as written (docs/analysis.md), as on status
// `analyzers` lists them all, for `weft analyze --list-analyzers`.
import type { V1EndpointSlice, V1Pod, V1Service } from '@kubernetes/client-node';
import {
  injectRequired,
  injectorWebhooks,
  revisionLabel,
  selectingWebhook,
  type InjectorWebhook,
} from '../istio/injection/injection-policy.js';
import { describeIssue, validateIstioObject } from '../istio/validation/validate-istio-object.js';
import { istioConfigOf, istioKinds, meshModelOf, type IstioObject } from '../xds/model/mesh-model-of.js';
import {
  analyzeNetworking,
  analyzeSecurity,
  analyzeTelemetry,
  gatewayCredentialReferences,
  gatewaySecretMessages,
  type GatewayWorkload,
  type MeshTelemetry,
} from '../xds/traffic/config-analysis.js';
import { annotatedKinds, annotationFindings, injectionLabelFindings, portNameFindings } from './object-analyzers.js';
import { gatewayApiFindings } from './gateway-api-findings.js';

/** An analyzer as istioctl lists it (`istioctl analyze -L`): Istio's name, its description, the codes it reports. */
export interface AnalyzerInfo {
  name: string;
  description: string;
  codes: readonly string[];
}

/** Every analyzer `weft analyze` runs, under Istio's names where Istio has the analyzer. */
export const analyzers: readonly AnalyzerInfo[] = [
  {
    name: 'annotations.K8sAnalyzer',
    description: 'Checks for misplaced and invalid Istio annotations in Kubernetes resources',
    codes: ['IST0107', 'IST0108'],
  },
  {
    name: 'destinationrule.CaCertificateAnalyzer',
    description: 'Checks if caCertificates is set when TLS mode is SIMPLE/MUTUAL',
    codes: ['IST0128', 'IST0129'],
  },
  {
    name: 'destinationrule.HostAnalyzer',
    description: 'Checks that the host of each destination rule is a Service or ServiceEntry host',
    codes: ['IST0101'],
  },
  {
    name: 'gateway.ConflictingGatewayAnalyzer',
    description: "Checks a gateway's selector, port number and hosts",
    codes: ['IST0145'],
  },
  {
    name: 'gateway.SecretAnalyzer',
    description: "Checks a gateway's referenced secrets for correctness",
    codes: ['IST0101'],
  },
  {
    name: 'gateway.IngressGatewayPortAnalyzer',
    description: "Checks a gateway's ports against the gateway's Kubernetes service ports",
    codes: ['IST0101', 'IST0162'],
  },
  {
    name: 'injection.Analyzer',
    description: 'Checks conditions related to Istio sidecar injection',
    codes: ['IST0102', 'IST0103', 'IST0123'],
  },
  {
    name: 'schema.ValidationAnalyzer',
    description: 'Runs schema validation as an analyzer on Istio resources',
    codes: ['IST0106', 'IST0130', 'IST0131'],
  },
  {
    name: 'selector.WorkloadSelectorAnalyzer',
    description: 'Checks that the workload selectors of policies, Sidecars and DestinationRules match a workload',
    codes: ['IST0127'],
  },
  { name: 'service.PortNameAnalyzer', description: 'Checks the port names associated with each service', codes: ['IST0118'] },
  {
    name: 'sidecar.SelectorAnalyzer',
    description: 'Checks that no two Sidecars select the same workload, or apply namespace-wide in one namespace',
    codes: ['IST0110', 'IST0111'],
  },
  {
    name: 'telemetry.ProviderAnalyzer',
    description: 'Validates that providers in telemetry resource is valid',
    codes: ['IST0157'],
  },
  {
    name: 'telemetry.SelectorAnalyzer',
    description: 'Checks that no two Telemetries select the same workload, or apply namespace-wide in one namespace',
    codes: ['IST0159', 'IST0160'],
  },
  {
    name: 'weft.NotAppliedAnalyzer',
    description:
      'Reports what Weft does not apply of a valid object: WorkloadGroups, delegate VirtualServices, targetRef policies, fields no proxy or one kind of proxy gets, objects an older one overrides',
    codes: ['WEFT0004', 'WEFT0005', 'WEFT0006'],
  },
  {
    name: 'weft.GatewayApiStatusAnalyzer',
    description:
      'Reports Gateway API objects whose status, as weftd computes it, says a condition does not hold (unresolved or unpermitted references, routes a listener refuses, Gateways without an address)',
    codes: ['WEFT0007'],
  },
  {
    name: 'weft.SecurityEnforcementAnalyzer',
    description:
      'Reports security policy that a proxy kind would not enforce as written, port-level mTLS on ports no selected workload serves, and JWKS weftd could not fetch',
    codes: ['WEFT0001', 'WEFT0002', 'WEFT0003'],
  },
  {
    name: 'virtualservice.ConflictingMeshGatewayHostsAnalyzer',
    description: 'Checks if multiple virtual services associated with the mesh gateway have conflicting hosts',
    codes: ['IST0109'],
  },
  {
    name: 'virtualservice.DestinationHostAnalyzer',
    description: 'Checks the destination hosts associated with each virtual service',
    codes: ['IST0101'],
  },
  {
    name: 'virtualservice.DestinationRuleAnalyzer',
    description: 'Checks the destination rules associated with each virtual service',
    codes: ['IST0101'],
  },
  {
    name: 'virtualservice.GatewayAnalyzer',
    description: 'Checks the gateways associated with each virtual service',
    codes: ['IST0101', 'IST0132'],
  },
];

/** istioctl analyze -L's text: `* name:` and the description indented, sorted by name. */
export function analyzersAsString(list: readonly AnalyzerInfo[] = analyzers): string {
  return [...list]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((a) => `* ${a.name}:\n    ${a.description} (${a.codes.join(', ')})\n`)
    .join('');
}

export type MessageLevel = 'Error' | 'Warning' | 'Info';
export const messageLevels: readonly MessageLevel[] = ['Error', 'Warning', 'Info'];

export interface AnalyzerMessage {
  code: string;
  name: string;
  level: MessageLevel;
  resource: { kind: string; namespace?: string; name: string };
  /** The file the resource came from, when it came from one. */
  origin?: string;
  message: string;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    generation?: number;
    creationTimestamp?: string | Date;
  };
  spec?: unknown;
  status?: unknown;
}

export interface SourcedObject {
  object: KubeObject;
  /** File name, for objects read from files. */
  origin?: string;
}

export interface AnalysisOptions {
  /** Namespaces whose resources are reported on; every namespace when absent. */
  namespaces?: ReadonlySet<string>;
  /** The namespace of objects (from files) that name none. */
  defaultNamespace?: string;
  clusterDomain?: string;
  /** Istio's root namespace: selectors there match workloads of every namespace. */
  rootNamespace?: string;
  /** Namespace labels whose value `enabled` turns injection on (Weft's own first). */
  injectionLabels?: readonly string[];
  /** The control planes' revisions ('' is the default one), whose webhooks decide which pods should have a proxy. */
  revisions?: readonly string[];
  /** Whether the control planes honour istio-injection and istio.io/rev=default (the MeshInstallation's honorIstioLabels). */
  honorIstioLabels?: boolean;
  /** Namespaces of the control plane and the operator: never injected, never reported. */
  controlPlaneNamespaces?: ReadonlySet<string>;
  /** Whether the workloads (pods) are known: a live cluster, or files that carry them. */
  workloadsKnown?: boolean;
  /**
   * Whether the Secrets Gateways name are known (a live cluster, or files that carry Secrets): the
   * objects then include them (kind `Secret`, metadata only is enough), and a `credentialName` with
   * no Secret is IST0101.
   */
  secretsKnown?: boolean;
  /** Secrets (`namespace/name`) that could not be read (no permission): their absence is not reported. */
  unreadableSecrets?: ReadonlySet<string>;
  /** The mesh's extension and default providers (the MeshInstallation's meshConfig): Telemetry providers are checked against them when known. */
  meshTelemetry?: Pick<MeshTelemetry, 'extensionProviders' | 'defaultProviders'>;
}

const systemNamespaces = new Set(['kube-system', 'kube-public', 'kube-node-lease', 'local-path-storage', 'istio-system']);
const workloadKinds = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job', 'CronJob']);

const istioGroups = new Set(['networking.istio.io', 'security.istio.io', 'telemetry.istio.io']);
const groupOf = (object: KubeObject) => (object.apiVersion?.includes('/') ? object.apiVersion.split('/')[0] : '');
const isIstio = (object: KubeObject) => istioGroups.has(groupOf(object) ?? '');

function resourceOf(object: KubeObject, defaultNamespace: string): AnalyzerMessage['resource'] {
  const kind = object.kind ?? 'Unknown';
  const name = object.metadata?.name ?? '';
  return kind === 'Namespace' ? { kind, name } : { kind, namespace: object.metadata?.namespace ?? defaultNamespace, name };
}

/** Every message for the objects given, sorted for stable output. */
export function analyzeMesh(sourced: readonly SourcedObject[], options: AnalysisOptions = {}): AnalyzerMessage[] {
  const clusterDomain = options.clusterDomain ?? 'cluster.local';
  const rootNamespace = options.rootNamespace ?? 'istio-system';
  const injectionLabels = options.injectionLabels ?? ['weft-injection', 'istio-injection'];
  const controlPlane = options.controlPlaneNamespaces ?? new Set<string>();
  const defaultNamespace = options.defaultNamespace ?? 'default';
  const messages: AnalyzerMessage[] = [];
  const originOf = new Map<string, string>();
  const key = (kind: string, namespace: string | undefined, name: string) => `${kind}/${namespace ?? ''}/${name}`;
  // Objects without a namespace in files land in the default one, as kubectl apply would put them.
  const objects = sourced.map(({ object, origin }) => {
    const normalized =
      object.kind !== 'Namespace' && !object.metadata?.namespace
        ? { ...object, metadata: { ...object.metadata, namespace: defaultNamespace } }
        : object;
    const resource = resourceOf(normalized, defaultNamespace);
    if (origin) originOf.set(key(resource.kind, resource.namespace, resource.name), origin);
    return normalized;
  });
  const report = (code: string, name: string, level: MessageLevel, object: KubeObject, message: string) => {
    const resource = resourceOf(object, defaultNamespace);
    const origin = originOf.get(key(resource.kind, resource.namespace, resource.name));
    messages.push({ code, name, level, resource, ...(origin ? { origin } : {}), message });
  };
  const ofKind = (kind: string) => objects.filter((o) => o.kind === kind);

  // IST0106: what the validating webhook would refuse; such objects stay out of the model.
  const invalid = new Set<KubeObject>();
  for (const object of objects.filter(isIstio)) {
    for (const issue of validateIstioObject(object)) {
      if (!issue.warning) invalid.add(object);
      report(
        'IST0106',
        'SchemaValidationError',
        issue.warning ? 'Warning' : 'Error',
        object,
        `Schema validation error: ${describeIssue(issue)}`,
      );
    }
  }

  // IST0101: references among the objects, through the same analysis weftd writes to status.
  const istioByPlural = Object.fromEntries(
    istioKinds.map(({ group, kind, plural }) => [
      plural,
      objects.filter((o) => o.kind === kind && groupOf(o) === group && !invalid.has(o)) as IstioObject[],
    ]),
  );
  const pods = ofKind('Pod') as V1Pod[];
  try {
    const model = meshModelOf(
      ofKind('Service') as V1Service[],
      ofKind('EndpointSlice') as V1EndpointSlice[],
      clusterDomain,
      pods,
      istioConfigOf(istioByPlural),
      rootNamespace,
    );
    if (options.meshTelemetry) model.meshConfig = { telemetry: options.meshTelemetry };
    // IST0127 is checked below against every kind of workload the input carries (pods, WorkloadEntries,
    // workload templates), not only the endpoints the model knows; the security verdicts' own is left out.
    const verdicts = [
      ...analyzeNetworking(model),
      ...analyzeSecurity(model).map((v) => ({ ...v, messages: v.messages.filter((m) => m.code !== 'IST0127') })),
      ...analyzeTelemetry(model),
    ];
    for (const verdict of verdicts) {
      const object = objects.find(
        (o) => o.kind === verdict.kind && o.metadata?.namespace === verdict.namespace && o.metadata?.name === verdict.name,
      );
      for (const m of verdict.messages)
        if (object)
          report(
            m.code,
            m.name,
            m.level === 'ERROR' ? 'Error' : m.level === 'WARNING' ? 'Warning' : 'Info',
            object,
            // The gateway analyzers' IST0101 text is Istio's own (`Referenced selector not found: ...`).
            m.code === 'IST0101' && !m.message.startsWith('Referenced ') ? `Referenced resource not found: ${m.message}` : m.message,
          );
    }
  } catch (error) {
    // A shape the CRD schema would refuse (the API server checks it, files are not checked): say so, go on.
    messages.push({
      code: 'IST0106',
      name: 'SchemaValidationError',
      level: 'Error',
      resource: { kind: 'Config', name: 'networking' },
      message: `the networking config could not be cross-checked: ${error instanceof Error ? error.message : String(error)}`,
    });
  }

  // WEFT0007: Gateway API objects whose status would say a condition does not hold (a reference that does not resolve...).
  for (const finding of gatewayApiFindings(objects, clusterDomain)) {
    const object = objects.find(
      (o) =>
        o.kind === finding.kind &&
        o.metadata?.name === finding.name &&
        (finding.namespace === undefined || o.metadata?.namespace === finding.namespace),
    );
    if (object) report('WEFT0007', 'GatewayApiConditionNotMet', finding.level, object, finding.message);
  }

  // IST0101 (gateway.SecretAnalyzer): each credentialName's Secret, in the namespace of the pods the Gateway selects.
  if (options.workloadsKnown && options.secretsKnown) {
    const secrets = new Set(ofKind('Secret').map((s) => `${s.metadata?.namespace ?? ''}/${s.metadata?.name ?? ''}`));
    const unreadable = options.unreadableSecrets ?? new Set<string>();
    const exists = (namespace: string, name: string) =>
      secrets.has(`${namespace}/${name}`) ? true : unreadable.has(`${namespace}/${name}`) ? undefined : false;
    const gatewayPods = gatewayWorkloadsOf(objects, defaultNamespace);
    for (const object of istioByPlural['gateways'] ?? []) {
      const gateway = gatewayConfigOf(object);
      for (const m of gatewaySecretMessages(gateway, gatewayPods, exists)) report(m.code, m.name, 'Error', object, m.message);
    }
  }

  // IST0127: selectors that match no workload (only when the workloads are known).
  if (options.workloadsKnown) {
    const workloads: Array<{ namespace: string; labels: Record<string, string> }> = [
      ...pods.map((p) => ({ namespace: p.metadata?.namespace ?? 'default', labels: p.metadata?.labels ?? {} })),
      ...objects
        .filter((o) => o.kind === 'WorkloadEntry')
        .map((o) => ({
          namespace: o.metadata?.namespace ?? 'default',
          labels: (o.spec as { labels?: Record<string, string> })?.labels ?? {},
        })),
      ...objects
        .filter((o) => workloadKinds.has(o.kind ?? ''))
        .map((o) => ({ namespace: o.metadata?.namespace ?? 'default', labels: podTemplateLabels(o) })),
    ];
    for (const object of objects.filter((o) => isIstio(o) && !invalid.has(o))) {
      const selector = selectorOf(object);
      if (!selector || Object.keys(selector).length === 0) continue;
      const namespace = object.metadata?.namespace ?? 'default';
      const matches = workloads.some(
        (w) => (namespace === rootNamespace || w.namespace === namespace) && Object.entries(selector).every(([k, v]) => w.labels[k] === v),
      );
      if (!matches)
        report(
          'IST0127',
          'NoMatchingWorkloadsFound',
          'Warning',
          object,
          `No matching workloads for this resource with the following labels: ${Object.entries(selector)
            .map(([k, v]) => `${k}=${v}`)
            .join(',')}`,
        );
    }
  }

  // IST0123, IST0102 and IST0103: injection, per namespace, with the injector's own decision.
  const weftLabel = injectionLabels[0] ?? 'weft-injection';
  const webhooks: InjectorWebhook[][] = (options.revisions ?? ['']).map((revision) =>
    injectorWebhooks({
      revision,
      namespaceLabel: weftLabel,
      ...(options.honorIstioLabels !== undefined ? { honorIstioLabels: options.honorIstioLabels } : {}),
      excludedNamespaces: [...controlPlane],
    }),
  );
  for (const namespace of ofKind('Namespace')) {
    const name = namespace.metadata?.name ?? '';
    if (systemNamespaces.has(name) || controlPlane.has(name)) continue;
    const nsLabels = namespace.metadata?.labels ?? {};
    for (const f of injectionLabelFindings(namespace.metadata, weftLabel)) report(f.code, f.name, f.level, namespace, f.message);
    const labelled = injectionLabels.some((label) => label in nsLabels) || revisionLabel in nsLabels;
    if (!labelled) {
      report(
        'IST0102',
        'NamespaceNotInjected',
        'Info',
        namespace,
        `The namespace is not enabled for Istio injection. Run 'kubectl label namespace ${name} ${weftLabel}=enabled' to enable it, or 'kubectl label namespace ${name} ${weftLabel}=disabled' to explicitly mark it as not needing injection.`,
      );
    }
    for (const pod of pods.filter((p) => p.metadata?.namespace === name)) {
      if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') continue;
      const podLabels = pod.metadata?.labels ?? {};
      const selected = webhooks.some((hooks) => selectingWebhook(hooks, name, nsLabels, podLabels));
      if (!selected || !injectRequired(pod, name, { ignoredNamespaces: [...controlPlane] }).inject) continue;
      const containers = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])];
      if (containers.some((c) => c.name === 'istio-proxy')) continue;
      report(
        'IST0103',
        'PodMissingProxy',
        'Warning',
        pod as KubeObject,
        `The pod ${pod.metadata?.name ?? ''} is missing the Istio proxy. This can often be resolved by restarting or redeploying the workload.`,
      );
    }
  }

  // IST0118: Service port names; IST0108/IST0107: Istio annotations on Kubernetes objects.
  const skipped = (o: KubeObject) => controlPlane.has(o.metadata?.namespace ?? '') || systemNamespaces.has(o.metadata?.namespace ?? '');
  for (const service of ofKind('Service'))
    if (!skipped(service))
      for (const f of portNameFindings(service.metadata, service.spec as Parameters<typeof portNameFindings>[1]))
        report(f.code, f.name, f.level, service, f.message);
  for (const object of objects.filter((o) => annotatedKinds.has(o.kind ?? '') && !skipped(o)))
    for (const f of annotationFindings(object.kind ?? '', object.metadata)) report(f.code, f.name, f.level, object, f.message);

  const inScope = (m: AnalyzerMessage) =>
    !options.namespaces || options.namespaces.has(m.resource.namespace ?? (m.resource.kind === 'Namespace' ? m.resource.name : ''));
  return dedupe(messages.filter(inScope)).sort(compareMessages);
}

/** One message per code, resource and text, as istioctl prints them (diag.Messages.SortedDedupedCopy): two analyzers may say the same. */
function dedupe(messages: readonly AnalyzerMessage[]): AnalyzerMessage[] {
  const seen = new Set<string>();
  return messages.filter((m) => {
    const key = JSON.stringify([m.code, m.level, m.resource.kind, m.resource.namespace ?? '', m.resource.name, m.message]);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * The gateway workloads Gateway selectors are checked against: pods, and (Istio lists pods only) the
 * pod templates of workload kinds, as for IST0127, so that a Deployment in a file counts as the pods to come.
 */
function gatewayWorkloadsOf(objects: readonly KubeObject[], defaultNamespace: string): GatewayWorkload[] {
  return objects
    .filter((o) => o.kind === 'Pod' || workloadKinds.has(o.kind ?? ''))
    .map((o) => ({
      namespace: o.metadata?.namespace ?? defaultNamespace,
      name: o.metadata?.name ?? '',
      labels: o.kind === 'Pod' ? (o.metadata?.labels ?? {}) : podTemplateLabels(o),
    }));
}

/**
 * The Secrets (`{namespace, name}`, each once) that the Istio Gateways of `namespaces` (all when
 * absent) name through `tls.credentialName`, in their workloads' namespace, and that `sourced` does
 * not already carry: what `weft analyze` reads, by name and metadata only, before {@link analyzeMesh}.
 */
export function credentialSecretsToRead(
  sourced: readonly SourcedObject[],
  options: Pick<AnalysisOptions, 'namespaces' | 'defaultNamespace'> = {},
): Array<{ namespace: string; name: string }> {
  const defaultNamespace = options.defaultNamespace ?? 'default';
  const objects = sourced.map(({ object }) => object);
  const present = new Set(
    objects.filter((o) => o.kind === 'Secret').map((o) => `${o.metadata?.namespace ?? defaultNamespace}/${o.metadata?.name ?? ''}`),
  );
  const workloads = gatewayWorkloadsOf(objects, defaultNamespace);
  const wanted = new Map<string, { namespace: string; name: string }>();
  for (const object of objects) {
    if (object.kind !== 'Gateway' || groupOf(object) !== 'networking.istio.io') continue;
    const gateway = gatewayConfigOf({
      ...object,
      metadata: { ...object.metadata, namespace: object.metadata?.namespace ?? defaultNamespace },
    });
    if (options.namespaces && !options.namespaces.has(gateway.namespace)) continue;
    for (const { namespace, name } of gatewayCredentialReferences(gateway, workloads)) {
      const key = `${namespace}/${name}`;
      if (!present.has(key)) wanted.set(key, { namespace, name });
    }
  }
  return [...wanted.values()];
}

/** A Gateway object as the gateway analyzers read it. */
type GatewayConfig = Parameters<typeof gatewaySecretMessages>[0];
const gatewayConfigOf = (object: KubeObject): GatewayConfig => ({
  kind: 'Gateway',
  name: object.metadata?.name ?? '',
  namespace: object.metadata?.namespace ?? 'default',
  spec: (object.spec ?? {}) as GatewayConfig['spec'],
});

/** Whether the objects carry workloads (pods, or what makes them) that selectors can be checked against. */
export const carriesWorkloads = (sourced: readonly SourcedObject[]) =>
  sourced.some(({ object }) => object.kind === 'Pod' || workloadKinds.has(object.kind ?? ''));

function selectorOf(object: KubeObject): Record<string, string> | undefined {
  const spec = (object.spec ?? {}) as {
    selector?: { matchLabels?: Record<string, string> };
    workloadSelector?: { labels?: Record<string, string>; matchLabels?: Record<string, string> };
  };
  switch (object.kind) {
    case 'AuthorizationPolicy':
    case 'PeerAuthentication':
    case 'RequestAuthentication':
    case 'Telemetry':
      return spec.selector?.matchLabels;
    case 'Sidecar':
    case 'DestinationRule':
      return spec.workloadSelector?.labels ?? spec.workloadSelector?.matchLabels;
    default:
      return undefined;
  }
}

function podTemplateLabels(object: KubeObject): Record<string, string> {
  const spec = (object.spec ?? {}) as {
    template?: { metadata?: { labels?: Record<string, string> } };
    jobTemplate?: { spec?: { template?: { metadata?: { labels?: Record<string, string> } } } };
  };
  return spec.template?.metadata?.labels ?? spec.jobTemplate?.spec?.template?.metadata?.labels ?? {};
}

const levelRank = (level: MessageLevel) => messageLevels.indexOf(level);

function compareMessages(a: AnalyzerMessage, b: AnalyzerMessage): number {
  return (
    levelRank(a.level) - levelRank(b.level) ||
    a.code.localeCompare(b.code) ||
    a.resource.kind.localeCompare(b.resource.kind) ||
    (a.resource.namespace ?? '').localeCompare(b.resource.namespace ?? '') ||
    a.resource.name.localeCompare(b.resource.name) ||
    a.message.localeCompare(b.message)
  );
}

/** Whether a message is at least as severe as the threshold. */
export const atLeast = (level: MessageLevel, threshold: MessageLevel) => levelRank(level) <= levelRank(threshold);
