// The outbound clusters a proxy needs: one per visible service port, plus one
// per DestinationRule subset, each with its merged traffic policy and the
// endpoints it balances over. Target-neutral; generators shape the Envoy form.
import type { MeshService, ServiceEndpoint, ServicePort } from '../model/mesh-model.js';
import { effectivePolicy, type PolicyFields } from './cluster-policy.js';
import { labelsMatch } from './host-names.js';
import { outboundClusterName } from './http-routes.js';
import type { ProxyView, VisibleService } from './proxy-view.js';
import { portProtocol } from './port-protocol.js';

export interface OutboundCluster {
  name: string;
  hostname: string;
  service: MeshService;
  port: ServicePort;
  subset?: string;
  /** The subset's labels, which pick its endpoints. */
  subsetLabels?: Record<string, string>;
  policy: PolicyFields;
  endpoints: ServiceEndpoint[];
}

export function outboundClusters(view: ProxyView): OutboundCluster[] {
  return view.services.flatMap((visible) => serviceClusters(view, visible));
}

/** One service's clusters as one proxy sees them: a cluster per port, and per port and subset of its DestinationRule. */
export function serviceClusters(view: ProxyView, { service, hostname }: VisibleService): OutboundCluster[] {
  const clusters: OutboundCluster[] = [];
  const rule = view.destinationRuleFor(hostname);
  for (const port of outboundPorts(service)) {
    clusters.push({
      name: outboundClusterName(port.port, hostname),
      hostname,
      service,
      port,
      policy: effectivePolicy(rule?.trafficPolicy, undefined, port.port),
      endpoints: service.endpoints,
    });
    for (const subset of rule?.subsets ?? []) {
      const labels = (subset.labels ?? {}) as Record<string, string>;
      clusters.push({
        name: outboundClusterName(port.port, hostname, subset.name),
        hostname,
        service,
        port,
        subset: subset.name,
        subsetLabels: labels,
        policy: effectivePolicy(rule?.trafficPolicy, subset, port.port),
        endpoints: service.endpoints.filter((endpoint) => labelsMatch(labels, endpoint.labels ?? {})),
      });
    }
  }
  return clusters;
}

/** The ports a sidecar or proxyless client can call: Istio builds no cluster or listener for UDP ports (pilot/pkg/networking/core/cluster.go). */
export function outboundPorts(service: MeshService): ServicePort[] {
  return service.ports.filter((port) => portProtocol(service, port) !== 'UDP');
}
