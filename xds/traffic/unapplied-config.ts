// What Weft does not apply of a valid Istio object, found by reading the object
// (and, for conflicts, its peers) against what the generators read. Each finding
// names the field and which proxies miss it, so nothing is dropped silently: the
// messages go to the object's status and to `weft analyze` (config-analysis.ts).
// Weft's codes (docs/analysis.md), where Istio has none:
//   WEFT0004 NotApplied            the whole object does nothing in Weft (the object is not Accepted)
//   WEFT0005 FieldNotApplied       a field no proxy, or one kind of proxy, gets
//   WEFT0006 ShadowedByOlderObject an older object of the same scope wins, as Istio decides
// and Istio's, where Istio has the analyzer (pkg/config/analysis/analyzers):
//   IST0101 (a gateway a VirtualService names does not exist; a destination host exportTo hides),
//   IST0110/IST0111 (sidecar/selector.go), IST0159/IST0160 (telemetry/selector.go, default_selector.go).
// Pure.
import type {
  ConfigObject,
  DestinationRuleSpec,
  GatewaySpec,
  PeerAuthenticationSpec,
  SidecarSpec,
  TelemetrySpec,
  VirtualServiceSpec,
  WorkloadEntrySpec,
  WorkloadGroupSpec,
} from '../model/istio-config.js';
import { byAge } from '../model/istio-config.js';
import type { MeshService, MeshTelemetry } from '../model/mesh-model.js';
import type { AnalysisMessage } from './config-analyzers.js';
import { bindsToMesh } from './gateway-servers.js';
import { labelsMatch, resolveHost } from './host-names.js';
import { resolveGatewayName } from './http-routes.js';

/** Weft's own codes, with the names status and `weft analyze` print. */
export const weftCodes = {
  notApplied: { code: 'WEFT0004', name: 'NotApplied' },
  fieldNotApplied: { code: 'WEFT0005', name: 'FieldNotApplied' },
  shadowed: { code: 'WEFT0006', name: 'ShadowedByOlderObject' },
} as const;

const warning = (type: { code: string; name: string }, message: string): AnalysisMessage => ({ ...type, level: 'WARNING', message });
const notApplied = (message: string) => warning(weftCodes.notApplied, message);
const fieldNotApplied = (message: string) => warning(weftCodes.fieldNotApplied, message);
const shadowed = (message: string) => warning(weftCodes.shadowed, message);

/** Whether a message says the whole object does nothing: such an object is not Accepted, though valid. */
export const blocksObject = (message: AnalysisMessage) => message.code === weftCodes.notApplied.code;

const id = (object: { namespace: string; name: string }) => `${object.namespace}/${object.name}`;
const byId = (a: ConfigObject<unknown>, b: ConfigObject<unknown>) => id(a).localeCompare(id(b));
const grpcOnly = 'proxyless gRPC clients';
const everyProxy = 'Envoy sidecars and proxyless gRPC clients';

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => !!value && typeof value === 'object' && !Array.isArray(value);

/** A workload as the model knows it (the endpoints of mesh services): what selectors are matched against. */
export interface SelectableWorkload {
  namespace: string;
  /** The endpoint's address: the model has no pod names. */
  address: string;
  labels: Record<string, string>;
}

/**
 * What Weft does not apply of a Gateway (its servers are served to the gateway proxies it
 * selects, generate/envoy-gateway.ts): `tls.tlsCertificates` (several file certificates;
 * `credentialName(s)`, `serverCertificate`/`privateKey` are applied).
 */
export function gatewayMessages(gateway: ConfigObject<GatewaySpec>): AnalysisMessage[] {
  const messages: AnalysisMessage[] = [];
  (gateway.spec.servers ?? []).forEach((server, i) => {
    const tls = server.tls as { tlsCertificates?: unknown[] } | undefined;
    if ((tls?.tlsCertificates?.length ?? 0) > 0)
      messages.push(
        fieldNotApplied(
          `spec.servers[${i}].tls.tlsCertificates: not applied; the server presents serverCertificate/privateKey or credentialName`,
        ),
      );
  });
  return messages;
}

/** A WorkloadGroup: Weft does not auto-register workloads (no WorkloadEntry is made from its template). */
export function workloadGroupMessages(_group: ConfigObject<WorkloadGroupSpec>): AnalysisMessage[] {
  return [
    notApplied(
      'Weft does not auto-register workloads: no WorkloadEntry is created from spec.template and spec.probe is not run; write WorkloadEntries instead',
    ),
  ];
}

