// `weft proxy-config`, pure: a proxy's config dump (Anys unpacked, keys masked)
// into istioctl-style tables.
import { X509Certificate } from 'node:crypto';
import { typeUrls } from '../xds/protos.js';
import { resourcesOf, type ConfigDump, type Json } from './config-dump.js';
import { orDash, type Row, type Table } from './table.js';

export const proxyConfigKinds = ['clusters', 'listeners', 'routes', 'endpoints', 'secrets', 'all'] as const;
export type ProxyConfigKind = (typeof proxyConfigKinds)[number];
export type ResourceKind = Exclude<ProxyConfigKind, 'all'>;

export const typeUrlOf: Record<ResourceKind, string> = {
  clusters: typeUrls.cluster,
  listeners: typeUrls.listener,
  routes: typeUrls.route,
  endpoints: typeUrls.endpoint,
  secrets: typeUrls.secret,
};

const obj = (value: unknown): Json => (value && typeof value === 'object' && !Array.isArray(value) ? (value as Json) : {});
const list = (value: unknown): Json[] => (Array.isArray(value) ? (value as Json[]) : []);
const str = (value: unknown): string | undefined => (typeof value === 'string' || typeof value === 'number' ? String(value) : undefined);
const typeName = (any: Json) =>
  str(any['@type'] ?? any['type_url'])
    ?.split('.')
    .pop() ?? '';

/** `outbound|9080|v1|reviews.ns.svc.cluster.local`, Istio's cluster name, into its parts. */
export function clusterRow(cluster: Json): Row {
  const name = str(cluster['name']) ?? '';
  const parts = name.split('|');
  const type = str(cluster['type']) ?? str(obj(cluster['cluster_type'])['name']) ?? 'STATIC';
  if (parts.length === 4) {
    const [direction, port, subset, host] = parts as [string, string, string, string];
    return [host || '-', orDash(port), orDash(subset), direction.toUpperCase(), type];
  }
  return [name, '-', '-', '-', type];
}

export function clustersTable(dump: ConfigDump): Table {
  return {
    headers: ['SERVICE FQDN', 'PORT', 'SUBSET', 'DIRECTION', 'TYPE'],
    rows: resourcesOf(dump, typeUrls.cluster).map(clusterRow),
  };
}

/** Where an HTTP connection manager sends requests: an RDS name or an inline route table. */
function httpDestination(hcm: Json): string {
  const rds = str(obj(hcm['rds'])['route_config_name']);
  if (rds !== undefined) return `Route: ${rds}`;
  const inline = obj(hcm['route_config']);
  return `Inline Route: ${orDash(str(inline['name']))}`;
}

function filterDestination(filter: Json): string | undefined {
  const config = obj(filter['typed_config']);
  const type = typeName(config);
  if (type === 'HttpConnectionManager') return httpDestination(config);
  if (type === 'TcpProxy') {
    const cluster = str(config['cluster']);
    if (cluster) return `Cluster: ${cluster}`;
    const weighted = list(obj(config['weighted_clusters'])['clusters']).map((c) => `${str(c['name'])} (${str(c['weight'])})`);
    return `Clusters: ${weighted.join(', ')}`;
  }
  return undefined;
}

function chainMatch(match: Json): string {
  const parts: string[] = [];
  const port = str(obj(match['destination_port'])['value']);
  if (port) parts.push(`Port: ${port}`);
  const ranges = list(match['prefix_ranges']).map((r) => `${str(r['address_prefix'])}/${str(obj(r['prefix_len'])['value']) ?? '32'}`);
  if (ranges.length) parts.push(`Addr: ${ranges.join(',')}`);
  const sni = list(match['server_names']).map(String);
  if (sni.length) parts.push(`SNI: ${sni.join(',')}`);
  const transport = str(match['transport_protocol']);
  if (transport) parts.push(`Trans: ${transport}`);
  const alpn = list(match['application_protocols']).map(String);
  if (alpn.length) parts.push(`App: ${alpn.join(',')}`);
  return parts.join('; ') || 'ALL';
}

/** One row per filter chain (Istio's inbound listeners have several); API listeners (proxyless gRPC) have one. */
export function listenerRows(listener: Json): Row[] {
  const name = str(listener['name']) ?? '';
  const socket = obj(obj(listener['address'])['socket_address']);
  const address = orDash(str(socket['address']));
  const port = orDash(str(socket['port_value']));
  const api = obj(obj(listener['api_listener'])['api_listener']);
  if (Object.keys(api).length > 0) {
    return [[name, address, port, 'ALL', typeName(api) === 'HttpConnectionManager' ? httpDestination(api) : typeName(api)]];
  }
  const chains = list(listener['filter_chains']);
  if (chains.length === 0) return [[name, address, port, '-', '-']];
  return chains.map((chain) => {
    const filters = list(chain['filters']);
    const destination =
      filters.map(filterDestination).find((d) => d !== undefined) ?? (filters.map((f) => str(f['name'])).join(', ') || '-');
    return [name, address, port, chainMatch(obj(chain['filter_chain_match'])), destination];
  });
}

export function listenersTable(dump: ConfigDump): Table {
  return {
    headers: ['NAME', 'ADDRESS', 'PORT', 'MATCH', 'DESTINATION'],
    rows: resourcesOf(dump, typeUrls.listener).flatMap(listenerRows),
  };
}

function routeMatch(match: Json): string {
  const prefix = str(match['prefix']);
  let path =
    prefix !== undefined
      ? prefix === '' || prefix === '/'
        ? '/*'
        : `${prefix}*`
      : (str(match['path']) ??
        (str(obj(match['safe_regex'])['regex']) !== undefined ? `regex ${str(obj(match['safe_regex'])['regex'])}` : undefined) ??
        (str(match['path_separated_prefix']) !== undefined ? `${str(match['path_separated_prefix'])}/*` : undefined) ??
        (match['connect_matcher'] ? 'CONNECT' : '-'));
  const headers = list(match['headers']).length;
  if (headers) path += ` (+${headers} header${headers > 1 ? 's' : ''})`;
  return path;
}

