// AuthorizationPolicy on TCP filter chains of Envoy sidecars, as Istio's BuildTCP
// (pilot/pkg/security/authz/builder/builder.go): the filters authorizationFilters
// builds with `forTcp` (rules without the HTTP-only attributes: a DENY or AUDIT rule
// enforced without them, an ALLOW rule naming them left out; CUSTOM policies of HTTP
// providers left out) become Envoy's network filters: RBAC with stat prefix `tcp.`, and
// for a CUSTOM policy of a gRPC provider the shadow RBAC filter then the network
// ext_authz filter it enables. Pure.
import { any, typeOf } from '../protos.js';
import { extAuthzFilterType, rbacFilterType, type HttpFilter } from './authorization-policies.js';

const networkRbacType = 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC';
const networkExtAuthzType = 'type.googleapis.com/envoy.extensions.filters.network.ext_authz.v3.ExtAuthz';
/** Istio's authzmodel.RBACTCPFilterStatPrefix, for RBAC and ext_authz alike. */
const tcpStatPrefix = 'tcp.';

type Config = Record<string, unknown>;

export type NetworkFilter = Record<string, unknown> & {
  name: string;
  typed_config: { type_url: string; value: Buffer };
};

/**
 * The network filters of one TCP chain, in the order given (CUSTOM, AUDIT, DENY, ALLOW),
 * from `authorizationFilters({ ..., forTcp: true })`'s `custom` and `rbac` filters.
 * Shapes: `envoy.filters.network.rbac.<ACTION>` and `envoy.filters.network.ext_authz.<provider>`.
 */
export function networkRbacFilters(httpFilters: ReadonlyArray<HttpFilter>): { filters: NetworkFilter[] } {
  const filters: NetworkFilter[] = [];
  for (const filter of httpFilters) {
    const config = decoded(filter);
    if (filter.typed_config.type_url === rbacFilterType) {
      filters.push({
        name: filter.name.replace('envoy.filters.http.rbac', 'envoy.filters.network.rbac'),
        typed_config: any(networkRbacType, {
          stat_prefix: tcpStatPrefix,
          ...pick(config, ['rules', 'shadow_rules', 'shadow_rules_stat_prefix']),
        }),
      });
    } else if (filter.typed_config.type_url === extAuthzFilterType) {
      // Only gRPC providers get here (authorizationFilters leaves HTTP ones out on TCP).
      const enabled = config['filter_enabled_metadata'] as Config | undefined;
      filters.push({
        name: filter.name.replace('envoy.filters.http.ext_authz', 'envoy.filters.network.ext_authz'),
        typed_config: any(networkExtAuthzType, {
          stat_prefix: tcpStatPrefix,
          ...pick(config, ['grpc_service', 'failure_mode_allow', 'transport_api_version']),
          // The network RBAC filter writes its shadow result under its own name.
          ...(enabled ? { filter_enabled_metadata: { ...enabled, filter: 'envoy.filters.network.rbac' } } : {}),
        }),
      });
    } else {
      throw new Error(`${filter.name}: ${filter.typed_config.type_url} has no TCP form`);
    }
  }
  return { filters };
}

function decoded(filter: HttpFilter): Config {
  const type = typeOf(filter.typed_config.type_url);
  return type.toObject(type.decode(filter.typed_config.value), { enums: String, longs: Number, bytes: Buffer }) as Config;
}

const pick = (config: Config, keys: string[]): Config =>
  Object.fromEntries(keys.filter((key) => config[key] !== undefined).map((key) => [key, config[key]]));
