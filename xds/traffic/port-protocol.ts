// The protocol of a service port, decided exactly as istiod decides it
// (pkg/config/protocol/instance.go, pkg/config/kube/conversion.go,
// pilot/pkg/serviceregistry/serviceentry/conversion.go), and what that protocol
// makes of a listener (pilot/pkg/networking/networking.go). Pure; the one place
// Weft decides a port's protocol, outbound and inbound, for Services and
// ServiceEntries alike.
import type { MeshService, ServicePort } from '../model/mesh-model.js';

/** Istio's protocol names (protocol.Instance); `UnsupportedProtocol` means "not declared: detect it". */
export type Protocol =
  | 'GRPC'
  | 'GRPC-Web'
  | 'HTTP'
  | 'HTTP_PROXY'
  | 'HTTP2'
  | 'HTTPS'
  | 'TCP'
  | 'TLS'
  | 'UDP'
  | 'Mongo'
  | 'Redis'
  | 'MySQL'
  | 'UnsupportedProtocol';

const byLowerName: Record<string, Protocol> = {
  tcp: 'TCP',
  udp: 'UDP',
  grpc: 'GRPC',
  'grpc-web': 'GRPC-Web',
  http: 'HTTP',
  http_proxy: 'HTTP_PROXY',
  http2: 'HTTP2',
  https: 'HTTPS',
  tls: 'TLS',
  mongo: 'Mongo',
  redis: 'Redis',
  mysql: 'MySQL',
};

/** protocol.Parse: a protocol name, any case; anything else is `UnsupportedProtocol`. */
export function parseProtocol(name: string): Protocol {
  return byLowerName[name.toLowerCase()] ?? 'UnsupportedProtocol';
}

/** Ports Istio never sniffs when undeclared (SMTP, DNS, MySQL, MongoDB): server-first protocols would hang. */
const wellKnownTcpPorts = new Set([25, 53, 3306, 27017]);

/**
 * A Kubernetes Service port's protocol, as kube.ConvertProtocol: UDP stays UDP;
 * then `appProtocol` if set (with Kubernetes' `kubernetes.io/h2c`, `/ws`, `/wss`),
 * else the port name; the name is read up to its first `-` (`http-web` is HTTP,
 * `grpc-web...` is gRPC-Web); an undeclared protocol is TCP on the well-known
 * ports 25, 53, 3306 and 27017, else `UnsupportedProtocol` (detected at run time).
 */
export function kubernetesPortProtocol(port: { port: number; name?: string; protocol?: string; appProtocol?: string }): Protocol {
  if (port.protocol === 'UDP') return 'UDP';
  let name = port.name ?? '';
  if (port.appProtocol !== undefined) {
    name = port.appProtocol;
    switch (name) {
      case 'kubernetes.io/h2c':
        return 'HTTP2';
      case 'kubernetes.io/ws':
        return 'HTTP';
      case 'kubernetes.io/wss':
        return 'HTTPS';
    }
  }
  // Before the cut at '-', which grpc-web contains.
  if (name.length >= 8 && name.slice(0, 8).toLowerCase() === 'grpc-web') return 'GRPC-Web';
  const dash = name.indexOf('-');
  const parsed = parseProtocol(dash >= 0 ? name.slice(0, dash) : name);
  if (parsed === 'UnsupportedProtocol' && wellKnownTcpPorts.has(port.port)) return 'TCP';
  return parsed;
}

/**
 * The protocol of one port of a MeshService: a ServiceEntry's port declares it
 * (`protocol: TLS`, parsed as protocol.Parse; empty is detected), a Kubernetes
 * Service's port as kubernetesPortProtocol (its `protocol` is the L4 one).
 */
export function portProtocol(service: Pick<MeshService, 'hostname'>, port: ServicePort): Protocol {
  if (service.hostname !== undefined) return parseProtocol(port.protocol);
  return kubernetesPortProtocol(port);
}

/** Protocols carried over HTTP (Instance.IsHTTP). */
export const isHttp = (p: Protocol) => p === 'HTTP' || p === 'HTTP2' || p === 'HTTP_PROXY' || p === 'GRPC' || p === 'GRPC-Web';
/** Protocols proxied as bytes over TCP (Instance.IsTCP). */
export const isTcp = (p: Protocol) => p === 'TCP' || p === 'HTTPS' || p === 'TLS' || p === 'Mongo' || p === 'Redis' || p === 'MySQL';
/** Protocols on top of TLS, routed by SNI (Instance.IsTLS). */
export const isTls = (p: Protocol) => p === 'HTTPS' || p === 'TLS';
/** HTTP/2 transports (Instance.IsHTTP2). */
export const isHttp2 = (p: Protocol) => p === 'HTTP2' || p === 'GRPC' || p === 'GRPC-Web';

/** What a protocol makes of a listener (ModelProtocolToListenerProtocol): HTTP, TCP, detection (AUTO), or none (UDP). */
export type ListenerProtocol = 'HTTP' | 'TCP' | 'AUTO' | 'NONE';

export function listenerProtocol(p: Protocol): ListenerProtocol {
  if (isHttp(p)) return 'HTTP';
  if (isTcp(p)) return 'TCP';
  if (p === 'UDP') return 'NONE';
  return 'AUTO';
}
