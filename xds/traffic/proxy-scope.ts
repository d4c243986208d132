// What makes one proxy's config differ from another's: its kind, namespace and
// labels (exportTo, Sidecar scoping, sourceLabels and the DestinationRule lookup
// all read these). Proxies with the same scope share one snapshot.
import type { DiscoveryNode } from '../server/discovery-types.js';
import { parseProxyId } from '../server/proxy-id.js';

/**
 * `sidecar`: Envoy next to a workload (node id type `sidecar`); `router`: Envoy as a
 * gateway (node id type `router`, Istio's proxyv2 in router mode: it gets Gateway
 * listeners, no 15001/15006); `grpc`: proxyless gRPC (`GENERATOR: grpc`).
 * ISTIO_META_ROUTER_MODE (sni-dnat or standard) changes how a gateway routes, not its type.
 */
export type ProxyKind = 'grpc' | 'sidecar' | 'router';

export interface ProxyScope {
  kind: ProxyKind;
  namespace: string;
  labels: Record<string, string>;
}

/**
 * Node metadata as Istio's agent and grpc-agent bootstrap write it: GENERATOR, NAMESPACE, LABELS;
 * the kind from GENERATOR, else the node id's type (`router~...` is a gateway, as istiod's
 * model.ParseServiceNodeWithMetadata reads it; anything else is a sidecar).
 */
export function proxyScopeOf(node: DiscoveryNode): ProxyScope {
  const metadata = node.metadata ?? {};
  const fromId = parseProxyId(node.id);
  const kind: ProxyKind = metadata['GENERATOR'] === 'grpc' ? 'grpc' : fromId?.type === 'router' ? 'router' : 'sidecar';
  const namespace = typeof metadata['NAMESPACE'] === 'string' ? metadata['NAMESPACE'] : (fromId?.namespace ?? '');
  const labels: Record<string, string> = {};
  const rawLabels = metadata['LABELS'];
  if (rawLabels && typeof rawLabels === 'object' && !Array.isArray(rawLabels)) {
    for (const [key, value] of Object.entries(rawLabels as Record<string, unknown>)) if (typeof value === 'string') labels[key] = value;
  }
  return { kind, namespace, labels };
}

/** Equal scopes give equal keys; label order does not matter. */
export function scopeKey(scope: ProxyScope): string {
  const labels = Object.keys(scope.labels)
    .sort()
    .map((key) => `${key}=${scope.labels[key]}`)
    .join(',');
  return `${scope.kind}|${scope.namespace}|${labels}`;
}
