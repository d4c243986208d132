// MeshConfig's extension providers (envoyExtAuthzHttp, envoyExtAuthzGrpc) as
// Envoy's ext_authz filter config, as Istio builds it for CUSTOM policies: the
// filter asks the provider only when the RBAC filter before it, in shadow mode,
// recorded that a CUSTOM rule of this provider matched.
import { protoDuration } from '../../lib/duration.js';
import { outboundClusterName } from '../traffic/http-routes.js';
import { stringMatcher, type Matcher } from './matchers.js';

interface ProviderCommon {
  /** The provider's service, as a hostname resolved by the caller (e.g. `ext-authz.foo.svc.cluster.local`). */
  service: string;
  port: number;
  /** Go-style duration; Istio's default is 600s. */
  timeout?: string;
  failOpen?: boolean;
  /** The HTTP status returned when the provider cannot be reached (a string, as in MeshConfig). */
  statusOnError?: string;
  includeRequestBodyInCheck?: { maxRequestBytes?: number; allowPartialMessage?: boolean; packAsBytes?: boolean };
}

export interface ExtAuthzHttpProvider extends ProviderCommon {
  pathPrefix?: string;
  includeRequestHeadersInCheck?: string[];
  includeAdditionalHeadersInCheck?: Record<string, string>;
  headersToUpstreamOnAllow?: string[];
  headersToDownstreamOnDeny?: string[];
  headersToDownstreamOnAllow?: string[];
}

export type ExtAuthzGrpcProvider = ProviderCommon;

/** One of MeshConfig's `extensionProviders`, less its name (the key of the map it is given in). */
export type ExtensionProvider = { envoyExtAuthzHttp: ExtAuthzHttpProvider } | { envoyExtAuthzGrpc: ExtAuthzGrpcProvider };

export const extAuthzMatchPrefix = 'istio-ext-authz';
/** The shadow rules' stat prefix, which also prefixes the metadata keys the RBAC filter writes. */
export const extAuthzShadowStatPrefix = 'istio_ext_authz_';

/** The ext_authz config of a provider, or why it cannot be used. */
export function extAuthzConfig(providerName: string, provider: ExtensionProvider): Matcher | { error: string } {
  const common = 'envoyExtAuthzHttp' in provider ? provider.envoyExtAuthzHttp : provider.envoyExtAuthzGrpc;
  const errors: string[] = [];
  if (!Number.isInteger(common.port) || common.port < 1 || common.port > 65535)
    errors.push(`port must be in [1, 65535], found ${common.port}`);
  if (!common.service) errors.push('service must be set');
  const status = common.statusOnError;
  if (status !== undefined && !/^[1-5]\d\d$/.test(status)) errors.push(`unsupported statusOnError ${JSON.stringify(status)}`);
  let timeout: Matcher = { seconds: 600 };
  try {
    if (common.timeout) timeout = protoDuration(common.timeout);
  } catch (error) {
    errors.push((error as Error).message);
  }
  if ('envoyExtAuthzHttp' in provider) {
    const http = provider.envoyExtAuthzHttp;
    if (http.pathPrefix !== undefined && !http.pathPrefix.startsWith('/'))
      errors.push(`pathPrefix must begin with /, found ${JSON.stringify(http.pathPrefix)}`);
    for (const [field, headers] of Object.entries({
      includeRequestHeadersInCheck: http.includeRequestHeadersInCheck,
      headersToUpstreamOnAllow: http.headersToUpstreamOnAllow,
      headersToDownstreamOnDeny: http.headersToDownstreamOnDeny,
      headersToDownstreamOnAllow: http.headersToDownstreamOnAllow,
    })) {
      if (headers?.includes('*')) errors.push(`a single wildcard ("*") is not supported in ${field}; use a prefix or suffix match`);
    }
  }
  if (errors.length > 0) return { error: `extension provider ${providerName}: ${errors.join('; ')}` };

  const cluster = outboundClusterName(common.port, common.service);
  const shared = {
    ...(status !== undefined ? { status_on_error: { code: Number(status) } } : {}),
    ...(common.failOpen ? { failure_mode_allow: true } : {}),
    transport_api_version: 'V3',
    filter_enabled_metadata: filterEnabledMetadata(providerName),
    ...(common.includeRequestBodyInCheck
      ? {
          with_request_body: {
            max_request_bytes: common.includeRequestBodyInCheck.maxRequestBytes ?? 0,
            allow_partial_message: common.includeRequestBodyInCheck.allowPartialMessage ?? false,
            pack_as_bytes: common.includeRequestBodyInCheck.packAsBytes ?? false,
          },
        }
      : {}),
  };
  if ('envoyExtAuthzGrpc' in provider) {
    return { grpc_service: { envoy_grpc: { cluster_name: cluster, authority: common.service }, timeout }, ...shared };
  }
  const http = provider.envoyExtAuthzHttp;
  const additional = Object.keys(http.includeAdditionalHeadersInCheck ?? {}).sort();
  const responseHeaders =
    http.headersToUpstreamOnAllow?.length || http.headersToDownstreamOnDeny?.length || http.headersToDownstreamOnAllow?.length;
  return {
    http_service: {
      server_uri: { uri: `http://${common.service}`, cluster, timeout },
      ...(http.pathPrefix ? { path_prefix: http.pathPrefix } : {}),
      ...(additional.length > 0
        ? {
            authorization_request: {
              headers_to_add: additional.map((key) => ({ key, value: http.includeAdditionalHeadersInCheck?.[key] ?? '' })),
            },
          }
        : {}),
      ...(responseHeaders
        ? {
            authorization_response: {
              ...headerList('allowed_upstream_headers', http.headersToUpstreamOnAllow),
              ...headerList('allowed_client_headers', http.headersToDownstreamOnDeny),
              ...headerList('allowed_client_headers_on_success', http.headersToDownstreamOnAllow),
            },
          }
        : {}),
    },
    ...headerList('allowed_headers', http.includeRequestHeadersInCheck),
    ...shared,
  };
}

/** Header names, case-insensitive, `prefix*` and `*suffix` allowed. */
function headerList(field: string, headers: string[] | undefined): Matcher {
  if (!headers?.length) return {};
  return { [field]: { patterns: headers.map((h) => ({ ...stringMatcher(h), ignore_case: true })) } };
}

/** ext_authz runs only when the shadow RBAC filter matched a CUSTOM rule of this provider. */
function filterEnabledMetadata(providerName: string): Matcher {
  return {
    filter: 'envoy.filters.http.rbac',
    path: [{ key: `${extAuthzShadowStatPrefix}shadow_effective_policy_id` }],
    value: { string_match: { prefix: `${extAuthzMatchPrefix}-${providerName}` } },
  };
}
