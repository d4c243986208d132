// xDS for proxyless gRPC clients (@grpc/grpc-js-xds, grpc-go): for every service
// port the proxy sees an API listener named <host>:<port> (what
// `xds:///<host>:<port>` asks for), its routes (VirtualService or default), EDS
// clusters per port and DestinationRule subset, and their endpoints. Pure.
import { createHash } from 'node:crypto';
import { any, typeUrls } from '../protos.js';
import type { MeshModel, MeshService } from '../model/mesh-model.js';
import { clusterLoadAssignment } from '../traffic/cluster-load-assignment.js';
import { clusterPolicyFields } from '../traffic/cluster-policy.js';
import { faultFilterName, httpRoutes } from '../traffic/http-routes.js';
import { outboundClusters, outboundPorts, type OutboundCluster } from '../traffic/outbound-clusters.js';
import type { ProxyView, VisibleService } from '../traffic/proxy-view.js';
import { authorizationFilters } from '../security/authorization-policies.js';
import { authorizationPoliciesFor } from '../security/workload-policies.js';
import { endpointMtlsMode, grpcClientUsesMtls, grpcDownstreamMtls, grpcUpstreamTls } from '../security/grpc-tls.js';

const hcmType = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const routerType = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const faultType = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';

export type ResourcesByType = Record<string, Record<string, Record<string, unknown>>>;

/** The listener name grpc-js-xds and grpc-go servers ask for (Istio's agent writes this template). */
export const grpcServerListenerPrefix = 'xds.istio.io/grpc/lds/inbound/';
export const grpcServerListenerName = (address: string, port: number) => `${grpcServerListenerPrefix}${address}:${port}`;

const ads = { ads: {}, resource_api_version: 'V3' };

/** The API listener `xds:///<host>:<port>` asks for: RDS by the same name, the fault filter, the router. */
export function grpcApiListener(listenerName: string): Record<string, unknown> {
  return {
    name: listenerName,
    api_listener: {
      api_listener: any(hcmType, {
        rds: { config_source: ads, route_config_name: listenerName },
        // gRPC runs the fault filter for VirtualService fault injection; the router ends the chain.
        http_filters: [
          { name: faultFilterName, typed_config: any(faultType, {}) },
          { name: 'envoy.filters.http.router', typed_config: any(routerType, {}) },
        ],
      }),
    },
  };
}

/**
 * The route configuration of one service port, named like its listener, with the one
 * virtual host of that service (Istio's grpcgen/rds.go filters the port's virtual hosts
 * to it). Its domains are Istio's for this caller, each with and without the port, since
 * gRPC matches the authority as the channel sends it (httproute.go SidecarIgnorePort is
 * false for proxyless gRPC): see traffic/host-names.ts virtualHostDomains.
 */
export function grpcRouteConfiguration(view: ProxyView, { service, hostname }: VisibleService, port: number): Record<string, unknown> {
  const listenerName = `${hostname}:${port}`;
  return {
    name: listenerName,
    virtual_hosts: [
      {
        name: listenerName,
        domains: view.domainsOf({ service, hostname }, port),
        routes: httpRoutes({ view, hostname, port }),
        include_request_attempt_count: true,
      },
    ],
  };
}

/** One EDS cluster for a proxyless client, with the DestinationRule's policy and Istio mTLS where the servers take it. */
export function grpcCluster(cluster: OutboundCluster, model: MeshModel): Record<string, unknown> {
  return {
    name: cluster.name,
    type: 'EDS',
    eds_cluster_config: { eds_config: ads, service_name: cluster.name },
    connect_timeout: { seconds: 10 },
    // Load reports to the management server itself (server/load-reporting.ts): the live traffic figures.
    lrs_server: { self: {} },
    ...clusterPolicyFields(cluster.policy, 'grpc'),
    ...(grpcClientUsesMtls(model, cluster.service, cluster.endpoints, cluster.port.name, cluster.policy.tls)
      ? { transport_socket: grpcUpstreamTls(model.trustDomain ?? 'cluster.local', cluster.service, cluster.endpoints) }
      : {}),
  };
}

/**
 * A proxyless client's whole configuration, generated from scratch (the reference
 * for the incremental path in cache/outbound-scope.ts). Shapes: resources by type URL, then by name.
 */
