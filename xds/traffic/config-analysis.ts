// What schema validation cannot see, found by reading the whole model: routes to
// hosts that do not exist or that exportTo hides, subsets no DestinationRule
// defines, rules for hosts nothing serves; security policies that select no
// workload, that a workload cannot enforce as written, or whose keys could not be
// fetched; and everything of a valid object that Weft does not apply (Gateways,
// gateway bindings, fields no proxy or one kind of proxy gets, objects an older
// one overrides: unapplied-config.ts). Each Istio object gets a verdict for its
// status, with Istio's analyzer codes (Weft's own, WEFT0xxx, where Istio has
// none; docs/analysis.md lists them). Pure.
import { conflictingGateways, gatewayWorkloadMessages, virtualServiceGatewayHostMessages } from './gateway-analyzers.js';
import type { IRequestAuthentication } from '@kubernetes-models/istio/security.istio.io/v1/RequestAuthentication';
import type {
  ConfigObject,
  DestinationRuleSpec,
  HttpDestination,
  PeerAuthenticationSpec,
  RequestAuthenticationSpec,
  TelemetrySpec,
  VirtualServiceSpec,
} from '../model/istio-config.js';
import { emptyIstioConfig } from '../model/istio-config.js';
import { serviceHost, type MeshModel, type MeshService } from '../model/mesh-model.js';
import { authorizationFilters, type PolicyProblem } from '../security/authorization-policies.js';
import { requestAuthenticationFilters } from '../security/request-authentication.js';
import { appliesTo, authorizationPoliciesFor } from '../security/workload-policies.js';
import { conflictingMeshGatewayHosts, serverCertificateVerification, unreachableRules, type AnalysisMessage } from './config-analyzers.js';
import { exportedTo, hostMatches, labelsMatch, resolveHost } from './host-names.js';
import {
  blocksObject,
  destinationRuleFieldMessages,
  destinationRuleMerges,
  gatewayMessages,
  peerAuthenticationConflicts,
  selectorConflicts,
  serviceEntryFieldMessages,
  sidecarFieldMessages,
  targetRefMessage,
  telemetryFieldMessages,
  telemetryProviderMessages,
  virtualServiceBindingMessages,
  virtualServiceFieldMessages,
  workloadEntryMessages,
  workloadGroupMessages,
  type SelectableWorkload,
} from './unapplied-config.js';

export type { AnalysisMessage } from './config-analyzers.js';
export type { MeshTelemetry } from '../model/mesh-model.js';
// For `weft analyze`, which reads Secret names that weftd's model does not carry.
export { gatewayCredentialReferences, gatewaySecretMessages, type GatewayWorkload } from './gateway-secret-analyzer.js';

export interface ConfigVerdict {
  kind: string;
  namespace: string;
  name: string;
  generation?: number;
  accepted: boolean;
  messages: AnalysisMessage[];
}

const notFound = (message: string, level: AnalysisMessage['level'] = 'ERROR'): AnalysisMessage => ({
  code: 'IST0101',
  name: 'ReferencedResourceNotFound',
  level,
  message,
});

/** Objects left out of the config as invalid: not accepted, with the validation's reasons (Istio's IST0106). */
export function rejectedVerdicts(model: MeshModel): ConfigVerdict[] {
  return (model.istio?.rejected ?? []).map((object) => ({
    kind: object.kind,
    namespace: object.namespace,
    name: object.name,
    ...(object.generation !== undefined ? { generation: object.generation } : {}),
    accepted: false,
    messages: [{ code: 'IST0106', name: 'SchemaValidationError', level: 'ERROR', message: `${object.message}; the object is not used` }],
  }));
}

/**
 * Every Istio object's verdict, as weftd writes them to status: the rejected (invalid) objects,
 * then networking, security and telemetry objects. `jwksErrors` as for analyzeSecurity.
 */
export function analyzeAll(model: MeshModel, jwksErrors: Record<string, string> = {}): ConfigVerdict[] {
  return [...rejectedVerdicts(model), ...analyzeNetworking(model), ...analyzeSecurity(model, jwksErrors), ...analyzeTelemetry(model)];
}