/**
 * The gateway bindings of a VirtualService: a gateway that does not exist is Istio's IST0101
 * (virtualservice/gateways.go), checked against `gateways` (`namespace/name`); a delegate
 * VirtualService (no hosts), which Weft does not follow, does nothing (WEFT0004). Bindings to
 * gateways apply to the gateway proxies those Gateways select, `mesh` to sidecars and
 * proxyless gRPC.
 */
export function virtualServiceBindingMessages(rule: ConfigObject<VirtualServiceSpec>, gateways: ReadonlySet<string>): AnalysisMessage[] {
  const messages: AnalysisMessage[] = [];
  const bound = rule.spec.gateways ?? [];
  bound.forEach((gateway, i) => {
    if (gateway === 'mesh') return;
    const key = resolveGatewayName(gateway, rule.namespace);
    if (!gateways.has(key))
      messages.push({
        code: 'IST0101',
        name: 'ReferencedResourceNotFound',
        level: 'ERROR',
        message: `spec.gateways[${i}]: gateway "${gateway}" (${key}) is not a Gateway in the mesh`,
      });
  });
  if ((rule.spec.hosts ?? []).length === 0)
    messages.push(notApplied('spec.hosts is empty (a delegate VirtualService): Weft does not follow delegation, so no proxy gets it'));
  return messages;
}

/** Fields of a VirtualService's routes that Weft does not apply, to any proxy or to proxyless gRPC clients (grpc-js-xds has no such action). */
export function virtualServiceFieldMessages(rule: ConfigObject<VirtualServiceSpec>): AnalysisMessage[] {
  const messages: AnalysisMessage[] = [];
  (rule.spec.http ?? []).forEach((http, i) => {
    const field = `spec.http[${i}]`;
    if (http.delegate)
      messages.push(
        fieldNotApplied(
          `${field}.delegate: Weft does not follow delegation; this rule is left out of the routes (${everyProxy}), so its requests go on to the next rule`,
        ),
      );
    if (http.corsPolicy) messages.push(fieldNotApplied(`${field}.corsPolicy: CORS is not applied (${everyProxy} and gateways)`));
    const grpcMissing = [
      http.headers ? 'headers' : undefined,
      (http.route ?? []).some((d) => d.headers) ? 'route[].headers' : undefined,
      http.rewrite ? 'rewrite' : undefined,
      http.mirror || (http.mirrors?.length ?? 0) > 0 ? (http.mirror ? 'mirror' : 'mirrors') : undefined,
    ].filter((f): f is string => !!f);
    for (const name of grpcMissing)
      messages.push(
        fieldNotApplied(
          `${field}.${name}: not applied to ${grpcOnly} (gRPC's xDS client has no such route action); Envoy sidecars apply it`,
        ),
      );
    // traffic/http-routes.ts leaves such a rule out for gRPC: grpc-js-xds refuses a route configuration with either action.
    for (const name of [http.redirect ? 'redirect' : undefined, http.directResponse ? 'directResponse' : undefined].filter((f) => !!f))
      messages.push(
        fieldNotApplied(
          `${field}.${name}: gRPC's xDS client has no such action, so this rule is left out of the routes of ${grpcOnly} (their calls go on to the next rule); Envoy sidecars apply it`,
        ),
      );
  });
  // Gateways and Envoy sidecars apply `tls` routes (by SNI); proxyless gRPC has no TLS routes.
  if (bindsToMesh(rule))
    (rule.spec.tls ?? []).forEach((_route, i) =>
      messages.push(fieldNotApplied(`spec.tls[${i}]: TLS routes (by SNI) are applied by gateways and Envoy sidecars, not by ${grpcOnly}`)),
    );
  (rule.spec.tcp ?? []).forEach((route, i) =>
    (route.match ?? []).forEach((match, j) => {
      const field = `spec.tcp[${i}].match[${j}]`;
      if ((match.destinationSubnets?.length ?? 0) > 0)
        messages.push(
          fieldNotApplied(`${field}.destinationSubnets: not decided per address; the rule applies to every address of the host`),
        );
      if (match.sourceSubnet) messages.push(fieldNotApplied(`${field}.sourceSubnet: not applied; the rule applies to every source`));
    }),
  );
  return messages;
}

