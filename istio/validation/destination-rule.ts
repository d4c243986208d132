// DestinationRule (networking.istio.io), after Istio's ValidateDestinationRule.
import type { IDestinationRule } from '@kubernetes-models/istio/networking.istio.io/v1/DestinationRule';
import { isSet, items, type Issues } from './field-issues.js';
import { isDns1123Label, portProblem, wildcardDomainProblem } from './hostnames.js';
import { checkDuration, validateExportTo } from './virtual-service.js';
import { validateMatchLabels } from './workload-selector.js';

type Spec = NonNullable<IDestinationRule['spec']>;
type TrafficPolicy = NonNullable<Spec['trafficPolicy']>;

interface ClientTls {
  mode?: string;
  clientCertificate?: string;
  privateKey?: string;
  caCertificates?: string;
  caCrl?: string;
  credentialName?: string;
  subjectAltNames?: string[];
  insecureSkipVerify?: boolean;
}

function percent(issues: Issues, field: string, value: unknown): void {
  if (isSet(value) && !(Number(value) >= 0 && Number(value) <= 100))
    issues.error(field, `percentage ${String(value)} is not in range 0..100`);
}

function nonNegative(issues: Issues, field: string, value: unknown): void {
  if (isSet(value) && Number(value) < 0) issues.error(field, `${String(value)} must not be negative`);
}

function validateOutlierDetection(issues: Issues, field: string, outlier: TrafficPolicy['outlierDetection']): void {
  if (!outlier || typeof outlier !== 'object') return;
  checkDuration(issues, `${field}.baseEjectionTime`, outlier.baseEjectionTime);
  checkDuration(issues, `${field}.interval`, outlier.interval);
  if (isSet(outlier.consecutiveErrors) && outlier.consecutiveErrors !== 0) {
    issues.warn(`${field}.consecutiveErrors`, 'consecutiveErrors is deprecated; use consecutiveGatewayErrors or consecutive5xxErrors');
  }
  if (!outlier.splitExternalLocalOriginErrors && Number(outlier.consecutiveLocalOriginFailures ?? 0) > 0) {
    issues.error(`${field}.consecutiveLocalOriginFailures`, 'consecutiveLocalOriginFailures needs splitExternalLocalOriginErrors: true');
  }
  percent(issues, `${field}.maxEjectionPercent`, outlier.maxEjectionPercent);
  percent(issues, `${field}.minHealthPercent`, outlier.minHealthPercent);
}

function validateConnectionPool(issues: Issues, field: string, pool: TrafficPolicy['connectionPool']): void {
  if (!pool || typeof pool !== 'object') return;
  if (!pool.http && !pool.tcp) issues.error(field, 'connection pool must have at least one field');
  const { http, tcp } = pool;
  if (http) {
    for (const key of [
      'http1MaxPendingRequests',
      'http2MaxRequests',
      'maxRequestsPerConnection',
      'maxRetries',
      'maxConcurrentStreams',
    ] as const) {
      nonNegative(issues, `${field}.http.${key}`, http[key]);
    }
    checkDuration(issues, `${field}.http.idleTimeout`, http.idleTimeout);
    if (http.h2UpgradePolicy === 'UPGRADE' && http.useClientProtocol) {
      issues.error(`${field}.http.useClientProtocol`, 'useClientProtocol must not be true when h2UpgradePolicy is UPGRADE');
    }
  }
  if (tcp) {
    nonNegative(issues, `${field}.tcp.maxConnections`, tcp.maxConnections);
    checkDuration(issues, `${field}.tcp.connectTimeout`, tcp.connectTimeout);
    checkDuration(issues, `${field}.tcp.maxConnectionDuration`, tcp.maxConnectionDuration);
    // idleTimeout 0s turns the timeout off.
    if (isSet(tcp.idleTimeout) && !/^0+(\.0*)?(ms|s|m|h)?$/.test(String(tcp.idleTimeout)))
      checkDuration(issues, `${field}.tcp.idleTimeout`, tcp.idleTimeout);
    checkDuration(issues, `${field}.tcp.tcpKeepalive.time`, tcp.tcpKeepalive?.time);
    checkDuration(issues, `${field}.tcp.tcpKeepalive.interval`, tcp.tcpKeepalive?.interval);
  }
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  if (n < 4) return true;
  if (n % 2 === 0) return false;
  for (let f = 3; f * f <= n; f += 2) if (n % f === 0) return false;
  return true;
}