export function analyzeNetworking(model: MeshModel): ConfigVerdict[] {
  const config = model.istio ?? emptyIstioConfig();
  const hosts = model.services.map((service) => ({ service, host: serviceHost(service, model.clusterDomain) }));
  const servicesOf = (host: string) => hosts.filter(({ host: known }) => hostMatches(host, known) || hostMatches(known, host));
  const subsetsOf = (host: string) =>
    new Set(
      config.destinationRules
        .filter((rule) => hostMatches(resolveHost(rule.spec.host, rule.namespace, model.clusterDomain), host))
        .flatMap((rule) => (rule.spec.subsets ?? []).map((subset) => subset.name)),
    );
  const workloads = modelWorkloads(model);
  const gatewaysByKey = new Map(config.gateways.map((g) => [`${g.namespace}/${g.name}`, g]));
  const gateways = new Set(gatewaysByKey.keys());

  const verdicts: ConfigVerdict[] = [];
  const conflicts = conflictingMeshGatewayHosts(config.virtualServices, model.clusterDomain);
  for (const rule of config.virtualServices)
    verdicts.push(
      verdict(rule, [
        ...virtualServiceBindingMessages(rule, gateways),
        ...virtualServiceGatewayHostMessages(rule, gatewaysByKey),
        ...virtualServiceMessages(rule, model, servicesOf, subsetsOf),
        ...(conflicts.get(`${rule.namespace}/${rule.name}`) ?? []),
        ...unreachableRules(rule.spec),
        ...virtualServiceFieldMessages(rule),
      ]),
    );
  const merges = destinationRuleMerges(config.destinationRules, model.clusterDomain);
  for (const rule of config.destinationRules)
    verdicts.push(
      verdict(rule, [
        ...destinationRuleMessages(rule, model, (host) => servicesOf(host).length > 0),
        ...serverCertificateVerification(rule),
        ...(merges.get(`${rule.namespace}/${rule.name}`) ?? []),
        ...destinationRuleFieldMessages(rule),
      ]),
    );
  for (const entry of config.serviceEntries) verdicts.push(verdict(entry, serviceEntryFieldMessages(entry)));
  for (const entry of config.workloadEntries) verdicts.push(verdict(entry, workloadEntryMessages(entry, model.services)));
  const sidecarConflicts = selectorConflicts(
    config.sidecars as Array<ConfigObject<unknown>>,
    (s) => (s as ConfigObject<SidecarSelector>).spec.workloadSelector?.labels,
    workloads,
    {
      perWorkload: { code: 'IST0110', name: 'ConflictingSidecarWorkloadSelectors', what: 'Sidecars' },
      perNamespace: { code: 'IST0111', name: 'MultipleSidecarsWithoutWorkloadSelectors', what: 'Sidecars' },
    },
  );
  for (const sidecar of config.sidecars)
    verdicts.push(
      verdict(sidecar, [...(sidecarConflicts.get(`${sidecar.namespace}/${sidecar.name}`) ?? []), ...sidecarFieldMessages(sidecar)]),
    );
  const gatewayConflicts = conflictingGateways(config.gateways, model);
  for (const gateway of config.gateways)
    verdicts.push(
      verdict(gateway, [
        ...gatewayWorkloadMessages(gateway, model),
        ...(gatewayConflicts.get(`${gateway.namespace}/${gateway.name}`) ?? []),
        ...gatewayMessages(gateway),
      ]),
    );
  for (const group of config.workloadGroups) verdicts.push(verdict(group, workloadGroupMessages(group)));
  return verdicts;
}

type SidecarSelector = { workloadSelector?: { labels?: Record<string, string> } };

/**
 * The verdicts of Telemetry objects: Istio's IST0159/IST0160 for two that select one workload
 * or two without a selector in one namespace (Weft, like Istio, uses the oldest), the
 * fields Weft does not apply (metrics, access log filters, targetRef; proxyless gRPC gets none),
 * and, when `model.meshConfig` says which extension providers the mesh has, providers that are
 * not one (WEFT0005) and IST0157.
 */
export function analyzeTelemetry(model: MeshModel): ConfigVerdict[] {
  const config = model.istio ?? emptyIstioConfig();
  const conflicts = selectorConflicts(
    config.telemetries as Array<ConfigObject<unknown>>,
    (t) => (t as ConfigObject<TelemetrySpec>).spec.selector?.matchLabels as Record<string, string> | undefined,
    modelWorkloads(model),
    {
      perWorkload: { code: 'IST0159', name: 'ConflictingTelemetryWorkloadSelectors', what: 'Telemetries' },
      perNamespace: { code: 'IST0160', name: 'MultipleTelemetriesWithoutWorkloadSelectors', what: 'Telemetries' },
    },
  );
  return config.telemetries.map((telemetry) =>
    verdict(telemetry, [
      ...(conflicts.get(`${telemetry.namespace}/${telemetry.name}`) ?? []),
      ...telemetryFieldMessages(telemetry),
      ...telemetryProviderMessages(telemetry, model.meshConfig?.telemetry),
    ]),
  );
}

