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

/** What the virtual host domains of one service are built from. */
export interface VirtualHostDomainsInput {
  /** The service's hostname: `reviews.bookinfo.svc.cluster.local`, or a ServiceEntry host as written (`api.example.com`, `*.example.com`). */
  hostname: string;
  /** Its addresses (a Kubernetes Service's cluster IPs, a ServiceEntry's `addresses`, `/32` dropped); `0.0.0.0` and '' are skipped. */
  addresses?: ReadonlyArray<string>;
  /** A headless Kubernetes Service (Istio's Passthrough resolution): each name also matches as `*.<name>` (its pods' names). */
  headless?: boolean;
  /** The caller's namespace: the bare short name (`reviews`) is only for callers in the service's namespace. */
  callerNamespace: string;
  clusterDomain: string;
  /**
   * The port to add as `name:port` next to each name (proxyless gRPC, which matches the
   * authority as sent). Unset for Envoy sidecars: their route configuration sets
   * `ignore_port_in_host_matching`, so Istio lists the names without ports.
   */
  port?: number;
}

/**
 * Every `domains` entry Istio gives a service's virtual host for one caller
 * (pilot/pkg/networking/core/httproute.go generateVirtualHostDomains,
 * GenerateAltVirtualHosts, generateAltVirtualHostsForKubernetesService,
 * appendDomainPort), in Istio's order: the hostname, its absolute form with a
 * trailing dot (PILOT_ENABLE_ABSOLUTE_FQDN_VHOST_DOMAIN, on by default), then for a
 * hostname under `.svc.<clusterDomain>`: `reviews`, `reviews.bookinfo.svc`,
 * `reviews.bookinfo` for a caller in `bookinfo`, `reviews.bookinfo`,
 * `reviews.bookinfo.svc` for any other caller (other hostnames, ServiceEntry ones
 * included, get no short forms: a short name would be ambiguous); `*.`-prefixed
 * copies for a headless Service; then the addresses. With `port`, each name is
 * followed by `name:port` (IPv6 addresses bracketed). Duplicates are dropped.
 */
export function virtualHostDomains(input: VirtualHostDomainsInput): string[] {
  const { hostname, port } = input;
  const withPort = (name: string) => {
    const host = name.includes(':') ? `[${name}]` : name;
    return port === undefined ? [host] : [host, `${host}:${port}`];
  };
  // The proxy's DNS domain, as the agent writes it in the node id: <namespace>.svc.<clusterDomain>.
  const sharedSuffix = `.svc.${input.clusterDomain}`;
  const domains = [...withPort(hostname)];
  if (!isIp(hostname)) domains.push(...withPort(`${hostname}.`));
  const svc = hostname.indexOf('.svc.');
  if (hostname.endsWith(sharedSuffix) && svc > 0) {
    const dot = hostname.indexOf('.');
    // `name.namespace` needs both parts: `name.svc.<domain>` has no namespace and no short forms.
    if (dot + 1 < svc) {
      const nameAndNamespace = hostname.slice(0, svc);
      const short =
        hostname.slice(dot + 1, svc) === input.callerNamespace
          ? [hostname.slice(0, dot), `${nameAndNamespace}.svc`, nameAndNamespace]
          : [nameAndNamespace, `${nameAndNamespace}.svc`];
      domains.push(...short.flatMap(withPort));
    }
  }
  if (input.headless) domains.push(...domains.map((domain) => `*.${domain}`));
  for (const written of input.addresses ?? []) {
    // A ServiceEntry's one-address CIDR is that address (Istio's serviceentry/conversion.go); wider CIDRs stay as written.
    const address = written.replace(/\/(32|128)$/, '');
    if (address && address !== '0.0.0.0') domains.push(...withPort(address));
  }
  return [...new Set(domains)];
}

const isIp = (name: string) => /^\d{1,3}(\.\d{1,3}){3}$/.test(name) || (name.includes(':') && /^[0-9a-fA-F:.]+$/.test(name));