function validateLoadBalancer(issues: Issues, field: string, lb: TrafficPolicy['loadBalancer']): void {
  if (!lb || typeof lb !== 'object') return;
  const hash = lb.consistentHash as
    | {
        httpHeaderName?: string;
        httpCookie?: { name?: string };
        useSourceIp?: boolean;
        httpQueryParameterName?: string;
        minimumRingSize?: number;
        ringHash?: unknown;
        maglev?: { tableSize?: number };
      }
    | undefined;
  if (lb.simple && hash) issues.error(field, 'only one of simple or consistentHash can be set');
  if (hash && typeof hash === 'object') {
    const keys = (['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'] as const).filter((key) => isSet(hash[key]));
    if (keys.length > 1) issues.error(`${field}.consistentHash`, `only one hash key can be set, found ${keys.join(', ')}`);
    if (hash.httpCookie && !hash.httpCookie.name) issues.error(`${field}.consistentHash.httpCookie.name`, 'name required for httpCookie');
    if (isSet(hash.minimumRingSize) && hash.minimumRingSize !== 0) {
      issues.warn(`${field}.consistentHash.minimumRingSize`, 'minimumRingSize is deprecated; use ringHash');
      if (hash.ringHash || hash.maglev)
        issues.error(`${field}.consistentHash`, 'only one of minimumRingSize or maglev/ringHash can be set');
    }
    if (hash.ringHash && hash.maglev) issues.error(`${field}.consistentHash`, 'only one of maglev or ringHash can be set');
    if (hash.maglev) {
      const size = Number(hash.maglev.tableSize ?? 0);
      if (size === 0) issues.error(`${field}.consistentHash.maglev.tableSize`, 'tableSize must be set for maglev');
      else if (size >= 5000011) issues.error(`${field}.consistentHash.maglev.tableSize`, 'tableSize must be less than 5000011');
      else if (!isPrime(size)) issues.error(`${field}.consistentHash.maglev.tableSize`, 'tableSize must be a prime number');
    }
  }
  const locality = lb.localityLbSetting as { distribute?: unknown[]; failover?: unknown[]; failoverPriority?: unknown[] } | undefined;
  if (locality && items(locality.distribute).length > 0 && items(locality.failover).length > 0) {
    issues.error(`${field}.localityLbSetting`, 'can not simultaneously specify distribute and failover');
  }
  if (lb.warmup) {
    const warmup = lb.warmup as { duration?: string; minimumPercent?: number; aggression?: number };
    if (!isSet(warmup.duration)) issues.error(`${field}.warmup.duration`, 'duration is required');
    else checkDuration(issues, `${field}.warmup.duration`, warmup.duration);
    if (Number(warmup.minimumPercent ?? 0) > 100) issues.error(`${field}.warmup.minimumPercent`, 'must be at most 100');
    if (isSet(warmup.aggression) && Number(warmup.aggression) <= 0) issues.error(`${field}.warmup.aggression`, 'must be greater than 0');
  }
}

function validateClientTls(issues: Issues, field: string, tls: ClientTls | undefined): void {
  if (!tls || typeof tls !== 'object') return;
  if (tls.insecureSkipVerify) {
    if (tls.mode === 'SIMPLE' && (tls.caCertificates || tls.credentialName || isSet(tls.subjectAltNames))) {
      issues.error(field, 'cannot set caCertificates, credentialName or subjectAltNames with insecureSkipVerify');
    }
    if (tls.mode === 'MUTUAL' && (tls.caCertificates || isSet(tls.subjectAltNames))) {
      issues.error(field, 'cannot set caCertificates or subjectAltNames with insecureSkipVerify');
    }
  }
  if ((tls.mode === 'SIMPLE' || tls.mode === 'MUTUAL') && tls.credentialName) {
    if (tls.clientCertificate || tls.caCertificates || tls.privateKey || tls.caCrl) {
      issues.error(field, 'cannot set clientCertificate, privateKey, caCertificates or caCrl together with credentialName');
    }
    return;
  }
  if (tls.mode === 'MUTUAL') {
    if (!tls.clientCertificate)
      issues.error(`${field}.clientCertificate`, 'client certificate required for mode MUTUAL (or set credentialName)');
    if (!tls.privateKey) issues.error(`${field}.privateKey`, 'private key required for mode MUTUAL (or set credentialName)');
  }
}

