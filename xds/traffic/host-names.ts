// Istio's host rules: short names resolve in the namespace of the object that
// names them, and `*` / `*.suffix` wildcards match by suffix.

/** `reviews` in a rule of namespace `bookinfo` means `reviews.bookinfo.svc.<domain>`; names with a dot are taken as they are. */
export function resolveHost(host: string, namespace: string, clusterDomain: string): string {
  if (host === '*' || host.startsWith('*.') || host.includes('.')) return host;
  return `${host}.${namespace}.svc.${clusterDomain}`;
}

export function hostMatches(pattern: string, host: string): boolean {
  if (pattern === '*') return true;
  if (pattern.startsWith('*.')) return host.endsWith(pattern.slice(1));
  return pattern === host;
}

/** How specific a pattern is: exact names beat longer wildcards, which beat shorter ones. */
export function hostSpecificity(pattern: string): number {
  return pattern.startsWith('*') ? pattern.length : Number.MAX_SAFE_INTEGER;
}

/**
 * Istio's exportTo: `*` everywhere (the default), `.` the object's own namespace,
 * `~` nowhere, or namespace names.
 */
export function exportedTo(exportTo: ReadonlyArray<string> | undefined, ownNamespace: string, viewerNamespace: string): boolean {
  if (!exportTo || exportTo.length === 0) return true;
  return exportTo.some((entry) => entry === '*' || (entry === '.' ? ownNamespace === viewerNamespace : entry === viewerNamespace));
}

export const labelsMatch = (selector: Record<string, string> | undefined, labels: Record<string, string>): boolean =>
  Object.entries(selector ?? {}).every(([key, value]) => labels[key] === value);