/** DestinationRule traffic policy fields the generators read (traffic/cluster-policy.ts, generate/envoy-sidecar-resources.ts). */
const appliedPolicyFields: Record<string, ReadonlySet<string>> = {
  '': new Set(['loadBalancer', 'connectionPool', 'outlierDetection', 'tls', 'portLevelSettings', 'port']),
  loadBalancer: new Set(['simple', 'consistentHash']),
  'loadBalancer.consistentHash': new Set([
    'httpHeaderName',
    'httpCookie',
    'useSourceIp',
    'httpQueryParameterName',
    'ringHash',
    'maglev',
    'minimumRingSize',
  ]),
  connectionPool: new Set(['tcp', 'http']),
  'connectionPool.tcp': new Set(['maxConnections', 'connectTimeout']),
  'connectionPool.http': new Set(['http1MaxPendingRequests', 'http2MaxRequests', 'maxRetries']),
  outlierDetection: new Set([
    'consecutive5xxErrors',
    'consecutiveGatewayErrors',
    'consecutiveErrors',
    'interval',
    'baseEjectionTime',
    'maxEjectionPercent',
    'minHealthPercent',
  ]),
  tls: new Set(['mode', 'sni', 'subjectAltNames', 'caCertificates', 'clientCertificate', 'privateKey', 'insecureSkipVerify']),
};

/** What proxyless gRPC clients do not get of a policy that Envoy sidecars get (traffic/cluster-policy.ts, security/grpc-tls.ts). */
function grpcPolicyGaps(policy: Json, field: string): string[] {
  const gaps: string[] = [];
  const lb = isObject(policy['loadBalancer']) ? policy['loadBalancer'] : {};
  const hash = isObject(lb['consistentHash']) ? lb['consistentHash'] : undefined;
  if (lb['simple'] !== undefined && lb['simple'] !== 'ROUND_ROBIN')
    gaps.push(`${field}.loadBalancer.simple: gRPC balances with ROUND_ROBIN`);
  if (hash?.['httpCookie'])
    gaps.push(`${field}.loadBalancer.consistentHash.httpCookie: gRPC cannot hash on a cookie; calls are not hashed`);
  if (hash?.['httpQueryParameterName'])
    gaps.push(`${field}.loadBalancer.consistentHash.httpQueryParameterName: gRPC cannot hash on a query parameter; calls are not hashed`);
  if (hash?.['maglev']) gaps.push(`${field}.loadBalancer.consistentHash.maglev: gRPC uses a ring hash instead`);
  const pool = isObject(policy['connectionPool']) ? policy['connectionPool'] : {};
  const tcp = isObject(pool['tcp']) ? pool['tcp'] : {};
  const http = isObject(pool['http']) ? pool['http'] : {};
  if (tcp['maxConnections'] !== undefined) gaps.push(`${field}.connectionPool.tcp.maxConnections: no gRPC limit`);
  if (http['http1MaxPendingRequests'] !== undefined) gaps.push(`${field}.connectionPool.http.http1MaxPendingRequests: no gRPC limit`);
  if (http['maxRetries'] !== undefined) gaps.push(`${field}.connectionPool.http.maxRetries: no gRPC limit`);
  const outlier = isObject(policy['outlierDetection']) ? policy['outlierDetection'] : {};
  if (outlier['minHealthPercent'] !== undefined) gaps.push(`${field}.outlierDetection.minHealthPercent: gRPC has no panic threshold`);
  const tls = isObject(policy['tls']) ? policy['tls'] : {};
  if (tls['mode'] === 'SIMPLE' || tls['mode'] === 'MUTUAL')
    gaps.push(`${field}.tls.mode: ${String(tls['mode'])} TLS origination is not applied; gRPC clients connect in plaintext`);
  return gaps;
}

/** Keys of a policy object that no generator reads, as field paths. */
function unreadPolicyFields(value: unknown, field: string, path = ''): string[] {
  if (!isObject(value)) return [];
  const known = appliedPolicyFields[path];
  if (!known) return [];
  return Object.keys(value)
    .sort()
    .flatMap((key) => {
      const child = path ? `${path}.${key}` : key;
      if (!known.has(key)) return [`${field}.${key}`];
      if (key === 'portLevelSettings' && Array.isArray(value[key]))
        return (value[key] as unknown[]).flatMap((settings, k) => unreadPolicyFields(settings, `${field}.portLevelSettings[${k}]`));
      return unreadPolicyFields(value[key], `${field}.${key}`, key === 'port' ? 'port' : child);
    });
}

