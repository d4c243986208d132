import { typeOf } from '../protos.js';
import { httpProtocolOptionsType, upstreamProtocolFields } from './upstream-protocol.js';

/** The HttpProtocolOptions a cluster carries, decoded strictly; undefined when none. */
function optionsOf(fields: ReturnType<typeof upstreamProtocolFields>): Record<string, unknown> | undefined {
  const any = fields.typed_extension_protocol_options?.['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'] as
    { type_url: string; value: Buffer } | undefined;
  if (!any) return undefined;
  expect(any.type_url).toBe(httpProtocolOptionsType);
  const type = typeOf(httpProtocolOptionsType);
  return type.toObject(type.decode(any.value), { defaults: false }) as Record<string, unknown>;
}

describe("upstream protocol, as istiod's setUpstreamProtocol and auto SNI", () => {
  it('speaks HTTP/2 upstream to gRPC, gRPC-Web and HTTP2 ports, from sidecars and gateways alike', () => {
    for (const protocol of ['GRPC', 'GRPC-Web', 'HTTP2'] as const)
      for (const proxy of ['sidecar', 'router'] as const)
        expect(optionsOf(upstreamProtocolFields(protocol, proxy))).toEqual({ explicit_http_config: { http2_protocol_options: {} } });
  });

  it("uses the downstream's protocol on detected ports for sidecars only, and leaves HTTP, TCP and gateways' detected ports alone", () => {
    expect(optionsOf(upstreamProtocolFields('UnsupportedProtocol', 'sidecar'))).toEqual({
      use_downstream_protocol_config: { http_protocol_options: {}, http2_protocol_options: {} },
    });
    expect(upstreamProtocolFields('UnsupportedProtocol', 'router')).toEqual({});
    expect(upstreamProtocolFields('HTTP', 'sidecar')).toEqual({});
    expect(upstreamProtocolFields('TCP', 'sidecar')).toEqual({});
  });

  it('TLS origination without an sni takes SNI and the name to verify from each request (auto_sni, auto_san_validation)', () => {
    expect(optionsOf(upstreamProtocolFields('HTTP', 'router', { mode: 'SIMPLE' }))).toEqual({
      explicit_http_config: { http_protocol_options: {} },
      upstream_http_protocol_options: { auto_sni: true, auto_san_validation: true },
    });
    // Explicit SANs, or no verification at all: the names are not taken from the request.
    expect(optionsOf(upstreamProtocolFields('HTTP', 'sidecar', { mode: 'MUTUAL', subjectAltNames: ['a.example'] }))).toEqual({
      explicit_http_config: { http_protocol_options: {} },
      upstream_http_protocol_options: { auto_sni: true },
    });
    expect(optionsOf(upstreamProtocolFields('GRPC', 'sidecar', { mode: 'SIMPLE', insecureSkipVerify: true }))).toEqual({
      explicit_http_config: { http2_protocol_options: {} },
      upstream_http_protocol_options: { auto_sni: true },
    });
    // An explicit sni, Istio mutual TLS or none: nothing automatic.
    expect(upstreamProtocolFields('HTTP', 'sidecar', { mode: 'SIMPLE', sni: 'edition.cnn.com' })).toEqual({});
    expect(upstreamProtocolFields('HTTP', 'sidecar', { mode: 'ISTIO_MUTUAL' })).toEqual({});
  });
});
