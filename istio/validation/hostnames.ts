// Names as Istio checks them (pkg/config/validation/agent): DNS-1123 labels, hostnames with
// an optional leading wildcard label, IP addresses and CIDR ranges.
import { isIP } from 'node:net';

// Istio's own forms (pkg/config/labels), which also take upper case.
const dns1123Label = /^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$/;
const wildcardLabel = /^(?:\*|(?:\*|\*-)?[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?)$/;

export const isDns1123Label = (value: string): boolean => value.length <= 63 && dns1123Label.test(value);

function labelsProblem(domain: string, rest: string): string | undefined {
  const parts = rest.split('.');
  const top = parts[parts.length - 1] ?? '';
  if (/^\d+$/.test(top)) return `domain name "${domain}" invalid (top level domain "${top}" cannot be all-numeric)`;
  for (const [i, label] of parts.entries()) {
    // A trailing dot (istio.io.) is allowed.
    if (i === parts.length - 1 && label === '' && i > 0) return undefined;
    if (!isDns1123Label(label)) return `domain name "${domain}" invalid (label "${label}" invalid)`;
  }
  return undefined;
}

function lengthProblem(domain: string): string | undefined {
  if (domain.length === 0) return 'empty domain name not allowed';
  if (domain.length > 255) return `domain name "${domain}" too long (max 255)`;
  return undefined;
}

/** A hostname whose first label may be a wildcard (`*`, `*.example.com`, `reviews.prod.svc.cluster.local`). */
export function wildcardDomainProblem(domain: string): string | undefined {
  if (typeof domain !== 'string') return 'must be a hostname';
  const length = lengthProblem(domain);
  if (length) return length;
  const dot = domain.indexOf('.');
  const first = dot < 0 ? domain : domain.slice(0, dot);
  if (first.length > 63 || !wildcardLabel.test(first)) return `domain name "${domain}" invalid (label "${first}" invalid)`;
  return dot < 0 ? undefined : labelsProblem(domain, domain.slice(dot + 1));
}

/** A fully qualified hostname, no wildcard. */
export function fqdnProblem(domain: string): string | undefined {
  if (typeof domain !== 'string') return 'must be a hostname';
  return lengthProblem(domain) ?? labelsProblem(domain, domain);
}

export const isIpAddress = (value: string): boolean => typeof value === 'string' && isIP(value) !== 0;

/** An IP address or a CIDR range (`10.0.0.0/8`, `2001:db8::/32`). */
export function ipOrCidrProblem(value: string): string | undefined {
  if (typeof value !== 'string') return 'must be an IP address or CIDR range';
  const [address = '', bits, extra] = value.split('/');
  const family = isIP(address);
  if (family === 0 || extra !== undefined) return `"${value}" is not an IP address or CIDR range`;
  if (bits !== undefined && (!/^\d+$/.test(bits) || Number(bits) > (family === 4 ? 32 : 128))) {
    return `"${value}" has an invalid prefix length`;
  }
  return undefined;
}

export const portProblem = (port: unknown): string | undefined =>
  typeof port === 'number' && Number.isInteger(port) && port >= 1 && port <= 65535
    ? undefined
    : `port number ${String(port)} must be in the range 1..65535`;

/** Istio's protocol names (case-insensitive), as Service port names and ServiceEntry ports use them. */
const protocols = new Set(['http', 'https', 'http2', 'grpc', 'grpc-web', 'tcp', 'tls', 'mongo', 'redis', 'mysql', 'udp', 'hbone']);
export const protocolProblem = (protocol: unknown): string | undefined =>
  typeof protocol === 'string' && protocols.has(protocol.toLowerCase()) ? undefined : `unrecognized protocol name "${String(protocol)}"`;

/** Kubernetes label keys and values, as `selector.matchLabels` and subset labels hold them. */
export function labelsProblems(labels: Record<string, unknown> | undefined | null): string[] {
  const problems: string[] = [];
  if (!labels || typeof labels !== 'object') return problems;
  for (const [key, value] of Object.entries(labels)) {
    if (key === '') problems.push('empty label key is not allowed');
    if (key.includes('*') || String(value).includes('*')) problems.push(`wildcard is not supported in selector: "${key}=${String(value)}"`);
  }
  return problems;
}
