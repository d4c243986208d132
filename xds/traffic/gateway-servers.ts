// Which Istio Gateways a gateway proxy (`router`) serves, their servers merged per
// port as istiod merges them, and the VirtualServices bound to each Gateway. Pure;
// after Istio's PushContext.mergeGateways and model.mergeGateways
// (pilot/pkg/model/push_context.go, gateway.go) and VirtualServicesForGateway.
import type { ConfigObject, GatewaySpec, VirtualServiceSpec } from '../model/istio-config.js';
import { byAge } from '../model/istio-config.js';
import { serviceHost } from '../model/mesh-model.js';
import type { MeshIndex } from './mesh-index.js';
import { exportedTo, labelsMatch } from './host-names.js';
import { resolveGatewayName } from './http-routes.js';
import { isHttp, parseProtocol } from './port-protocol.js';
import type { ProxyScope } from './proxy-scope.js';
import { usesGatewaySemantics } from './proxy-view.js';

export type GatewayServerSpec = NonNullable<GatewaySpec['servers']>[number];

/** One server of one Gateway, its hosts with a `.` or `*` namespace prefix resolved as Istio's sanitizeServerHostNamespace. */
export interface GatewayServer {
  server: GatewayServerSpec;
  /** `<namespace>/<name>` of its Gateway. */
  gateway: string;
  /** The listener port it is served on (the Service's targetPort when a Service of the proxy exposes its port). */
  port: number;
  /** Its route configuration (HTTP: `http.<port>`; HTTPS terminated: `https.<port>.<portName>.<gateway>.<namespace>`), else ''. */
  routeName: string;
  /** TLS servers: the hosts as SNI names (namespace prefixes dropped, sorted, unique). */
  sniHosts: string[];
}

/** The servers on one (port, protocol, bind): Istio's ServerPort and MergedServers. */
export interface MergedPort {
  port: number;
  protocol: string;
  bind: string;
  servers: GatewayServer[];
  /** Plain HTTP servers share one route configuration (`http.<port>`). */
  routeName: string;
}

export interface MergedGateway {
  /** In merge order; listeners are named `<bind or 0.0.0.0>_<port>`, ports of one listener sharing its chains. */
  ports: MergedPort[];
  /** Route configuration name to the servers whose virtual hosts it holds. */
  serversByRouteName: Map<string, GatewayServer[]>;
  /** The Gateways merged (`<namespace>/<name>`), oldest first. */
  gateways: string[];
  /** Servers left out, with Istio's reason (as istiod logs them and counts pilot_total_rejected_configs). */
  skipped: Array<{ gateway: string; message: string }>;
}

/** A Service port of the proxy's own workload (Istio's ServiceTarget): the port and the port it targets. */
export interface ProxyServicePort {
  port: number;
  targetPort: number;
  /** The Service's hostname and namespace (a Gateway API Gateway binds its proxies by them). */
  host: string;
  namespace: string;
}

/** Istio's annotations on the Gateways it converts from the Gateway API (pilot/pkg/model InternalGatewayServiceAnnotation). */
const gatewayServiceAnnotation = 'internal.istio.io/gateway-service';
const parentNamespaceAnnotation = 'internal.istio.io/parent-namespace';

/** The Services (`hostname` list) a converted Gateway binds its proxies by, and their namespace; undefined for a selector Gateway. */
function boundServices(gateway: ConfigObject<GatewaySpec>): { hosts: Set<string>; namespace: string } | undefined {
  const hosts = gateway.annotations?.[gatewayServiceAnnotation];
  if (hosts === undefined) return undefined;
  return { hosts: new Set(hosts.split(',')), namespace: gateway.annotations?.[parentNamespaceAnnotation] || gateway.namespace };
}

/**
 * The Gateways that select a gateway proxy, oldest first: in any namespace (Istio's
 * default, PILOT_SCOPE_GATEWAY_TO_NAMESPACE off), whose `selector` is a subset of the
 * proxy's labels; a Gateway without a selector selects every gateway proxy. A Gateway
 * converted from the Gateway API (`internal.istio.io/gateway-service`) selects the proxies of
 * the Services it names instead, as istiod's PushContext.mergeGateways.
 */