/** A DestinationRule's traffic policy fields (top level, per port, per subset) that Weft does not apply. */
export function destinationRuleFieldMessages(rule: ConfigObject<DestinationRuleSpec>): AnalysisMessage[] {
  const policies: Array<[unknown, string]> = [
    [rule.spec.trafficPolicy, 'spec.trafficPolicy'],
    ...(rule.spec.subsets ?? []).map((subset, i): [unknown, string] => [subset.trafficPolicy, `spec.subsets[${i}].trafficPolicy`]),
  ];
  const messages: AnalysisMessage[] = [];
  for (const [policy, field] of policies) {
    if (!isObject(policy)) continue;
    const unread = unreadPolicyFields(policy, field);
    for (const path of unread)
      messages.push(
        fieldNotApplied(
          path.endsWith('.credentialName')
            ? `${path}: not applied (${everyProxy}): Weft reads client certificates from files only (clientCertificate, privateKey, caCertificates)`
            : `${path}: not applied (${everyProxy})`,
        ),
      );
    const settings = [policy, ...((Array.isArray(policy['portLevelSettings']) ? policy['portLevelSettings'] : []) as unknown[])];
    settings.forEach((layer, k) => {
      if (!isObject(layer)) return;
      const at = k === 0 ? field : `${field}.portLevelSettings[${k - 1}]`;
      for (const gap of grpcPolicyGaps(layer, at)) messages.push(fieldNotApplied(`${gap} (${grpcOnly}; Envoy sidecars apply it)`));
    });
  }
  return messages;
}

/**
 * Istio merges the DestinationRules of one host within one namespace (pilot/pkg/model/destination_rule.go
 * mergeDestinationRule: both without a workload selector, or with equal ones, and the same exportTo):
 * subsets are added, a subset name already defined is dropped, and the first (oldest) traffic policy
 * wins. Returns, by `namespace/name`, what of the younger rules is not used.
 */
export function destinationRuleMerges(
  rules: ReadonlyArray<ConfigObject<DestinationRuleSpec>>,
  clusterDomain: string,
): Map<string, AnalysisMessage[]> {
  const groups = new Map<string, Array<ConfigObject<DestinationRuleSpec>>>();
  for (const rule of rules) {
    const selector = JSON.stringify(Object.entries(rule.spec.workloadSelector?.matchLabels ?? {}).sort());
    const exportTo = JSON.stringify([...(rule.spec.exportTo ?? [])].sort());
    const key = `${rule.namespace}|${resolveHost(rule.spec.host, rule.namespace, clusterDomain)}|${selector}|${exportTo}`;
    groups.set(key, [...(groups.get(key) ?? []), rule]);
  }
  const out = new Map<string, AnalysisMessage[]>();
  for (const group of groups.values()) {
    if (group.length < 2) continue;
    const sorted = [...group].sort(byAge);
    const subsetOwner = new Map<string, ConfigObject<DestinationRuleSpec>>();
    let policyOwner: ConfigObject<DestinationRuleSpec> | undefined;
    for (const rule of sorted) {
      const messages: AnalysisMessage[] = [];
      const host = resolveHost(rule.spec.host, rule.namespace, clusterDomain);
      if (rule.spec.trafficPolicy) {
        if (policyOwner)
          messages.push(
            shadowed(
              `spec.trafficPolicy: not used: the older DestinationRule ${id(policyOwner)} for ${host} in this namespace has a traffic policy, and Istio merges rules of one host keeping the first policy (subsets are added)`,
            ),
          );
        else policyOwner = rule;
      }
      (rule.spec.subsets ?? []).forEach((subset, i) => {
        const owner = subsetOwner.get(subset.name);
        if (owner)
          messages.push(
            shadowed(
              `spec.subsets[${i}]: subset "${subset.name}" is already defined by the older DestinationRule ${id(owner)} for ${host}; this one is not used`,
            ),
          );
        else subsetOwner.set(subset.name, rule);
      });
      if (messages.length > 0) out.set(id(rule), messages);
    }
  }
  return out;
}

