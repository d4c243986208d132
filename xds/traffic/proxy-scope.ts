// What makes one proxy's config differ from another's: its kind, namespace and
// labels (exportTo, Sidecar scoping, sourceLabels and the DestinationRule lookup
// all read these). Proxies with the same scope share one snapshot.
import type { DiscoveryNode } from '../server/discovery-types.js';
import { parseProxyId } from '../server/proxy-id.js';

export type ProxyKind = 'grpc' | 'sidecar';

export interface ProxyScope {
  kind: ProxyKind;
  namespace: string;
  labels: Record<string, string>;
}

/** Node metadata as Istio's agent and grpc-agent bootstrap write it: GENERATOR, NAMESPACE, LABELS. */
export function proxyScopeOf(node: DiscoveryNode): ProxyScope {
  const metadata = node.metadata ?? {};
  const kind: ProxyKind = metadata['GENERATOR'] === 'grpc' ? 'grpc' : 'sidecar';
  const fromId = parseProxyId(node.id);
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