export function gatewaysSelecting(index: MeshIndex, scope: ProxyScope): Array<ConfigObject<GatewaySpec>> {
  let targets: ProxyServicePort[] | undefined;
  return [...index.config.gateways]
    .filter((gateway) => {
      const bound = boundServices(gateway);
      if (!bound) return labelsMatch(gateway.spec.selector as Record<string, string> | undefined, scope.labels);
      targets ??= proxyServicePorts(index, scope);
      return targets.some((t) => bound.hosts.has(t.host) && t.namespace === bound.namespace);
    })
    .sort(byAge);
}

/**
 * The ports of the Services selecting the proxy's workload in its namespace (Istio reads
 * the proxy's ServiceTargets): a server on a Service port listens on that port's
 * targetPort, as istiod's resolvePorts does for a Gateway's `selector`.
 */
export function proxyServicePorts(index: MeshIndex, scope: ProxyScope): ProxyServicePort[] {
  const ports: ProxyServicePort[] = [];
  for (const service of index.byNamespace.get(scope.namespace) ?? []) {
    if (!service.selector || Object.keys(service.selector).length === 0 || !labelsMatch(service.selector, scope.labels)) continue;
    const host = serviceHost(service, index.model.clusterDomain);
    for (const port of service.ports)
      ports.push({ port: port.port, targetPort: port.targetPort ?? port.port, host, namespace: service.namespace });
  }
  return ports;
}

const isPassthrough = (server: GatewayServerSpec) => server.tls?.mode === 'PASSTHROUGH' || server.tls?.mode === 'AUTO_PASSTHROUGH';
const protocolOf = (server: GatewayServerSpec) => parseProtocol(server.port.protocol);
/** pkg/config/gateway: a server with TLS settings whose protocol is not HTTP. */
export const isTlsServer = (server: GatewayServerSpec) => !!server.tls && !isHttp(protocolOf(server));
/** HTTP, HTTP2, GRPC, or HTTPS that terminates TLS: a server whose traffic is routed by an HCM. */
export const isHttpServer = (server: GatewayServerSpec) =>
  isHttp(protocolOf(server)) || (protocolOf(server) === 'HTTPS' && !isPassthrough(server));
export const isHttpsTerminated = (server: GatewayServerSpec) => !!server.tls && protocolOf(server) === 'HTTPS' && !isPassthrough(server);
export const isPassthroughServer = isPassthrough;

function sanitizeHosts(server: GatewayServerSpec, namespace: string): GatewayServerSpec {
  if (!server.hosts.some((host) => host.includes('/'))) return server;
  let hosts: string[] = [];
  for (const host of server.hosts) {
    const [prefix, name] = host.split('/') as [string, string];
    if (!host.includes('/')) hosts.push(host);
    else if (prefix === '.') hosts.push(`${namespace}/${name}`);
    else if (prefix === '*') {
      if (name === '*') {
        hosts = ['*'];
        continue;
      }
      hosts.push(name);
    } else hosts.push(host);
  }
  return { ...server, hosts };
}

function routeNameOf(server: GatewayServerSpec, port: number, gateway: ConfigObject<GatewaySpec>): string {
  const bind = server.bind ? `.${server.bind}` : '';
  if (isHttp(protocolOf(server))) return `http.${port}${bind}`;
  // Istio names HTTPS routes by the server's own port number, not the resolved one.
  if (protocolOf(server) === 'HTTPS' && !isPassthrough(server))
    return `https.${server.port.number}.${server.port.name}.${gateway.name}.${gateway.namespace}${bind}`;
  return '';
}

export function sniHostsOf(server: GatewayServerSpec): string[] {
  if (!server.tls) return [];
  return [...new Set(server.hosts.map((host) => (host.includes('/') ? (host.split('/')[1] as string) : host)))].sort();
}

/**
 * The Gateways' servers merged per port, as istiod's mergeGateways: servers on one port
 * merge when their protocols can (plain HTTP servers share `http.<port>`; TLS servers on a
 * port each get their own chain); a server conflicting with the port's plain protocol, a
 * TLS server repeating a host already served on its port and bind, or an HTTPS server
 * repeating another's route name is skipped (listed in `skipped`). Servers on a port of a
 * Service of the proxy listen on its targetPort.
 */
