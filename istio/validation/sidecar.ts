// Sidecar (networking.istio.io), after Istio's ValidateSidecar.
import type { ISidecar } from '@kubernetes-models/istio/networking.istio.io/v1/Sidecar';
import { entriesOf, isSet, items, type Issues } from './field-issues.js';
import { isDns1123Label, isIpAddress, portProblem, protocolProblem, wildcardDomainProblem } from './hostnames.js';
import { validateDestination } from './virtual-service.js';
import { validateMatchLabels } from './workload-selector.js';

type Spec = NonNullable<ISidecar['spec']>;
interface SidecarPort {
  number?: number;
  protocol?: string;
  name?: string;
  targetPort?: number;
}

/** An egress host: `namespace/dnsName`, where namespace is `*`, `.`, `~` or a namespace and dnsName may start with `*.`. */
export function egressHostProblem(host: string): string | undefined {
  const slash = host.indexOf('/');
  if (slash < 0) return `host "${host}" must be of form namespace/dnsName`;
  const namespace = host.slice(0, slash);
  const name = host.slice(slash + 1);
  if (!namespace || !name) return `namespace and dnsName in host "${host}" cannot be empty`;
  const ns = namespace.replace(/^~/, '');
  if (ns !== '' && ns !== '*' && ns !== '.' && !isDns1123Label(ns)) return `invalid namespace "${namespace}" in host "${host}"`;
  if (name === '*') return undefined;
  if (!name.includes('.')) return `short names (non FQDN) are not allowed: "${name}"`;
  if (name.includes('*') && !name.startsWith('*.')) return `partial wildcard "${name}" not allowed`;
  return wildcardDomainProblem(name);
}

function validatePort(issues: Issues, field: string, port: SidecarPort, bind: string | undefined, unixAllowed: boolean): void {
  if (port.name && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(port.name)) issues.error(`${field}.name`, `invalid port name "${port.name}"`);
  const protocol = protocolProblem(port.protocol);
  if (port.protocol !== undefined && protocol) issues.error(`${field}.protocol`, protocol);
  if (isSet(port.targetPort) && port.targetPort !== 0) issues.error(`${field}.targetPort`, 'targetPort has no effect on Sidecars');
  if (unixAllowed && port.number === 0) {
    if (!bind?.startsWith('unix://')) issues.error(field, 'port 0 needs a unix domain socket bind address (unix://...)');
    return;
  }
  const problem = portProblem(port.number);
  if (problem) issues.error(`${field}.number`, problem);
  if (bind && !isIpAddress(bind)) issues.error(field.replace(/\.port$/, '.bind'), `"${bind}" is not an IP address`);
}

export function validateSidecar(issues: Issues, spec: Spec): void {
  if (spec.workloadSelector) {
    validateMatchLabels(issues, 'spec.workloadSelector.labels', spec.workloadSelector.labels);
    if (entriesOf(spec.workloadSelector.labels).length === 0) {
      issues.warn('spec.workloadSelector', 'workloadSelector has no labels: the Sidecar applies to every workload in the namespace');
    }
  }
  const s = spec as Spec & { inboundConnectionPool?: unknown };
  if (items(spec.egress).length === 0 && items(spec.ingress).length === 0 && !spec.outboundTrafficPolicy && !s.inboundConnectionPool) {
    issues.error('spec', 'empty Sidecar: set egress, ingress, outboundTrafficPolicy or inboundConnectionPool');
  }

  const ingressPorts = new Set<number>();
  items(spec.ingress).forEach((ingress, i) => {
    const field = `spec.ingress[${i}]`;
    if (!ingress || typeof ingress !== 'object') return issues.error(field, 'ingress listener may not be null');
    if (!ingress.port) return issues.error(`${field}.port`, 'port is required for ingress listeners');
    validatePort(issues, `${field}.port`, ingress.port as SidecarPort, ingress.bind, false);
    if (ingressPorts.has(Number(ingress.port.number))) issues.error(`${field}.port.number`, 'ports on IP bound listeners must be unique');
    ingressPorts.add(Number(ingress.port.number));
    const endpoint = ingress.defaultEndpoint;
    if (endpoint && !endpoint.startsWith('unix://')) {
      const match = /^(?:\[([^\]]*)\]|([^:]*)):(\d+)$/.exec(endpoint);
      const host = match?.[1] ?? match?.[2];
      if (!match || !['', '127.0.0.1', '0.0.0.0', '::1', '::'].includes(host ?? 'x')) {
        issues.error(
          `${field}.defaultEndpoint`,
          'defaultEndpoint must be 127.0.0.1:<port>, 0.0.0.0:<port>, [::1]:<port>, [::]:<port> or unix://<path>',
        );
      } else {
        const problem = portProblem(Number(match[3]));
        if (problem) issues.error(`${field}.defaultEndpoint`, problem);
      }
    }
  });

  const egressPorts = new Set<number>();
  const egress = items(spec.egress);
  let portless = 0;
  egress.forEach((listener, i) => {
    const field = `spec.egress[${i}]`;
    if (!listener || typeof listener !== 'object') return issues.error(field, 'egress listener may not be null');
    if (!listener.port) {
      portless++;
      if (portless > 1) issues.error(`${field}.port`, 'only one egress listener may leave out the port');
      else if (i !== egress.length - 1) issues.error(`${field}.port`, 'the egress listener without a port must be the last one');
    } else {
      validatePort(issues, `${field}.port`, listener.port as SidecarPort, listener.bind, true);
      const number = Number(listener.port.number);
      if (number !== 0 && egressPorts.has(number)) issues.error(`${field}.port.number`, 'ports on IP bound listeners must be unique');
      egressPorts.add(number);
    }
    const hosts = items(listener.hosts);
    if (hosts.length === 0) issues.error(`${field}.hosts`, 'an egress listener must have at least one host');
    hosts.forEach((host, j) => {
      const problem = egressHostProblem(String(host));
      if (problem) issues.error(`${field}.hosts[${j}]`, problem);
    });
  });

  const policy = spec.outboundTrafficPolicy;
  if (policy && typeof policy === 'object') {
    const mode = (policy as { mode?: string }).mode;
    if (mode === 'ALLOW_ANY_DYNAMIC_DNS')
      issues.error('spec.outboundTrafficPolicy.mode', 'ALLOW_ANY_DYNAMIC_DNS is only supported in MeshConfig');
    if (policy.egressProxy) {
      if (mode !== 'ALLOW_ANY') issues.error('spec.outboundTrafficPolicy.egressProxy', 'egressProxy needs mode ALLOW_ANY');
      else if (!policy.egressProxy.port) issues.error('spec.outboundTrafficPolicy.egressProxy.port', 'port is required');
      else validateDestination(issues, 'spec.outboundTrafficPolicy.egressProxy', policy.egressProxy);
    }
  }
}
