// Which proxies can share config. A proxy's labels matter only through the
// selectors that read them, so proxies are grouped by the set of selecting objects
// that match them, not by their labels: `pod-template-hash`, or any label no
// selector names, never splits a group. Outbound config (what a proxy can call)
// and inbound config (what it serves) read different selectors, so each has its
// own key. Pure; the selectors are the ones Istio reads for sidecars:
// Sidecar.workloadSelector, DestinationRule.workloadSelector, VirtualService
// http and tcp match sourceLabels and Telemetry.selector (outbound), Service.selector,
// PeerAuthentication, AuthorizationPolicy, RequestAuthentication and
// Telemetry selectors (inbound).
import { gatewaysSelecting } from './gateway-servers.js';
import { labelsMatch } from './host-names.js';
import type { MeshIndex } from './mesh-index.js';
import { sidecarFor } from './proxy-view.js';
import type { ProxyScope } from './proxy-scope.js';

type Labels = Record<string, string>;

interface Selecting {
  id: string;
  namespace: string;
  labels: Labels;
}

/** The selectors of one model, gathered once (see MeshIndex.of). */
class Selectors {
  readonly destinationRules: Selecting[] = [];
  readonly sourceLabels: Array<{ id: string; labels: Labels }> = [];
  readonly telemetries: Selecting[] = [];
  readonly inbound: Selecting[] = [];
  readonly services: Selecting[] = [];
  /** Whether some tracing provider may apply: then a tracer's service name (the `app` label) is part of the config. */
  readonly tracing: boolean;

  constructor(index: MeshIndex) {
    const config = index.config;
    const nonEmpty = (labels: unknown): labels is Labels => !!labels && Object.keys(labels).length > 0;
    for (const rule of config.destinationRules) {
      const labels = rule.spec.workloadSelector?.matchLabels;
      if (nonEmpty(labels)) this.destinationRules.push({ id: `dr/${rule.namespace}/${rule.name}`, namespace: rule.namespace, labels });
    }
    for (const rule of config.virtualServices) {
      (rule.spec.http ?? []).forEach((http, i) =>
        (http.match ?? []).forEach((match, j) => {
          if (nonEmpty(match.sourceLabels))
            this.sourceLabels.push({ id: `vs/${rule.namespace}/${rule.name}/${i}.${j}`, labels: match.sourceLabels });
        }),
      );
      // tcp routes choose by sourceLabels too (http-routes.ts tcpRouting).
      (rule.spec.tcp ?? []).forEach((tcp, i) =>
        (tcp.match ?? []).forEach((match, j) => {
          if (nonEmpty(match.sourceLabels))
            this.sourceLabels.push({ id: `vs/${rule.namespace}/${rule.name}/tcp${i}.${j}`, labels: match.sourceLabels });
        }),
      );
    }
    for (const telemetry of config.telemetries) {
      const labels = telemetry.spec.selector?.matchLabels;
      if (nonEmpty(labels))
        this.telemetries.push({ id: `tm/${telemetry.namespace}/${telemetry.name}`, namespace: telemetry.namespace, labels });
    }
    for (const services of index.byNamespace.values()) {
      for (const service of services) {
        if (nonEmpty(service.selector))
          this.services.push({ id: `svc/${service.namespace}/${service.name}`, namespace: service.namespace, labels: service.selector });
      }
    }
    this.tracing =
      (index.model.meshConfig?.telemetry?.defaultProviders?.tracing?.length ?? 0) > 0 ||
      config.telemetries.some((t) => (t.spec.tracing?.length ?? 0) > 0);
    const policies = [
      ...config.peerAuthentications.map((p) => ({ kind: 'pa', p })),
      ...config.authorizationPolicies.map((p) => ({ kind: 'ap', p })),
      ...config.requestAuthentications.map((p) => ({ kind: 'ra', p })),
    ];
    for (const { kind, p } of policies) {
      const labels = (p.spec as { selector?: { matchLabels?: Labels } }).selector?.matchLabels;
      if (nonEmpty(labels)) this.inbound.push({ id: `${kind}/${p.namespace}/${p.name}`, namespace: p.namespace, labels });
    }
  }
}

