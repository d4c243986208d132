import type { ServiceEndpoint } from '../model/mesh-model.js';

/**
 * The ready endpoints of one Service port (or subset), as one locality. Weighted, because gRPC
 * ignores localities without a weight; Envoy reads the weights only when
 * locality-weighted balancing is on.
 */
export function clusterLoadAssignment(
  clusterName: string,
  endpoints: ReadonlyArray<ServiceEndpoint>,
  portName: string,
): Record<string, unknown> {
  const lbEndpoints = endpoints
    .filter((endpoint) => endpoint.ports[portName] !== undefined)
    .sort((a, b) => a.address.localeCompare(b.address))
    .map((endpoint) => ({
      endpoint: { address: { socket_address: { address: endpoint.address, port_value: endpoint.ports[portName] } } },
      health_status: 'HEALTHY',
      load_balancing_weight: { value: 1 },
      // Envoy picks the cluster's transport socket by this (Istio's auto mTLS).
      ...(endpoint.tlsMode
        ? { metadata: { filter_metadata: { 'envoy.transport_socket_match': { fields: { tlsMode: { stringValue: endpoint.tlsMode } } } } } }
        : {}),
    }));
  return {
    cluster_name: clusterName,
    endpoints: lbEndpoints.length > 0 ? [{ locality: {}, lb_endpoints: lbEndpoints, load_balancing_weight: { value: 1 } }] : [],
  };
}