/** Sidecar fields the generators do not read (they read egress hosts and outboundTrafficPolicy.mode). */
export function sidecarFieldMessages(sidecar: ConfigObject<SidecarSpec>): AnalysisMessage[] {
  const messages: AnalysisMessage[] = [];
  const spec = sidecar.spec as Json;
  if (Array.isArray(spec['ingress']) && spec['ingress'].length > 0)
    messages.push(
      fieldNotApplied(`spec.ingress: inbound listeners are built from the Services that select the workload; these are not applied`),
    );
  (sidecar.spec.egress ?? []).forEach((egress, i) => {
    for (const key of ['port', 'bind', 'captureMode'] as const)
      if ((egress as Json)[key] !== undefined)
        messages.push(fieldNotApplied(`spec.egress[${i}].${key}: not applied; only egress hosts are`));
  });
  for (const key of ['inboundConnectionPool']) if (spec[key] !== undefined) messages.push(fieldNotApplied(`spec.${key}: not applied`));
  const outbound = isObject(spec['outboundTrafficPolicy']) ? spec['outboundTrafficPolicy'] : {};
  if (outbound['egressProxy'] !== undefined) messages.push(fieldNotApplied('spec.outboundTrafficPolicy.egressProxy: not applied'));
  return messages;
}

/**
 * Istio's IST0110 and IST0111 for Sidecars, IST0159 and IST0160 for Telemetry (Errors): two
 * objects with no selector in one namespace, or two whose selectors match one workload.
 * Weft, like Istio, uses the oldest; the others are named in the message. By `namespace/name`.
 */
export function selectorConflicts(
  objects: ReadonlyArray<ConfigObject<unknown>>,
  selectorOf: (object: ConfigObject<unknown>) => Record<string, string> | undefined,
  workloads: ReadonlyArray<SelectableWorkload>,
  codes: { perWorkload: { code: string; name: string; what: string }; perNamespace: { code: string; name: string; what: string } },
): Map<string, AnalysisMessage[]> {
  const out = new Map<string, AnalysisMessage[]>();
  const add = (object: ConfigObject<unknown>, message: AnalysisMessage) => out.set(id(object), [...(out.get(id(object)) ?? []), message]);
  const names = (list: ReadonlyArray<ConfigObject<unknown>>) =>
    `[${[...list]
      .sort(byId)
      .map((o) => o.name)
      .join(' ')}]`;
  const unselected = new Map<string, Array<ConfigObject<unknown>>>();
  const byWorkload = new Map<string, Array<ConfigObject<unknown>>>();
  for (const object of objects) {
    const selector = selectorOf(object);
    if (!selector || Object.keys(selector).length === 0) {
      unselected.set(object.namespace, [...(unselected.get(object.namespace) ?? []), object]);
      continue;
    }
    for (const workload of workloads)
      if (workload.namespace === object.namespace && labelsMatch(selector, workload.labels)) {
        const key = `${workload.namespace}/${workload.address}`;
        byWorkload.set(key, [...(byWorkload.get(key) ?? []), object]);
      }
  }
  for (const [namespace, list] of unselected) {
    if (list.length < 2) continue;
    const { code, name, what } = codes.perNamespace;
    for (const object of list)
      add(object, {
        code,
        name,
        level: 'ERROR',
        message: `The ${what} ${names(list)} in namespace "${namespace}" have no workload selector, which can lead to undefined behavior. Weft uses the oldest, ${[...list].sort(byAge)[0]?.name}.`,
      });
  }
  const reported = new Set<string>();
  for (const [workload, list] of [...byWorkload].sort((a, b) => a[0].localeCompare(b[0]))) {
    if (list.length < 2) continue;
    const { code, name, what } = codes.perWorkload;
    const [namespace, address] = [workload.slice(0, workload.indexOf('/')), workload.slice(workload.indexOf('/') + 1)];
    for (const object of list) {
      if (reported.has(id(object))) continue;
      reported.add(id(object));
      add(object, {
        code,
        name,
        level: 'ERROR',
        message: `The ${what} ${names(list)} in namespace "${namespace}" select the same workload (endpoint ${address}), which can lead to undefined behavior. Weft uses the oldest, ${[...list].sort(byAge)[0]?.name}.`,
      });
    }
  }
  return out;
}

