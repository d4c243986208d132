// Istio mTLS for proxyless gRPC (gRFC A29 xDS security): certificates come from
// the bootstrap's certificate provider instance "default" (Istio's grpc-agent
// writes it: file_watcher on the agent's cert-chain.pem, key.pem, root-cert.pem);
// clients check the server's SPIFFE identity, servers require a client
// certificate under STRICT. Pure.
import type { MeshModel, MeshService, ServiceEndpoint } from '../model/mesh-model.js';
import { any } from '../protos.js';
import type { PolicyFields } from '../traffic/cluster-policy.js';
import { mtlsModeFor, type MtlsMode } from './peer-authentication-mode.js';
import { emptyIstioConfig } from '../model/istio-config.js';

const upstreamTlsType = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';
const downstreamTlsType = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';
export const grpcCertificateProvider = 'default';
const provider = (certificateName: string) => ({ instance_name: grpcCertificateProvider, certificate_name: certificateName });

export const spiffeIdentity = (trustDomain: string, namespace: string, serviceAccount: string) =>
  `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;

/** The mode an endpoint of a service serves its port with. */
export function endpointMtlsMode(model: MeshModel, service: MeshService, endpoint: ServiceEndpoint, port: number): MtlsMode {
  const config = model.istio ?? emptyIstioConfig();
  return mtlsModeFor(
    config.peerAuthentications,
    model.rootNamespace ?? 'istio-system',
    { namespace: service.namespace, labels: endpoint.labels ?? {} },
    port,
    model.meshConfig?.mtlsMode,
  );
}

/**
 * Whether a gRPC client should speak Istio mTLS to a cluster: a DestinationRule's
 * ISTIO_MUTUAL says yes and DISABLE no; otherwise (auto mTLS) yes when an endpoint
 * accepts only mTLS. gRPC servers cannot tell TLS from plaintext on one port, so a
 * PERMISSIVE server is spoken to in plaintext.
 */
export function grpcClientUsesMtls(
  model: MeshModel,
  service: MeshService,
  endpoints: ReadonlyArray<ServiceEndpoint>,
  portName: string,
  tls: PolicyFields['tls'],
): boolean {
  if (tls?.mode === 'ISTIO_MUTUAL') return true;
  if (tls?.mode) return false;
  if (service.hostname) return false;
  return endpoints.some((endpoint) => {
    const port = endpoint.ports[portName];
    return port !== undefined && endpointMtlsMode(model, service, endpoint, port) === 'STRICT';
  });
}

/** The client side: our certificate, the mesh root, and the server identities the service runs as. */
export function grpcUpstreamTls(
  trustDomain: string,
  service: MeshService,
  endpoints: ReadonlyArray<ServiceEndpoint>,
): Record<string, unknown> {
  const accounts = [...new Set(endpoints.flatMap((e) => (e.serviceAccount ? [e.serviceAccount] : [])))].sort();
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: any(upstreamTlsType, {
      common_tls_context: {
        tls_certificate_provider_instance: provider('default'),
        validation_context: {
          ca_certificate_provider_instance: provider('ROOTCA'),
          ...(accounts.length > 0
            ? { match_subject_alt_names: accounts.map((sa) => ({ exact: spiffeIdentity(trustDomain, service.namespace, sa) })) }
            : {}),
        },
      },
    }),
  };
}

/** The server side under STRICT: a client certificate from the mesh root is required. */
export function grpcDownstreamMtls(): Record<string, unknown> {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: any(downstreamTlsType, {
      require_client_certificate: { value: true },
      common_tls_context: {
        tls_certificate_provider_instance: provider('default'),
        validation_context: { ca_certificate_provider_instance: provider('ROOTCA') },
      },
    }),
  };
}