export function grpcClientResources(view: ProxyView): ResourcesByType {
  const listeners: Record<string, Record<string, unknown>> = {};
  const routes: Record<string, Record<string, unknown>> = {};
  const clusters: Record<string, Record<string, unknown>> = {};
  const endpoints: Record<string, Record<string, unknown>> = {};
  for (const visible of view.services) {
    for (const port of outboundPorts(visible.service)) {
      const listenerName = `${visible.hostname}:${port.port}`;
      listeners[listenerName] = grpcApiListener(listenerName);
      routes[listenerName] = grpcRouteConfiguration(view, visible, port.port);
    }
  }
  for (const cluster of outboundClusters(view)) {
    clusters[cluster.name] = grpcCluster(cluster, view.model);
    endpoints[cluster.name] = clusterLoadAssignment(cluster.name, cluster.endpoints, cluster.port.name);
  }
  return {
    [typeUrls.listener]: withDigests(listeners),
    [typeUrls.route]: withDigests(routes),
    [typeUrls.cluster]: clusters,
    [typeUrls.endpoint]: endpoints,
  };
}

/**
 * Stamps listeners and routes with a digest of their content in their metadata.
 * grpc-js-xds (1.14) compares a new resource with the cached one by walking only
 * the cached value's keys, so an update that only adds something (a fault on a
 * route) would be dropped as "unchanged"; a digest that differs makes every real
 * change visible to it. (Clusters are compared in a parsed form without metadata;
 * see clusterPolicyFields for their workaround.)
 */
export function withDigests(resources: Record<string, Record<string, unknown>>): Record<string, Record<string, unknown>> {
  return Object.fromEntries(Object.entries(resources).map(([name, resource]) => [name, withDigest(resource)]));
}

/** One resource stamped with the digest of its content (see withDigests); `json` is its JSON when the caller has it. */
export function withDigest(resource: Record<string, unknown>, json = JSON.stringify(resource)): Record<string, unknown> {
  const digest = createHash('sha256').update(json).digest('hex').slice(0, 16);
  return { ...resource, metadata: { filter_metadata: { 'weft.dev': { fields: { digest: { stringValue: digest } } } } } };
}

/**
 * Inbound listeners for xDS-enabled gRPC servers (XdsServer), one per endpoint
 * address and port. Served only to proxies that ask for them by name, since no
 * one wants them all.
 */
export function grpcServerListeners(model: MeshModel): ResourcesByType {
  const listeners: Record<string, Record<string, unknown>> = {};
  for (const service of model.services) Object.assign(listeners, grpcServerListenersOf(model, service));
  return { [typeUrls.listener]: listeners };
}

/** The inbound listeners of one service's endpoints, by name (digest-stamped, as every gRPC listener). */
export function grpcServerListenersOf(model: MeshModel, service: MeshService): Record<string, Record<string, unknown>> {
  const listeners: Record<string, Record<string, unknown>> = {};
  for (const endpoint of service.endpoints) {
    for (const port of Object.values(endpoint.ports)) {
      const name = grpcServerListenerName(endpoint.address, port);
      const strict = endpointMtlsMode(model, service, endpoint, port) === 'STRICT';
      // AuthorizationPolicy as gRPC's RBAC filters (gRFC A41), before the router.
      const { custom, rbac } = authorizationFilters({
        policies: authorizationPoliciesFor(model, { namespace: service.namespace, labels: endpoint.labels ?? {} }),
        trustDomain: model.trustDomain ?? 'cluster.local',
        port,
        target: 'grpc',
      });
      listeners[name] = {
        name,
        address: { socket_address: { address: endpoint.address, port_value: port } },
        traffic_direction: 'INBOUND',
        filter_chains: [
          {
            name: strict ? 'inbound-mtls' : 'inbound',
            ...(strict ? { transport_socket: grpcDownstreamMtls() } : {}),
            filters: [
              {
                name: 'envoy.filters.network.http_connection_manager',
                typed_config: any(hcmType, {
                  // Distinct per mode: grpc-js-xds (1.14) compares a changed listener's filters before
                  // its transport socket, and gets the socket comparison wrong (a switch to mTLS
                  // looks unchanged, a switch back throws), so the filter bytes must differ too.
                  stat_prefix: strict ? 'inbound_mtls' : 'inbound',
                  route_config: {
                    name: 'inbound',
                    virtual_hosts: [{ name: 'inbound', domains: ['*'], routes: [{ match: { prefix: '' }, non_forwarding_action: {} }] }],
                  },
                  http_filters: [...custom, ...rbac, { name: 'envoy.filters.http.router', typed_config: any(routerType, {}) }],
                }),
              },
            ],
          },
        ],
      };
    }
  }
  return withDigests(listeners);
}
