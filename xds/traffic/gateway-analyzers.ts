// Istio's analyzers for Gateways and the VirtualServices bound to them, with Istio's codes,
// levels and message text (pkg/config/analysis/msg/messages.yaml):
//   IST0132 VirtualServiceHostNotFoundInGateway (analyzers/virtualservice/gateways.go)
//   IST0101 ReferencedResourceNotFound for a selector no workload matches, and
//   IST0162 GatewayPortNotDefinedOnService (analyzers/gateway/gateway.go)
//   IST0145 ConflictingGateways (analyzers/gateway/conflictinggateway.go)
// Workloads are the model's Service endpoints (pods and WorkloadEntries behind a Service):
// a gateway pod no Service selects is not seen, where Istio's analyzer lists every pod.
import type { MeshModel } from '../model/mesh-model.js';
import type { ConfigObject, GatewaySpec, VirtualServiceSpec } from '../model/istio-config.js';
import { hostsOverlap, type AnalysisMessage } from './config-analyzers.js';
import { resolveGatewayName } from './http-routes.js';

/**
 * A Gateway's server hosts as a VirtualService in `namespace` sees them (Istio's
 * sanitizeServerHostNamespace, then host.NamesForNamespace): `./h` is the Gateway's own
 * namespace, `*\/h` any namespace, `ns/h` only `ns`; `*\/*` makes the server's hosts `*`.
 */
function gatewayHostsFor(gateway: ConfigObject<GatewaySpec>, namespace: string): string[] {
  const hosts: string[] = [];
  for (const server of gateway.spec.servers ?? []) {
    let serverHosts = [...(server.hosts ?? [])];
    for (let i = 0; i < serverHosts.length; i++) {
      const host = serverHosts[i] as string;
      const slash = host.indexOf('/');
      if (slash < 0) continue;
      const [ns, name] = [host.slice(0, slash), host.slice(slash + 1)];
      if (ns === '.') serverHosts[i] = `${gateway.namespace}/${name}`;
      else if (ns === '*') {
        if (name === '*') {
          serverHosts = ['*'];
          break;
        }
        serverHosts[i] = name;
      }
    }
    hosts.push(...serverHosts);
  }
  return hosts.flatMap((host) => {
    const slash = host.indexOf('/');
    if (slash < 0) return [host];
    const ns = host.slice(0, slash);
    return ns === namespace || ns === '*' ? [host.slice(slash + 1)] : [];
  });
}

/**
 * IST0132 for each Gateway a VirtualService binds to (`spec.gateways`, `mesh` aside) whose
 * servers have none of its hosts, as Istio's virtualservice.GatewayAnalyzer, including, as
 * Istio does, a Gateway that does not exist (which also gets IST0101 elsewhere). `gateways`
 * maps `namespace/name` to the Gateway.
 */
export function virtualServiceGatewayHostMessages(
  rule: ConfigObject<VirtualServiceSpec>,
  gateways: ReadonlyMap<string, ConfigObject<GatewaySpec>>,
): AnalysisMessage[] {
  const messages: AnalysisMessage[] = [];
  const vsHosts = rule.spec.hosts ?? [];
  for (const name of rule.spec.gateways ?? []) {
    if (name === 'mesh') continue;
    const key = resolveGatewayName(name, rule.namespace);
    const gateway = gateways.get(key);
    const gatewayHosts = gateway ? gatewayHostsFor(gateway, rule.namespace) : [];
    if (gatewayHosts.some((gh) => vsHosts.some((vh) => hostsOverlap(gh, vh)))) continue;
    messages.push({
      code: 'IST0132',
      name: 'VirtualServiceHostNotFoundInGateway',
      level: 'WARNING',
      message: `one or more host [${vsHosts.join(' ')}] defined in VirtualService ${rule.namespace}/${rule.name} not found in Gateway ${key}.`,
    });
  }
  return messages;
}

/** Kubernetes' labels.SelectorFromSet(...).String(): `k=v` pairs sorted by key, comma-joined. */
export function selectorString(selector: Record<string, string> | undefined): string {
  return Object.keys(selector ?? {})
    .sort()
    .map((key) => `${key}=${(selector ?? {})[key]}`)
    .join(',');
}

const selects = (selector: Record<string, string> | undefined, labels: Record<string, string> | undefined) =>
  Object.entries(selector ?? {}).every(([key, value]) => labels?.[key] === value);