function routeDestination(route: Json): string {
  const action = obj(route['route']);
  if (str(action['cluster'])) return str(action['cluster']) as string;
  const weighted = list(obj(action['weighted_clusters'])['clusters']);
  if (weighted.length) return weighted.map((c) => `${str(c['name'])} (${str(obj(c['weight'])['value'] ?? c['weight'])})`).join(', ');
  if (str(action['cluster_header'])) return `header ${str(action['cluster_header'])}`;
  if (route['redirect']) return 'redirect';
  if (route['direct_response']) return `direct response ${orDash(str(obj(route['direct_response'])['status']))}`;
  if (route['non_forwarding_action']) return 'non-forwarding (server)';
  return '-';
}

function domainsOf(virtualHost: Json): string {
  const domains = list(virtualHost['domains']).map(String);
  if (domains.length <= 1) return orDash(domains[0]);
  return `${domains[0]} +${domains.length - 1} more`;
}

function routeConfigRows(config: Json, name: string): Row[] {
  return list(config['virtual_hosts']).flatMap((vhost) => {
    const routes = list(vhost['routes']);
    const base = [name, orDash(str(vhost['name'])), domainsOf(vhost)];
    if (routes.length === 0) return [[...base, '-', '-']];
    return routes.map((route) => [...base, routeMatch(obj(route['match'])), routeDestination(route)]);
  });
}

/** RDS route tables, then those inline in listeners (a proxyless gRPC server's inbound routes). */
export function routesTable(dump: ConfigDump): Table {
  const inline = resourcesOf(dump, typeUrls.listener).flatMap((listener) =>
    list(listener['filter_chains'])
      .flatMap((chain) => list(chain['filters']))
      .map((filter) => obj(obj(filter['typed_config'])['route_config']))
      .filter((config) => Object.keys(config).length > 0)
      .flatMap((config) => routeConfigRows(config, `${orDash(str(config['name']))} (inline in ${str(listener['name'])})`)),
  );
  return {
    headers: ['NAME', 'VHOST NAME', 'DOMAINS', 'MATCH', 'DESTINATION'],
    rows: [...resourcesOf(dump, typeUrls.route).flatMap((config) => routeConfigRows(config, orDash(str(config['name'])))), ...inline],
  };
}

export function endpointsTable(dump: ConfigDump): Table {
  const rows = resourcesOf(dump, typeUrls.endpoint).flatMap((assignment) =>
    list(assignment['endpoints'])
      .flatMap((locality) => list(locality['lb_endpoints']))
      .map((lb) => {
        const socket = obj(obj(obj(lb['endpoint'])['address'])['socket_address']);
        return [
          `${str(socket['address'])}:${str(socket['port_value'])}`,
          str(lb['health_status']) ?? 'UNKNOWN',
          orDash(str(assignment['cluster_name'])),
        ];
      }),
  );
  return { headers: ['ENDPOINT', 'STATUS', 'CLUSTER'], rows };
}

function certificateOf(source: Json): X509Certificate | undefined {
  const pem =
    str(source['inline_string']) ??
    (str(source['inline_bytes']) ? Buffer.from(str(source['inline_bytes']) as string, 'base64') : undefined);
  if (!pem) return undefined;
  try {
    return new X509Certificate(pem);
  } catch {
    return undefined;
  }
}

/** Certificates only: names, validity, identity. `now` decides VALID, so tests pin it. */
export function secretsTable(dump: ConfigDump, now: Date): Table {
  const rows = resourcesOf(dump, typeUrls.secret).map((secret) => {
    const name = orDash(str(secret['name']));
    const tls = obj(secret['tls_certificate']);
    const validation = obj(secret['validation_context']);
    const isChain = Object.keys(tls).length > 0;
    const type = isChain ? 'Cert Chain' : Object.keys(validation).length > 0 ? 'CA' : 'Unknown';
    const cert = certificateOf(obj(isChain ? tls['certificate_chain'] : validation['trusted_ca']));
    if (!cert) return [name, type, '-', '-', '-', '-', '-'];
    const notBefore = new Date(cert.validFrom);
    const notAfter = new Date(cert.validTo);
    const valid = now >= notBefore && now <= notAfter;
    const identity =
      cert.subjectAltName
        ?.split(', ')
        .find((san) => san.startsWith('URI:'))
        ?.slice(4) ?? cert.subject.replace(/\n/g, ',');
    return [
      name,
      type,
      valid ? 'true' : 'false',
      cert.serialNumber.toLowerCase(),
      notAfter.toISOString(),
      notBefore.toISOString(),
      identity,
    ];
  });
  return { headers: ['RESOURCE NAME', 'TYPE', 'VALID CERT', 'SERIAL NUMBER', 'NOT AFTER', 'NOT BEFORE', 'IDENTITY'], rows };
}

export function proxyConfigTable(dump: ConfigDump, kind: ResourceKind, now: Date): Table {
  switch (kind) {
    case 'clusters':
      return clustersTable(dump);
    case 'listeners':
      return listenersTable(dump);
    case 'routes':
      return routesTable(dump);
    case 'endpoints':
      return endpointsTable(dump);
    case 'secrets':
      return secretsTable(dump, now);
  }
}

/** `-o json|yaml`: the resources of one kind, or the whole dump for `all`. */
export function proxyConfigData(dump: ConfigDump, kind: ProxyConfigKind): unknown {
  return kind === 'all' ? dump : resourcesOf(dump, typeUrlOf[kind]);
}