export function mergeGateways(gateways: ReadonlyArray<ConfigObject<GatewaySpec>>, targets: ReadonlyArray<ProxyServicePort>): MergedGateway {
  const gatewayPorts = new Set<number>();
  const tlsBinds = new Map<number, Set<string>>();
  const merged = new Map<string, MergedPort>();
  const ports: MergedPort[] = [];
  const plainText = new Map<number, MergedPort>();
  const serversByRouteName = new Map<string, GatewayServer[]>();
  const tlsHostsByPort = new Map<number, Map<string, string>>();
  const skipped: MergedGateway['skipped'] = [];
  const key = (port: number, protocol: string, bind: string) => `${port}|${protocol}|${bind}`;
  const addPort = (entry: GatewayServer, protocol: string, bind: string) => {
    const mergedPort: MergedPort = { port: entry.port, protocol, bind, servers: [entry], routeName: entry.routeName };
    if (!isTlsServer(entry.server)) plainText.set(entry.port, mergedPort);
    if (isHttpServer(entry.server)) serversByRouteName.set(entry.routeName, [entry]);
    merged.set(key(entry.port, protocol, bind), mergedPort);
    ports.push(mergedPort);
  };

  for (const gateway of gateways) {
    const gatewayName = `${gateway.namespace}/${gateway.name}`;
    for (const written of gateway.spec.servers ?? []) {
      if (!written.port) continue;
      const server = sanitizeHosts(written, gateway.namespace);
      for (const port of resolvePorts(server.port.number, gateway, targets)) mergeServer(gateway, gatewayName, server, port);
    }
  }
  return { ports, serversByRouteName, gateways: gateways.map((g) => `${g.namespace}/${g.name}`), skipped };

  function mergeServer(gateway: ConfigObject<GatewaySpec>, gatewayName: string, server: GatewayServerSpec, port: number): void {
    const routeName = routeNameOf(server, port, gateway);
    const bind = server.bind ?? '';
    const protocol = server.port.protocol;
    const skip = (message: string) =>
      skipped.push({ gateway: gatewayName, message: `port ${server.port.name}.${port}.${protocol}: ${message}` });
    if (server.tls) {
      let known = tlsHostsByPort.get(port);
      if (!known) tlsHostsByPort.set(port, (known = new Map()));
      const duplicates = server.hosts.filter((host) => known.get(host) === bind);
      if (duplicates.length > 0) {
        skip(`duplicate host names ${duplicates.join(', ')}`);
        return;
      }
      for (const host of server.hosts) known.set(host, bind);
    }
    const entry: GatewayServer = { server, gateway: gatewayName, port, routeName, sniHosts: sniHostsOf(server) };
    if (!gatewayPorts.has(port)) {
      gatewayPorts.add(port);
      addPort(entry, protocol, bind);
      return;
    }
    const current = plainText.get(port);
    if (current) {
      const currentProtocol = parseProtocol(current.protocol);
      const canMerge = (isHttp(currentProtocol) || currentProtocol === protocolOf(server)) && isHttp(protocolOf(server));
      if (!canMerge && current.bind === bind) {
        skip(`conflicts with the server ${current.port}.${current.protocol}`);
        return;
      }
      if (routeName === '' && current.bind === bind) {
        skip('no route name can be built for it');
        return;
      }
      if (current.bind !== bind) {
        const existing = merged.get(key(port, protocol, bind));
        if (!existing) addPort(entry, protocol, bind);
        else {
          existing.routeName = routeName;
          existing.servers.push(entry);
          serversByRouteName.set(routeName, [...(serversByRouteName.get(routeName) ?? []), entry]);
        }
      } else {
        current.servers.push(entry);
        serversByRouteName.set(routeName, [...(serversByRouteName.get(routeName) ?? []), entry]);
      }
      return;
    }
    if (!isTlsServer(server)) {
      const mergedPort: MergedPort = { port, protocol, bind, servers: [entry], routeName };
      plainText.set(port, mergedPort);
      if (isHttpServer(server)) serversByRouteName.set(routeName, [entry]);
      merged.set(key(port, protocol, bind), mergedPort);
      ports.push(mergedPort);
      return;
    }
    if (isHttpServer(server)) {
      if (routeName === '') {
        skip('no route name can be built for it');
        return;
      }
      if (serversByRouteName.has(routeName)) {
        skip('non unique port name for HTTPS port');
        return;
      }
      serversByRouteName.set(routeName, [entry]);
    }
    let binds = tlsBinds.get(port);
    const newBind = !binds?.has(bind);
    if (!binds) tlsBinds.set(port, (binds = new Set()));
    binds.add(bind);
    if (!server.tls && !newBind) {
      skip('TLS server without TLS options');
      return;
    }
    const existing = merged.get(key(port, protocol, bind));
    if (existing) existing.servers.push(entry);
    else {
      const mergedPort: MergedPort = { port, protocol, bind, servers: [entry], routeName: '' };
      merged.set(key(port, protocol, bind), mergedPort);
      ports.push(mergedPort);
    }
  }
}