/** The workloads of a model: each mesh service endpoint, by namespace and address, with its labels and the ports it serves. */
function modelWorkloads(model: MeshModel): Array<ModelWorkload & SelectableWorkload> {
  const byAddress = new Map<string, ModelWorkload & SelectableWorkload>();
  for (const service of model.services) {
    if (service.meshExternal) continue;
    for (const endpoint of service.endpoints) {
      const key = `${service.namespace}/${endpoint.address}`;
      const workload = byAddress.get(key) ?? {
        namespace: service.namespace,
        address: endpoint.address,
        labels: endpoint.labels ?? {},
        ports: [],
      };
      workload.ports = [...new Set([...workload.ports, ...Object.values(endpoint.ports)])].sort((a, b) => a - b);
      byAddress.set(key, workload);
    }
  }
  return [...byAddress.values()];
}

/** A workload as the model knows it: the endpoints of mesh services, by namespace and address, with the ports they serve. */
interface ModelWorkload {
  namespace: string;
  labels: Record<string, string>;
  ports: number[];
}

type Selectable = ConfigObject<{ selector?: { matchLabels?: Record<string, string> } }>;

const securityMessage = (code: string, name: string, level: AnalysisMessage['level'], message: string): AnalysisMessage => ({
  code,
  name,
  level,
  message,
});

/**
 * The verdicts of security.istio.io objects. The model does not know yet which
 * workloads are proxyless gRPC servers and which run a sidecar, so each workload
 * is checked as both, and what one kind would not enforce is a warning naming it.
 * `jwksErrors`: why the control plane could not fetch a JWKS (by jwksUri or
 * issuer); a jwksUri missing from `model.jwks` is an error (without `model.jwks`,
 * nothing was fetched and nothing is checked).
 */
export function analyzeSecurity(model: MeshModel, jwksErrors: Record<string, string> = {}): ConfigVerdict[] {
  const config = model.istio ?? emptyIstioConfig();
  const rootNamespace = model.rootNamespace ?? 'istio-system';
  const workloads = modelWorkloads(model);
  const selected = (policy: Selectable) => workloads.filter((w) => appliesTo(policy, w, rootNamespace));

  // What each target does not enforce, per policy, from running the filters for every workload and port.
  const problems = new Map<string, Set<string>>();
  const collect = (found: PolicyProblem[]) => {
    for (const problem of found) problems.set(problem.policy, (problems.get(problem.policy) ?? new Set()).add(problem.message));
  };
  for (const workload of workloads) {
    const authorization = authorizationPoliciesFor(model, workload);
    const authentication = config.requestAuthentications.filter((p) => appliesTo(p as Selectable, workload, rootNamespace));
    for (const target of ['grpc', 'sidecar'] as const) {
      for (const port of workload.ports.length > 0 ? workload.ports : [0]) {
        if (authorization.length > 0)
          collect(
            authorizationFilters({ policies: authorization, trustDomain: model.trustDomain ?? 'cluster.local', port, target }).problems,
          );
      }
      if (authentication.length > 0)
        collect(
          requestAuthenticationFilters({ policies: authentication.map(requestAuthenticationObject), target, fetchedJwks: model.jwks ?? {} })
            .problems,
        );
    }
  }
  const unenforced = (policy: Selectable): AnalysisMessage[] => {
    const who = whoIsSelected(policy, rootNamespace);
    return [...(problems.get(`${policy.namespace}/${policy.name}`) ?? [])].sort().map((message) =>
      securityMessage(
        'WEFT0001',
        'PolicyNotEnforcedAsWritten',
        'WARNING',
        message.replace(/^(proxyless gRPC|Envoy sidecar): /, (_, target: string) => `${target} workloads (${who}): `),
      ),
    );
  };
  const noWorkload = (policy: Selectable): AnalysisMessage[] => {
    const labels = policy.spec.selector?.matchLabels;
    if (!labels || Object.keys(labels).length === 0 || selected(policy).length > 0) return [];
    return [
      securityMessage(
        'IST0127',
        'NoMatchingWorkloadsFound',
        'WARNING',
        `No matching workloads for this resource with the following labels: ${describeLabels(labels)}`,
      ),
    ];
  };

  const verdicts: ConfigVerdict[] = [];
  // A policy attached by targetRef applies to no sidecar or proxyless workload: that is all there is to say.
  const targeted = (policy: Selectable, kind: string) => targetRefMessage(policy.spec, kind);
  for (const policy of config.authorizationPolicies as Selectable[]) {
    const attached = targeted(policy, 'AuthorizationPolicy');
    verdicts.push(verdict(policy, attached ? [attached] : [...noWorkload(policy), ...unenforced(policy)]));
  }
  const peerConflicts = peerAuthenticationConflicts(config.peerAuthentications, rootNamespace, workloads);
  for (const policy of config.peerAuthentications)
    verdicts.push(
      verdict(policy, [
        ...noWorkload(policy as Selectable),
        ...(peerConflicts.get(`${policy.namespace}/${policy.name}`) ?? []),
        ...portLevelMessages(policy, selected(policy as Selectable)),
      ]),
    );
  for (const policy of config.requestAuthentications) {
    const attached = targeted(policy as Selectable, 'RequestAuthentication');
    verdicts.push(
      verdict(
        policy,
        attached
          ? [attached]
          : [...noWorkload(policy as Selectable), ...jwksMessages(policy, model.jwks, jwksErrors), ...unenforced(policy as Selectable)],
      ),
    );
  }
  return verdicts;
}