/** Telemetry fields the generators do not read (they read accessLogging and tracing, for Envoy sidecars only). */
export function telemetryFieldMessages(telemetry: ConfigObject<TelemetrySpec>): AnalysisMessage[] {
  const messages: AnalysisMessage[] = [];
  const spec = telemetry.spec as Json;
  const targeted = targetRefMessage(spec, 'Telemetry');
  if (targeted) return [targeted];
  if (Array.isArray(spec['metrics']) && spec['metrics'].length > 0)
    messages.push(fieldNotApplied(`spec.metrics: not applied; Weft configures no metrics (${everyProxy})`));
  (telemetry.spec.accessLogging ?? []).forEach((entry, i) => {
    if (entry.filter) messages.push(fieldNotApplied(`spec.accessLogging[${i}].filter: not applied; every request is logged`));
  });
  for (const field of ['accessLogging', 'tracing'] as const)
    if ((telemetry.spec[field]?.length ?? 0) > 0)
      messages.push(
        fieldNotApplied(
          `spec.${field}: not applied to proxyless gRPC workloads (gRPC's xDS client has no access log or tracer configuration); Envoy sidecars apply it`,
        ),
      );
  return messages;
}

/**
 * The providers a Telemetry names, checked against the mesh's extension providers (Istio's
 * MeshConfig; `envoy` is Istio's built-in access log): a name that is not one, or not of the
 * kind the field needs, configures nothing (WEFT0005). Istio's IST0157 (telemetry/providers.go):
 * an accessLogging entry with no providers, when the mesh has no default access log provider,
 * is ignored. Only when the mesh's providers are known (`telemetry` undefined: nothing is checked).
 */
export function telemetryProviderMessages(telemetry: ConfigObject<TelemetrySpec>, mesh: MeshTelemetry | undefined): AnalysisMessage[] {
  if (!mesh) return [];
  const messages: AnalysisMessage[] = [];
  const providers = new Map((mesh.extensionProviders ?? []).map((p) => [p.name, p]));
  type Entry = { providers?: Array<{ name: string }>; disabled?: boolean };
  ((telemetry.spec.accessLogging ?? []) as Entry[]).forEach((entry, i) => {
    if (entry.disabled) return;
    if ((entry.providers ?? []).length === 0 && (mesh.defaultProviders?.accessLogging ?? []).length === 0)
      messages.push({
        code: 'IST0157',
        name: 'InvalidTelemetryProvider',
        level: 'WARNING',
        message: `spec.accessLogging[${i}]: The Telemetry ${telemetry.name} in namespace "${telemetry.namespace}" with empty providers will be ignored.`,
      });
    (entry.providers ?? []).forEach((provider, j) => {
      if (provider.name === 'envoy' || providers.get(provider.name)?.envoyFileAccessLog) return;
      messages.push(
        fieldNotApplied(
          `spec.accessLogging[${i}].providers[${j}]: "${provider.name}" is not an envoyFileAccessLog extension provider of the mesh (meshConfig.extensionProviders), so nothing is logged through it`,
        ),
      );
    });
  });
  ((telemetry.spec.tracing ?? []) as Entry[]).forEach((entry, i) =>
    (entry.providers ?? []).forEach((provider, j) => {
      const known = providers.get(provider.name);
      if (known?.opentelemetry || known?.zipkin) return;
      messages.push(
        fieldNotApplied(
          `spec.tracing[${i}].providers[${j}]: "${provider.name}" is not an opentelemetry or zipkin extension provider of the mesh (meshConfig.extensionProviders), so nothing is traced through it`,
        ),
      );
    }),
  );
  return messages;
}

/** Policies attached by `targetRef(s)` are for gateways and waypoints (as in Istio), which Weft does not run. */
export function targetRefMessage(spec: unknown, kind: string): AnalysisMessage | undefined {
  const s = (spec ?? {}) as { targetRef?: unknown; targetRefs?: unknown[] };
  if (!s.targetRef && (s.targetRefs?.length ?? 0) === 0) return undefined;
  const field = s.targetRef ? 'spec.targetRef' : 'spec.targetRefs';
  return notApplied(
    `${field}: a ${kind} attached by targetRef applies to gateways and waypoints, which Weft does not run; use spec.selector for sidecars and proxyless gRPC`,
  );
}

/**
 * PeerAuthentications Istio ignores (pilot/pkg/security/authn/policy_applier.go ComposePeerAuthentication,
 * pilot/pkg/model/authentication.go): a second mesh-level (root namespace, no selector) or namespace-level
 * policy (the oldest is used), a selector in the root namespace, and, per workload, all but the oldest
 * policy whose selector matches it. By `namespace/name`.
 */