const selectorsOf = new WeakMap<MeshIndex, Selectors>();

function selectors(index: MeshIndex): Selectors {
  let found = selectorsOf.get(index);
  if (!found) {
    found = new Selectors(index);
    selectorsOf.set(index, found);
  }
  return found;
}

const matching = (candidates: ReadonlyArray<Selecting>, namespaces: ReadonlyArray<string>, labels: Labels) =>
  candidates.filter((s) => namespaces.includes(s.namespace) && labelsMatch(s.labels, labels)).map((s) => s.id);

/**
 * The key of a proxy's outbound config: its kind, its namespace, and the ids of
 * the selecting objects that match its labels (the Sidecar that applies to it,
 * DestinationRules with a workloadSelector, VirtualService match blocks with
 * sourceLabels, Telemetry selectors). Equal keys, equal outbound config.
 */
export function outboundScopeKey(index: MeshIndex, scope: ProxyScope): string {
  const s = selectors(index);
  const sidecar = sidecarFor(index.config.sidecars, scope, index.rootNamespace);
  const ids = [
    ...(sidecar ? [`sc/${sidecar.namespace}/${sidecar.name}`] : []),
    ...matching(s.destinationRules, [scope.namespace], scope.labels),
    ...s.sourceLabels.filter((m) => labelsMatch(m.labels, scope.labels)).map((m) => m.id),
    ...matching(s.telemetries, [scope.namespace, index.rootNamespace], scope.labels),
    ...tracedName(s, scope),
  ].sort();
  return `${scope.kind}|${scope.namespace}|${ids.join(',')}`;
}

/**
 * The key of a sidecar's inbound config: its namespace and the ids of the
 * Services, PeerAuthentications, AuthorizationPolicies, RequestAuthentications and
 * Telemetry objects whose selector matches its labels. Equal keys, equal inbound config.
 */
export function inboundScopeKey(index: MeshIndex, scope: ProxyScope): string {
  const s = selectors(index);
  const ids = [
    ...matching(s.services, [scope.namespace], scope.labels),
    ...matching(s.inbound, [scope.namespace, index.rootNamespace], scope.labels),
    ...matching(s.telemetries, [scope.namespace, index.rootNamespace], scope.labels),
    ...tracedName(s, scope),
  ].sort();
  return `${scope.namespace}|${ids.join(',')}`;
}

/** A tracer names the workload's service (hcm-telemetry's service_name, from `app`), so with tracing on it keys the group. */
function tracedName(s: Selectors, scope: ProxyScope): string[] {
  if (!s.tracing) return [];
  return [`trace/${scope.labels['app'] ?? scope.labels['app.kubernetes.io/name'] ?? ''}`];
}

/**
 * The outbound scope a gateway proxy's clusters and endpoints come from: a sidecar's in its
 * namespace, with no labels, as istiod gives a router the default SidecarScope of its
 * namespace (Proxy.SetSidecarScope reads no workload labels for gateways). Other kinds: their own.
 */
export function outboundScopeOf(scope: ProxyScope): ProxyScope {
  return scope.kind === 'router' ? { kind: 'sidecar', namespace: scope.namespace, labels: {} } : scope;
}

/**
 * The key of a gateway proxy's listeners and routes: its namespace (which VirtualServices it
 * sees), the Gateways selecting it, the Services selecting its workload (their ports decide
 * the listener ports), and the VirtualService match blocks whose sourceLabels match it, and
 * Telemetry selecting it. Equal keys, equal gateway config.
 */
export function gatewayScopeKey(index: MeshIndex, scope: ProxyScope): string {
  const s = selectors(index);
  const gateways = gatewaysSelecting(index, scope).map((g) => `gw/${g.namespace}/${g.name}`);
  const ids = [
    ...matching(s.services, [scope.namespace], scope.labels),
    ...s.sourceLabels.filter((m) => labelsMatch(m.labels, scope.labels)).map((m) => m.id),
    ...matching(s.telemetries, [scope.namespace, index.rootNamespace], scope.labels),
    ...tracedName(s, scope),
  ].sort();
  return `router|${scope.namespace}|${gateways.join(',')}|${ids.join(',')}`;
}
