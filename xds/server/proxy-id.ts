// Istio's proxy node id, `<type>~<ip>~<pod>.<namespace>~<namespace>.svc.<domain>`,
// read into what it says (the agent builds it from the pod it runs in).
export interface ProxyId {
  type: string;
  ip: string;
  pod: string;
  namespace: string;
  domain: string;
}

export function parseProxyId(nodeId: string): ProxyId | undefined {
  const parts = nodeId.split('~');
  if (parts.length !== 4) return undefined;
  const [type, ip, podDotNamespace, domain] = parts as [string, string, string, string];
  const dot = podDotNamespace.lastIndexOf('.');
  if (!type || !ip || dot <= 0) return undefined;
  return { type, ip, pod: podDotNamespace.slice(0, dot), namespace: podDotNamespace.slice(dot + 1), domain };
}

/** The pod a proxy says it runs in, for status pages. */
export function podOf(nodeId: string | undefined): { pod?: { name: string; namespace: string; ip: string } } {
  const id = nodeId ? parseProxyId(nodeId) : undefined;
  return id ? { pod: { name: id.pod, namespace: id.namespace, ip: id.ip } } : {};
}