function validateTrafficPolicy(issues: Issues, field: string, policy: TrafficPolicy | undefined): void {
  if (!policy || typeof policy !== 'object') return;
  const p = policy as TrafficPolicy & { tunnel?: unknown; proxyProtocol?: { version?: string }; retryBudget?: unknown };
  if (Object.keys(p).length === 0) issues.error(field, 'traffic policy must have at least one field');
  if (p.tunnel && p.proxyProtocol) issues.error(field, 'tunnel and proxyProtocol must not be set together');
  validateOutlierDetection(issues, `${field}.outlierDetection`, p.outlierDetection);
  validateConnectionPool(issues, `${field}.connectionPool`, p.connectionPool);
  validateLoadBalancer(issues, `${field}.loadBalancer`, p.loadBalancer);
  validateClientTls(issues, `${field}.tls`, p.tls as ClientTls);
  items(p.portLevelSettings).forEach((settings, i) => {
    const at = `${field}.portLevelSettings[${i}]`;
    if (!settings || typeof settings !== 'object') return issues.error(at, 'port traffic policy may not be null');
    if (!settings.port) issues.error(`${at}.port`, 'port is required');
    else if (isSet(settings.port.number)) {
      const problem = portProblem(settings.port.number);
      if (problem) issues.error(`${at}.port.number`, problem);
    }
    if (!settings.outlierDetection && !settings.connectionPool && !settings.loadBalancer && !settings.tls) {
      issues.error(at, 'port traffic policy must have at least one field');
    }
    validateOutlierDetection(issues, `${at}.outlierDetection`, settings.outlierDetection);
    validateConnectionPool(issues, `${at}.connectionPool`, settings.connectionPool);
    validateLoadBalancer(issues, `${at}.loadBalancer`, settings.loadBalancer);
    validateClientTls(issues, `${at}.tls`, settings.tls as ClientTls);
  });
}

export function validateDestinationRule(issues: Issues, spec: Spec): void {
  const hostProblem = wildcardDomainProblem(spec.host ?? '');
  if (hostProblem) issues.error('spec.host', hostProblem);
  validateTrafficPolicy(issues, 'spec.trafficPolicy', spec.trafficPolicy);
  const names = new Set<string>();
  items(spec.subsets).forEach((subset, i) => {
    const field = `spec.subsets[${i}]`;
    if (!subset || typeof subset !== 'object') return issues.error(field, 'subset may not be null');
    const name = subset.name ?? '';
    if (!isDns1123Label(name))
      issues.error(`${field}.name`, name ? `subset name "${name}" is not a DNS-1123 label` : 'subset name is required');
    if (names.has(name)) issues.error(`${field}.name`, `duplicate subset name "${name}"`);
    names.add(name);
    validateMatchLabels(issues, `${field}.labels`, subset.labels);
    validateTrafficPolicy(issues, `${field}.trafficPolicy`, subset.trafficPolicy as TrafficPolicy);
  });
  validateExportTo(issues, 'spec.exportTo', spec.exportTo);
  if (spec.workloadSelector) {
    validateMatchLabels(issues, 'spec.workloadSelector.matchLabels', spec.workloadSelector.matchLabels);
    const exportTo = items(spec.exportTo);
    if (exportTo.length > 1 || exportTo[0] === '*' || exportTo[0] === '~') {
      issues.error('spec.exportTo', 'a DestinationRule with a workloadSelector can only be exported to its own namespace (".")');
    }
  }
}