const describeLabels = (labels: Record<string, string>) =>
  Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');

function whoIsSelected(policy: Selectable, rootNamespace: string): string {
  const labels = policy.spec.selector?.matchLabels;
  if (labels && Object.keys(labels).length > 0) return describeLabels(labels);
  return policy.namespace === rootNamespace ? 'all of the mesh' : `all of namespace ${policy.namespace}`;
}

function requestAuthenticationObject(policy: ConfigObject<RequestAuthenticationSpec>): IRequestAuthentication {
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'RequestAuthentication',
    metadata: { name: policy.name, namespace: policy.namespace },
    spec: policy.spec,
  };
}

/** Port-level mTLS for a port none of the selected workloads serves never applies (the ports are the workloads' own). */
function portLevelMessages(policy: ConfigObject<PeerAuthenticationSpec>, workloads: ModelWorkload[]): AnalysisMessage[] {
  const labels = policy.spec.selector?.matchLabels as Record<string, string> | undefined;
  if (!labels || Object.keys(labels).length === 0 || workloads.length === 0) return [];
  const served = new Set(workloads.filter((w) => labelsMatch(labels, w.labels)).flatMap((w) => w.ports));
  return Object.keys(policy.spec.portLevelMtls ?? {})
    .filter((port) => !served.has(Number(port)))
    .map((port) =>
      securityMessage(
        'WEFT0002',
        'PortNotOnWorkload',
        'WARNING',
        `spec.portLevelMtls[${port}]: no workload the policy selects (${describeLabels(labels)}) serves port ${port}; ` +
          `port-level settings name the workload's port (the container port), not the Service's (${[...served].join(', ')} served)`,
      ),
    );
}

function jwksMessages(
  policy: ConfigObject<RequestAuthenticationSpec>,
  fetched: Record<string, string> | undefined,
  errors: Record<string, string>,
): AnalysisMessage[] {
  if (!fetched) return [];
  const messages: AnalysisMessage[] = [];
  (policy.spec.jwtRules ?? []).forEach((rule, index) => {
    if (rule.jwks) return;
    const jwksUri = rule.jwksUri ?? rule.jwks_uri;
    const key = jwksUri ?? rule.issuer;
    if (!key) return;
    const field = jwksUri ? `spec.jwtRules[${index}].jwksUri` : `spec.jwtRules[${index}].issuer`;
    const what = jwksUri ? `the JWKS at ${jwksUri}` : `the JWKS of issuer ${key} (OpenID discovery)`;
    const error = errors[key];
    if (fetched[key] === undefined)
      messages.push(
        securityMessage(
          'WEFT0003',
          'JwksNotFetched',
          'ERROR',
          `${field}: the control plane could not fetch ${what}${error ? `: ${error}` : ''}; tokens of issuer ${rule.issuer ?? '(any)'} cannot be verified`,
        ),
      );
    else if (error)
      messages.push(
        securityMessage(
          'WEFT0003',
          'JwksNotFetched',
          'WARNING',
          `${field}: the last refresh of ${what} failed (${error}); the keys fetched before are still used`,
        ),
      );
  });
  return messages;
}

function verdict(rule: ConfigObject<unknown>, messages: AnalysisMessage[]): ConfigVerdict {
  return {
    kind: rule.kind,
    namespace: rule.namespace,
    name: rule.name,
    ...(rule.generation !== undefined ? { generation: rule.generation } : {}),
    accepted: !messages.some(blocks),
    messages,
  };
}

/** An error, or a valid object that does nothing in Weft (WEFT0004): either makes the object not Accepted. */
const blocks = (message: AnalysisMessage) => message.level === 'ERROR' || blocksObject(message);