/**
 * The ports a server listens on (istiod's resolvePorts): for a selector Gateway, the targetPort
 * of the first proxy Service port equal to the server's, else the server's own port; for a
 * converted Gateway API Gateway, the targetPorts of the ports of the Services it names, none
 * when no such port exists.
 */
function resolvePorts(number: number, gateway: ConfigObject<GatewaySpec>, targets: ReadonlyArray<ProxyServicePort>): number[] {
  const bound = boundServices(gateway);
  if (!bound) {
    const resolved = targets.find((t) => t.port === number);
    return [resolved ? resolved.targetPort : number];
  }
  const matching = targets.filter((t) => t.port === number && bound.hosts.has(t.host) && t.namespace === bound.namespace);
  return [...new Set(matching.map((t) => t.targetPort))];
}

/** The Gateways (`<namespace>/<name>`) a VirtualService binds to; `mesh` when it names none. */
export function boundGateways(rule: ConfigObject<VirtualServiceSpec>): string[] {
  const gateways = rule.spec.gateways ?? [];
  return gateways.length === 0 ? ['mesh'] : gateways.map((name) => resolveGatewayName(name, rule.namespace));
}

/** Whether a VirtualService binds to some Gateway (not only to `mesh`). */
export const bindsToGateway = (rule: ConfigObject<VirtualServiceSpec>) => boundGateways(rule).some((name) => name !== 'mesh');
/** Whether a VirtualService applies to sidecars: no `gateways`, or `mesh` among them. */
export const bindsToMesh = (rule: ConfigObject<VirtualServiceSpec>) => boundGateways(rule).includes('mesh');

/**
 * The VirtualServices bound to one Gateway that a proxy in `proxyNamespace` sees (their
 * exportTo), oldest first, as istiod's VirtualServicesForGateway: those exported to the
 * proxy's namespace only (`.` or its name) first, then those exported everywhere.
 */
export function virtualServicesForGateway(
  virtualServices: ReadonlyArray<ConfigObject<VirtualServiceSpec>>,
  proxyNamespace: string,
  gateway: string,
): Array<ConfigObject<VirtualServiceSpec>> {
  const bound = [...virtualServices]
    .filter((rule) => boundGateways(rule).includes(gateway) && exportedTo(rule.spec.exportTo, rule.namespace, proxyNamespace))
    .sort(byAge);
  const everywhere = (rule: ConfigObject<VirtualServiceSpec>) =>
    !rule.spec.exportTo || rule.spec.exportTo.length === 0 || rule.spec.exportTo.includes('*');
  // Public rules: gateway-semantics (Gateway API) rules of the proxy's namespace first, Istio's "consumer override".
  const consumer = (rule: ConfigObject<VirtualServiceSpec>) => usesGatewaySemantics(rule) && rule.namespace === proxyNamespace;
  const publicRules = bound.filter(everywhere);
  return [...bound.filter((rule) => !everywhere(rule)), ...publicRules.filter(consumer), ...publicRules.filter((rule) => !consumer(rule))];
}
