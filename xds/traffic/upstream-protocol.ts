// How an Envoy cluster speaks HTTP upstream, as istiod's ClusterBuilder.setUpstreamProtocol
// (pilot/pkg/networking/core/cluster_builder.go) and setAutoSniAndAutoSanValidation
// (cluster_tls.go) decide it: HTTP/2 to HTTP2, gRPC and gRPC-Web ports; for a sidecar, the
// downstream's protocol on ports whose protocol is detected; and for TLS origination without
// an `sni`, the SNI and the certificate name taken from each request's host (auto_sni,
// auto_san_validation). Without this a gRPC port's upstream would be HTTP/1.1.
import { any } from '../protos.js';
import type { Protocol } from './port-protocol.js';
import { isHttp2 } from './port-protocol.js';

export const httpProtocolOptionsType = 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const extensionName = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

/** A DestinationRule's client TLS as far as auto SNI reads it. */
export interface OriginationTls {
  mode?: string;
  sni?: string;
  subjectAltNames?: string[];
  insecureSkipVerify?: boolean;
}

/**
 * The cluster's `typed_extension_protocol_options` (an empty object when none apply), for a
 * service port of `protocol` as seen by a sidecar (`'sidecar'`: detected ports use the
 * downstream's protocol) or a gateway (`'router'`: Istio leaves detected ports at HTTP/1.1),
 * with `tls` the DestinationRule's SIMPLE or MUTUAL origination, if any.
 */
export function upstreamProtocolFields(
  protocol: Protocol,
  proxy: 'sidecar' | 'router',
  tls?: OriginationTls,
): { typed_extension_protocol_options?: Record<string, unknown> } {
  const options: Record<string, unknown> = {};
  if (isHttp2(protocol)) options['explicit_http_config'] = { http2_protocol_options: {} };
  else if (protocol === 'UnsupportedProtocol' && proxy === 'sidecar')
    options['use_downstream_protocol_config'] = { http_protocol_options: {}, http2_protocol_options: {} };
  if ((tls?.mode === 'SIMPLE' || tls?.mode === 'MUTUAL') && !tls.sni) {
    const autoSanValidation = !tls.insecureSkipVerify && (tls.subjectAltNames ?? []).length === 0;
    options['upstream_http_protocol_options'] = { auto_sni: true, ...(autoSanValidation ? { auto_san_validation: true } : {}) };
  }
  if (Object.keys(options).length === 0) return {};
  // Envoy requires one upstream protocol choice; Istio's default is explicit HTTP/1.1 (clusterWrapper.build).
  if (!options['explicit_http_config'] && !options['use_downstream_protocol_config'])
    options['explicit_http_config'] = { http_protocol_options: {} };
  return { typed_extension_protocol_options: { [extensionName]: any(httpProtocolOptionsType, options) } };
}