function virtualServiceMessages(
  rule: ConfigObject<VirtualServiceSpec>,
  model: MeshModel,
  servicesOf: (host: string) => Array<{ service: MeshService; host: string }>,
  subsetsOf: (host: string) => Set<string>,
): AnalysisMessage[] {
  const messages: AnalysisMessage[] = [];
  // Istio's DestinationHostAnalyzer looks the host up from the VirtualService's namespace, or from each namespace it is exported to.
  const viewers =
    (rule.spec.exportTo ?? []).length === 0 ? [rule.namespace] : (rule.spec.exportTo ?? []).map((e) => (e === '.' ? rule.namespace : e));
  const visible = (service: MeshService) =>
    viewers.some((viewer) =>
      viewer === '*'
        ? (service.exportTo ?? []).length === 0 || (service.exportTo ?? []).includes('*')
        : exportedTo(service.exportTo, service.namespace, viewer),
    );
  const check = (destination: HttpDestination['destination'], field: string) => {
    const host = resolveHost(destination.host, rule.namespace, model.clusterDomain);
    const services = servicesOf(host);
    if (services.length === 0) {
      messages.push(notFound(`${field}.host: "${destination.host}" (${host}) is not a Service or ServiceEntry host in the mesh`));
      return;
    }
    if (!services.some(({ service }) => visible(service))) {
      const exports = [...new Set(services.flatMap(({ service }) => service.exportTo ?? []))].join(', ');
      messages.push(
        notFound(
          `${field}.host: "${destination.host}" (${host}) is not exported to namespace ${viewers.join(', ')} (its exportTo: ${exports}), so the proxies this VirtualService applies to do not see it`,
        ),
      );
      return;
    }
    if (destination.subset && !subsetsOf(host).has(destination.subset)) {
      messages.push(notFound(`${field}.subset: no DestinationRule for ${host} defines subset "${destination.subset}"`));
    }
  };
  (rule.spec.http ?? []).forEach((http, i) => {
    (http.route ?? []).forEach((route, j) => check(route.destination, `spec.http[${i}].route[${j}].destination`));
    if (http.mirror) check(http.mirror, `spec.http[${i}].mirror`);
  });
  for (const [protocol, routes] of [
    ['tcp', rule.spec.tcp],
    ['tls', rule.spec.tls],
  ] as const) {
    (routes ?? []).forEach((entry, i) =>
      (entry.route ?? []).forEach((route, j) => check(route.destination, `spec.${protocol}[${i}].route[${j}].destination`)),
    );
  }
  return messages;
}

function destinationRuleMessages(
  rule: ConfigObject<DestinationRuleSpec>,
  model: MeshModel,
  hostExists: (host: string) => boolean,
): AnalysisMessage[] {
  const host = resolveHost(rule.spec.host, rule.namespace, model.clusterDomain);
  // A rule for a host nothing serves yet is allowed (it may come later): a warning, not a refusal.
  return hostExists(host)
    ? []
    : [notFound(`spec.host: "${rule.spec.host}" (${host}) is not a Service or ServiceEntry host in the mesh`, 'WARNING')];
}

/** The status weftd writes: an Accepted condition saying why not, and Istio-style validation messages. */
export function statusOf(verdict: ConfigVerdict, previous: Record<string, unknown> | undefined, now: string): Record<string, unknown> {
  const status = verdict.accepted ? 'True' : 'False';
  const errors = verdict.messages.filter(blocks);
  const previousCondition = ((previous?.['conditions'] as Array<Record<string, unknown>> | undefined) ?? []).find(
    (c) => c['type'] === 'Accepted',
  );
  return {
    ...(verdict.generation !== undefined ? { observedGeneration: verdict.generation } : {}),
    conditions: [
      {
        type: 'Accepted',
        status,
        reason: verdict.accepted ? 'Accepted' : (errors[0]?.name ?? 'Invalid'),
        message: verdict.accepted
          ? verdict.messages.length > 0
            ? `accepted with warnings: ${verdict.messages.map((m) => m.message).join('; ')}`
            : 'accepted and distributed to the proxies it applies to'
          : [...errors, ...verdict.messages.filter((m) => !blocks(m))].map((m) => m.message).join('; '),
        lastTransitionTime: previousCondition?.['status'] === status ? (previousCondition['lastTransitionTime'] ?? now) : now,
        ...(verdict.generation !== undefined ? { observedGeneration: verdict.generation } : {}),
      },
    ],
    validationMessages: verdict.messages.map((m) => ({
      type: { code: m.code, name: m.name },
      level: m.level,
      // Weft's own codes have no page on Istio's site.
      ...(m.code.startsWith('IST')
        ? { documentationUrl: `https://istio.io/latest/docs/reference/config/analysis/${m.code.toLowerCase()}/` }
        : {}),
    })),
  };
}