/**
 * The workload checks of Istio's gateway.IngressGatewayPortAnalyzer: IST0101 when no workload
 * matches the Gateway's `selector`; else IST0162 for each server port that no Service selecting
 * those workloads exposes (a TCP port's numeric targetPort, else its port, or the port itself).
 */
export function gatewayWorkloadMessages(gateway: ConfigObject<GatewaySpec>, model: MeshModel): AnalysisMessage[] {
  const selector = gateway.spec.selector as Record<string, string> | undefined;
  const exposed = new Set<number>();
  let matched = false;
  for (const service of model.services) {
    if (service.hostname) continue; // ServiceEntries select no pods for this analyzer
    if (!service.endpoints.some((endpoint) => selects(selector, endpoint.labels))) continue;
    matched = true;
    for (const port of service.ports) {
      if (port.protocol && port.protocol.toUpperCase() !== 'TCP') continue;
      exposed.add(port.port);
      if (port.targetPort !== undefined) exposed.add(port.targetPort);
    }
  }
  const shown = selectorString(selector);
  if (!matched)
    return [{ code: 'IST0101', name: 'ReferencedResourceNotFound', level: 'ERROR', message: `Referenced selector not found: "${shown}"` }];
  return (gateway.spec.servers ?? []).flatMap((server) => {
    const number = server.port?.number;
    if (number === undefined || exposed.has(number)) return [];
    return [
      {
        code: 'IST0162',
        name: 'GatewayPortNotDefinedOnService',
        level: 'WARNING' as const,
        message: `The gateway is listening on a target port (port ${number}) that is not defined in the Service associated with its workload instances (Pod selector ${shown}). If you need to access the gateway port through the gateway Service, it will not be available.`,
      },
    ];
  });
}

/**
 * IST0145 per Gateway, keyed `namespace/name`, as Istio's ConflictingGatewayAnalyzer: two
 * Gateways with the same selector (or selectors one containing the other that select a common
 * workload) each having a server on one port that repeats a host of the other's with the same
 * `bind` (model.CheckDuplicates: exact host strings).
 */
export function conflictingGateways(gateways: ReadonlyArray<ConfigObject<GatewaySpec>>, model: MeshModel): Map<string, AnalysisMessage[]> {
  const labelsOfWorkloads = model.services.filter((s) => !s.hostname).flatMap((s) => s.endpoints.map((e) => e.labels ?? {}));
  const out = new Map<string, AnalysisMessage[]>();
  const entries = gateways.map((gateway) => ({
    gateway,
    key: `${gateway.namespace}/${gateway.name}`,
    selector: (gateway.spec.selector ?? {}) as Record<string, string>,
    shown: selectorString(gateway.spec.selector as Record<string, string> | undefined),
  }));
  const sameWorkloads = (a: (typeof entries)[number], b: (typeof entries)[number]) =>
    a.shown === b.shown ||
    ((a.shown.includes(b.shown) || b.shown.includes(a.shown)) &&
      labelsOfWorkloads.some((labels) => selects(a.selector, labels) && selects(b.selector, labels)));
  for (const self of entries) {
    const messages: AnalysisMessage[] = [];
    for (const server of self.gateway.spec.servers ?? []) {
      const port = server.port?.number;
      const conflicting = new Set<string>();
      for (const other of entries) {
        if (other.key === self.key || !sameWorkloads(self, other)) continue;
        // Istio records, per other Gateway and port, its last server's hosts with their bind.
        let known = new Map<string, string>();
        for (const theirs of other.gateway.spec.servers ?? [])
          if (theirs.port?.number === port) known = new Map((theirs.hosts ?? []).map((host) => [host, theirs.bind ?? '']));
        if ((server.hosts ?? []).some((host) => known.has(host) && known.get(host) === (server.bind ?? ''))) conflicting.add(other.key);
      }
      if (conflicting.size > 0)
        messages.push({
          code: 'IST0145',
          name: 'ConflictingGateways',
          level: 'ERROR',
          message: `Conflict with gateways ${[...conflicting].sort().join(',')} (workload selector ${self.shown}, port ${port}, hosts ${(server.hosts ?? []).join(',')}).`,
        });
    }
    if (messages.length > 0) out.set(self.key, messages);
  }
  return out;
}
