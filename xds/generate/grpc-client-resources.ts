// xDS for proxyless gRPC clients (@grpc/grpc-js-xds, grpc-go): for every Service
// port an API listener named <host>:<port> (what `xds:///<host>:<port>` asks
// for), its route configuration, an EDS cluster and its endpoints. Pure.
import { any, typeUrls } from '../protos.js';
import { serviceHost, type MeshModel } from '../model/mesh-model.js';
import { clusterLoadAssignment } from './cluster-load-assignment.js';

const hcmType = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const routerType = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';

export type ResourcesByType = Record<string, Record<string, Record<string, unknown>>>;

/** The listener name grpc-js-xds and grpc-go servers ask for (Istio's agent writes this template). */
export const grpcServerListenerName = (address: string, port: number) => `xds.istio.io/grpc/lds/inbound/${address}:${port}`;

export const outboundClusterName = (port: number, host: string, subset = '') => `outbound|${port}|${subset}|${host}`;

export function grpcClientResources(model: MeshModel): ResourcesByType {
  const listeners: Record<string, Record<string, unknown>> = {};
  const routes: Record<string, Record<string, unknown>> = {};
  const clusters: Record<string, Record<string, unknown>> = {};
  const endpoints: Record<string, Record<string, unknown>> = {};
  const ads = { ads: {}, resource_api_version: 'V3' };

  for (const service of [...model.services].sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`))) {
    const host = serviceHost(service, model.clusterDomain);
    for (const port of service.ports) {
      const listenerName = `${host}:${port.port}`;
      const clusterName = outboundClusterName(port.port, host);
      listeners[listenerName] = {
        name: listenerName,
        api_listener: {
          api_listener: any(hcmType, {
            rds: { config_source: ads, route_config_name: listenerName },
            http_filters: [{ name: 'envoy.filters.http.router', typed_config: any(routerType, {}) }],
          }),
        },
      };
      routes[listenerName] = {
        name: listenerName,
        virtual_hosts: [
          {
            name: listenerName,
            // The short names resolve as in Kubernetes DNS from the same namespace.
            domains: [
              listenerName,
              host,
              `${service.name}.${service.namespace}.svc:${port.port}`,
              `${service.name}.${service.namespace}:${port.port}`,
              `${service.name}:${port.port}`,
            ],
            routes: [{ match: { prefix: '' }, route: { cluster: clusterName } }],
          },
        ],
      };
      clusters[clusterName] = {
        name: clusterName,
        type: 'EDS',
        eds_cluster_config: { eds_config: ads, service_name: clusterName },
        lb_policy: 'ROUND_ROBIN',
        connect_timeout: { seconds: 10 },
      };
      endpoints[clusterName] = clusterLoadAssignment(clusterName, service, port.name);
    }
  }
  return { [typeUrls.listener]: listeners, [typeUrls.route]: routes, [typeUrls.cluster]: clusters, [typeUrls.endpoint]: endpoints };
}

/**
 * Inbound listeners for xDS-enabled gRPC servers (XdsServer), one per endpoint
 * address and port. Served only to proxies that ask for them by name, since no
 * one wants them all.
 */
export function grpcServerListeners(model: MeshModel): ResourcesByType {
  const listeners: Record<string, Record<string, unknown>> = {};
  for (const service of model.services) {
    for (const endpoint of service.endpoints) {
      for (const port of Object.values(endpoint.ports)) {
        const name = grpcServerListenerName(endpoint.address, port);
        listeners[name] = {
          name,
          address: { socket_address: { address: endpoint.address, port_value: port } },
          traffic_direction: 'INBOUND',
          filter_chains: [
            {
              name: 'inbound',
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: any(hcmType, {
                    stat_prefix: 'inbound',
                    route_config: {
                      name: 'inbound',
                      virtual_hosts: [{ name: 'inbound', domains: ['*'], routes: [{ match: { prefix: '' }, non_forwarding_action: {} }] }],
                    },
                    http_filters: [{ name: 'envoy.filters.http.router', typed_config: any(routerType, {}) }],
                  }),
                },
              ],
            },
          ],
        };
      }
    }
  }
  return { [typeUrls.listener]: listeners };
}