export function peerAuthenticationConflicts(
  policies: ReadonlyArray<ConfigObject<PeerAuthenticationSpec>>,
  rootNamespace: string,
  workloads: ReadonlyArray<SelectableWorkload>,
): Map<string, AnalysisMessage[]> {
  const out = new Map<string, AnalysisMessage[]>();
  const add = (object: ConfigObject<unknown>, message: AnalysisMessage) => out.set(id(object), [...(out.get(id(object)) ?? []), message]);
  const selectorOf = (p: ConfigObject<PeerAuthenticationSpec>) => (p.spec.selector?.matchLabels ?? {}) as Record<string, string>;
  const sorted = [...policies].sort(byAge);
  const firstAtScope = new Map<string, ConfigObject<PeerAuthenticationSpec>>();
  for (const policy of sorted) {
    const selects = Object.keys(selectorOf(policy)).length > 0;
    if (selects && policy.namespace === rootNamespace) {
      add(
        policy,
        notApplied(
          `spec.selector: a PeerAuthentication with a selector in the root namespace (${rootNamespace}) is ignored, as in Istio; put it in the workload's namespace, or drop the selector for a mesh-wide policy`,
        ),
      );
      continue;
    }
    if (selects) continue;
    const first = firstAtScope.get(policy.namespace);
    if (!first) {
      firstAtScope.set(policy.namespace, policy);
      continue;
    }
    const scope = policy.namespace === rootNamespace ? 'mesh-wide' : `namespace-wide (${policy.namespace})`;
    add(
      policy,
      notApplied(
        `the older ${scope} PeerAuthentication ${id(first)} is used; a scope has one policy without a selector, and this one is ignored`,
      ),
    );
  }
  const reported = new Set<string>();
  for (const workload of workloads) {
    const selecting = sorted.filter(
      (p) =>
        p.namespace === workload.namespace &&
        p.namespace !== rootNamespace &&
        Object.keys(selectorOf(p)).length > 0 &&
        labelsMatch(selectorOf(p), workload.labels),
    );
    const [winner, ...ignored] = selecting;
    for (const policy of ignored) {
      if (reported.has(id(policy))) continue;
      reported.add(id(policy));
      add(
        policy,
        shadowed(
          `spec.selector: the workload ${workload.namespace}/${workload.address} (${describeLabels(workload.labels)}) is also selected by the older PeerAuthentication ${id(winner as ConfigObject<unknown>)}, which is used for it; this one is ignored there`,
        ),
      );
    }
  }
  return out;
}

/**
 * A WorkloadEntry that a Kubernetes Service's selector matches: Istio adds it to the Service's
 * endpoints; Weft adds WorkloadEntries only to the ServiceEntries whose workloadSelector picks them.
 */
export function workloadEntryMessages(entry: ConfigObject<WorkloadEntrySpec>, services: ReadonlyArray<MeshService>): AnalysisMessage[] {
  const labels = (entry.spec.labels ?? {}) as Record<string, string>;
  const selecting = services.filter(
    (s) =>
      !s.hostname && s.namespace === entry.namespace && s.selector && Object.keys(s.selector).length > 0 && labelsMatch(s.selector, labels),
  );
  if (selecting.length === 0) return [];
  return [
    fieldNotApplied(
      `spec.labels: the Service${selecting.length > 1 ? 's' : ''} ${selecting
        .map((s) => s.name)
        .sort()
        .join(
          ', ',
        )} select this WorkloadEntry, but Weft adds WorkloadEntries only to ServiceEntries whose workloadSelector picks them, so it is not an endpoint of ${selecting.length > 1 ? 'them' : 'it'}`,
    ),
  ];
}

/** ServiceEntry endpoints the generators leave out (a Unix domain socket address). */
export function serviceEntryFieldMessages(entry: ConfigObject<{ endpoints?: Array<{ address?: string }> }>): AnalysisMessage[] {
  return (entry.spec.endpoints ?? []).flatMap((endpoint, i) =>
    endpoint.address?.startsWith('unix://')
      ? [fieldNotApplied(`spec.endpoints[${i}].address: Unix domain socket endpoints are not applied (${everyProxy})`)]
      : [],
  );
}

export const describeLabels = (labels: Record<string, string>) =>
  Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',') || '(none)';
