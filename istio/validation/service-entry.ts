// ServiceEntry (networking.istio.io), after Istio's ValidateServiceEntry.
import type { IServiceEntry } from '@kubernetes-models/istio/networking.istio.io/v1/ServiceEntry';
import { entriesOf, items, type Issues } from './field-issues.js';
import { fqdnProblem, ipOrCidrProblem, isIpAddress, portProblem, protocolProblem, wildcardDomainProblem } from './hostnames.js';
import { validateExportTo } from './virtual-service.js';
import { validateMatchLabels } from './workload-selector.js';

type Spec = NonNullable<IServiceEntry['spec']>;
type Endpoint = NonNullable<Spec['endpoints']>[number];

const portName = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function validateEndpointPorts(issues: Issues, field: string, endpoint: Endpoint, portNames: Set<string>): void {
  for (const [name, port] of entriesOf(endpoint.ports)) {
    if (!portNames.has(name)) issues.error(`${field}.ports[${name}]`, `endpoint port ${name} is not defined by the ServiceEntry's ports`);
    const problem = portProblem(port);
    if (problem) issues.error(`${field}.ports[${name}]`, problem);
  }
}

export function validateServiceEntry(issues: Issues, spec: Spec): void {
  const resolution = spec.resolution ?? 'NONE';
  const hosts = items(spec.hosts);
  const endpoints = items(spec.endpoints);
  if (spec.workloadSelector) {
    validateMatchLabels(issues, 'spec.workloadSelector.labels', spec.workloadSelector.labels);
    if (entriesOf(spec.workloadSelector.labels).length === 0) issues.warn('spec.workloadSelector', 'workloadSelector has no labels');
    if (spec.endpoints) issues.error('spec', 'only one of workloadSelector or endpoints can be set');
  }
  if (hosts.length === 0) issues.error('spec.hosts', 'a ServiceEntry must have at least one host');
  hosts.forEach((host, i) => {
    if (host === '*') return issues.error(`spec.hosts[${i}]`, 'invalid host *');
    const problem = wildcardDomainProblem(host);
    if (problem) issues.error(`spec.hosts[${i}]`, problem);
  });

  let cidr = false;
  items(spec.addresses).forEach((address, i) => {
    cidr ||= address.includes('/');
    const problem = ipOrCidrProblem(address);
    if (problem) issues.error(`spec.addresses[${i}]`, problem);
  });
  if (cidr && resolution !== 'NONE' && resolution !== 'STATIC') {
    issues.error('spec.addresses', 'CIDR addresses are allowed only with resolution NONE or STATIC');
  }

  const names = new Set<string>();
  const numbers = new Set<number>();
  items(spec.ports).forEach((port, i) => {
    const field = `spec.ports[${i}]`;
    if (!port || typeof port !== 'object') return issues.error(field, 'port may not be null');
    if (names.has(port.name ?? '')) issues.error(`${field}.name`, `port name "${port.name}" already defined`);
    if (numbers.has(Number(port.number))) issues.error(`${field}.number`, `port ${port.number} already defined`);
    names.add(port.name ?? '');
    numbers.add(Number(port.number));
    if (!portName.test(port.name ?? '')) issues.error(`${field}.name`, `invalid port name "${port.name ?? ''}"`);
    const numberProblem = portProblem(port.number);
    if (numberProblem) issues.error(`${field}.number`, numberProblem);
    if (port.targetPort) {
      const problem = portProblem(port.targetPort);
      if (problem) issues.error(`${field}.targetPort`, problem);
    }
    if (port.protocol) {
      const problem = protocolProblem(port.protocol);
      if (problem) issues.error(`${field}.protocol`, problem);
    }
  });

  switch (resolution) {
    case 'NONE':
      if (endpoints.length > 0) issues.error('spec.endpoints', 'no endpoints should be provided for resolution NONE');
      if (spec.workloadSelector) issues.warn('spec.workloadSelector', 'workloadSelector has no effect with resolution NONE');
      break;
    case 'STATIC':
      if (!spec.endpoints && !spec.workloadSelector) {
        issues.error('spec.endpoints', 'resolution STATIC needs endpoints (IP addresses) or a workloadSelector');
      }
      endpoints.forEach((endpoint, i) => {
        const field = `spec.endpoints[${i}]`;
        if (!endpoint || typeof endpoint !== 'object') return issues.error(field, 'endpoint may not be null');
        const address = endpoint.address ?? '';
        if (address.startsWith('unix://')) {
          if (address.length <= 'unix://'.length) issues.error(`${field}.address`, 'unix address needs a path');
        } else if (!address && endpoint.network) {
          // An endpoint reached through its network's gateway may leave the address out.
        } else if (!isIpAddress(address)) {
          issues.error(
            `${field}.address`,
            `"${address}" is not an IP address: resolution STATIC takes IP addresses (use DNS for hostnames)`,
          );
        }
        validateMatchLabels(issues, `${field}.labels`, endpoint.labels);
        validateEndpointPorts(issues, field, endpoint, names);
      });
      break;
    case 'DNS':
    case 'DNS_ROUND_ROBIN':
      if (endpoints.length === 0) {
        hosts.forEach((host, i) => {
          if (host !== '*' && fqdnProblem(host)) {
            issues.error(`spec.hosts[${i}]`, `hosts must be fully qualified (no wildcards) when resolution ${resolution} has no endpoints`);
          }
        });
      }
      if (resolution === 'DNS_ROUND_ROBIN' && endpoints.length > 1)
        issues.error('spec.endpoints', 'resolution DNS_ROUND_ROBIN takes at most one endpoint');
      endpoints.forEach((endpoint, i) => {
        const field = `spec.endpoints[${i}]`;
        if (!endpoint || typeof endpoint !== 'object') return issues.error(field, 'endpoint may not be null');
        const address = endpoint.address ?? '';
        if (!isIpAddress(address) && fqdnProblem(address))
          issues.error(`${field}.address`, `"${address}" is not a valid FQDN or IP address`);
        validateMatchLabels(issues, `${field}.labels`, endpoint.labels);
        validateEndpointPorts(issues, field, endpoint, names);
      });
      break;
    default:
      break;
  }
  validateExportTo(issues, 'spec.exportTo', spec.exportTo, true);
}
