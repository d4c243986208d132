// AuthorizationPolicy on TCP ports of Envoy sidecars: the HTTP RBAC filters'
// rules, re-used by Envoy's network RBAC filter where they only name what a TCP
// connection has (principals, IPs, ports). Rules that need HTTP (paths, methods,
// headers, JWT claims) cannot match a TCP connection; as Istio does, they fail
// closed: an ALLOW policy with them is left out (allows less), a DENY policy with
// them denies every connection (denies more), and each is reported. Pure.
import { any, typeOf } from '../protos.js';
import type { HttpFilter } from './authorization-policies.js';

const httpRbacType = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';
const networkRbacType = 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC';

/** Matchers only an HTTP request has. */
const httpOnly = /"(header|url_path|metadata|requested_server_name|uri_template)"/;

interface Rules {
  action?: string;
  policies?: Record<string, unknown>;
}

export interface NetworkRbac {
  filters: Array<{ name: string; typed_config: { type_url: string; value: Buffer } }>;
  problems: string[];
}

export function networkRbacFilters(httpFilters: ReadonlyArray<HttpFilter>, port: number): NetworkRbac {
  const type = typeOf(httpRbacType);
  const filters: NetworkRbac['filters'] = [];
  const problems: string[] = [];
  for (const filter of httpFilters) {
    if (filter.typed_config.type_url !== httpRbacType) {
      // A CUSTOM (ext_authz) check needs an HTTP request: fail closed.
      problems.push(`port ${port} is TCP: ${filter.name} needs HTTP, so every connection is denied`);
      filters.push({ name: `envoy.filters.network.rbac.${filter.name.split('.').pop()}`, typed_config: denyAll(port) });
      continue;
    }
    const config = type.toObject(type.decode(filter.typed_config.value), { enums: String, longs: Number }) as { rules?: Rules };
    const rules = config.rules;
    // Shadow-only filters (dry run, CUSTOM's marker) have no enforced rules.
    if (!rules) continue;
    const kept: Record<string, unknown> = {};
    let denyAllRules = false;
    for (const [name, policy] of Object.entries(rules.policies ?? {})) {
      if (!httpOnly.test(JSON.stringify(policy))) {
        kept[name] = policy;
        continue;
      }
      if (rules.action === 'DENY') {
        denyAllRules = true;
        problems.push(`port ${port} is TCP: DENY rule ${name} needs HTTP attributes, so every connection is denied`);
      } else {
        problems.push(`port ${port} is TCP: ${rules.action ?? 'ALLOW'} rule ${name} needs HTTP attributes and is left out`);
      }
    }
    filters.push({
      name: filter.name.replace('envoy.filters.http.rbac', 'envoy.filters.network.rbac'),
      typed_config: denyAllRules
        ? denyAll(port)
        : any(networkRbacType, { stat_prefix: `tcp_${port}.`, rules: { action: rules.action ?? 'ALLOW', policies: kept } }),
    });
  }
  return { filters, problems };
}

const denyAll = (port: number) =>
  any(networkRbacType, {
    stat_prefix: `tcp_${port}.`,
    rules: { action: 'DENY', policies: { 'deny-all-tcp': { permissions: [{ any: true }], principals: [{ any: true }] } } },
  });
