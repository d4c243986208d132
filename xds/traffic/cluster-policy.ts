// DestinationRule traffic policies as Envoy Cluster fields, for one port and
// subset, merged as Istio does: a subset's (or port's) loadBalancer,
// connectionPool, outlierDetection and tls each replace the rule's own. Some
// settings have no proxyless gRPC equivalent; `target` says which proxy reads it.
import { protoDuration } from '../../lib/duration.js';
import type { Subset, TrafficPolicy } from '../model/istio-config.js';
import type { ProxyKind } from './proxy-scope.js';

// The parts of Istio's TrafficPolicy read here (the generated types are unions too wide to use directly).
export interface ConsistentHash {
  httpHeaderName?: string;
  httpCookie?: { name: string; path?: string; ttl?: string };
  useSourceIp?: boolean;
  httpQueryParameterName?: string;
  ringHash?: { minimumRingSize?: number };
  maglev?: { tableSize?: number };
  minimumRingSize?: number;
}
export interface PolicyFields {
  loadBalancer?: { simple?: string; consistentHash?: ConsistentHash };
  connectionPool?: {
    tcp?: { maxConnections?: number; connectTimeout?: string };
    http?: { http1MaxPendingRequests?: number; http2MaxRequests?: number; maxRetries?: number };
  };
  outlierDetection?: {
    consecutive5xxErrors?: number;
    consecutiveGatewayErrors?: number;
    consecutiveErrors?: number;
    interval?: string;
    baseEjectionTime?: string;
    maxEjectionPercent?: number;
    minHealthPercent?: number;
  };
  tls?: { mode?: 'DISABLE' | 'SIMPLE' | 'MUTUAL' | 'ISTIO_MUTUAL'; sni?: string; subjectAltNames?: string[]; caCertificates?: string };
  portLevelSettings?: Array<PolicyFields & { port?: { number?: number } }>;
}

const policyKeys = ['loadBalancer', 'connectionPool', 'outlierDetection', 'tls'] as const;

/** The policy in force for one port of one subset. */
export function effectivePolicy(rulePolicy: TrafficPolicy | undefined, subset: Subset | undefined, port: number): PolicyFields {
  const layers = [rulePolicy as PolicyFields | undefined, subset?.trafficPolicy as PolicyFields | undefined];
  const merged: PolicyFields = {};
  for (const layer of layers) {
    if (!layer) continue;
    const portLevel = layer.portLevelSettings?.find((settings) => settings.port?.number === port);
    for (const key of policyKeys) {
      const value = portLevel?.[key] ?? layer[key];
      if (value !== undefined) Object.assign(merged, { [key]: value });
    }
  }
  return merged;
}

/** Cluster fields for the policy; `defaultLb` is what the proxy uses when the rule says nothing. */
export function clusterPolicyFields(policy: PolicyFields, target: ProxyKind): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  const hash = policy.loadBalancer?.consistentHash;
  if (hash) {
    if (hash.maglev && target !== 'grpc') {
      fields['lb_policy'] = 'MAGLEV';
      if (hash.maglev.tableSize) fields['maglev_lb_config'] = { table_size: { value: hash.maglev.tableSize } };
    } else {
      fields['lb_policy'] = 'RING_HASH';
      const minimum = hash.ringHash?.minimumRingSize ?? hash.minimumRingSize;
      // Istio's default ring is 1024 entries; gRPC's own default is the same.
      fields['ring_hash_lb_config'] = { minimum_ring_size: { value: minimum ?? 1024 } };
    }
  } else {
    fields['lb_policy'] = lbPolicy(policy.loadBalancer?.simple, target);
  }

  const pool = policy.connectionPool;
  if (pool?.tcp?.connectTimeout) fields['connect_timeout'] = protoDuration(pool.tcp.connectTimeout);
  const thresholds: Record<string, unknown> = {};
  // gRPC reads only max_requests; Envoy reads them all.
  if (pool?.http?.http2MaxRequests !== undefined) thresholds['max_requests'] = { value: pool.http.http2MaxRequests };
  if (target !== 'grpc') {
    if (pool?.tcp?.maxConnections !== undefined) thresholds['max_connections'] = { value: pool.tcp.maxConnections };
    if (pool?.http?.http1MaxPendingRequests !== undefined)
      thresholds['max_pending_requests'] = { value: pool.http.http1MaxPendingRequests };
    if (pool?.http?.maxRetries !== undefined) thresholds['max_retries'] = { value: pool.http.maxRetries };
  }
  if (Object.keys(thresholds).length > 0) fields['circuit_breakers'] = { thresholds: [{ priority: 'DEFAULT', ...thresholds }] };

  const outlier = policy.outlierDetection;
  if (!outlier && target === 'grpc') {
    // Always present for gRPC, with ejection off: grpc-js-xds (1.14) compares a cluster
    // update only over the keys the cached one had, so outlier detection added later to
    // a cluster that had none would go unnoticed.
    fields['outlier_detection'] = { enforcing_success_rate: { value: 0 }, enforcing_failure_percentage: { value: 0 } };
  }
  if (outlier) {
    fields['outlier_detection'] = outlierDetection(outlier, target);
    if (target !== 'grpc' && outlier.minHealthPercent !== undefined) {
      fields['common_lb_config'] = { healthy_panic_threshold: { value: outlier.minHealthPercent } };
    }
  }
  return fields;
}

function lbPolicy(simple: string | undefined, target: ProxyKind): string {
  // gRPC balances with round robin or ring hash only.
  if (target === 'grpc') return 'ROUND_ROBIN';
  switch (simple) {
    case 'ROUND_ROBIN':
      return 'ROUND_ROBIN';
    case 'RANDOM':
      return 'RANDOM';
    case 'PASSTHROUGH':
      return 'CLUSTER_PROVIDED';
    default:
      // LEAST_REQUEST, LEAST_CONN and unset: Istio's default.
      return 'LEAST_REQUEST';
  }
}

function outlierDetection(outlier: NonNullable<PolicyFields['outlierDetection']>, target: ProxyKind): Record<string, unknown> {
  const interval = outlier.interval ? protoDuration(outlier.interval) : { seconds: 10 };
  const common = {
    interval,
    base_ejection_time: outlier.baseEjectionTime ? protoDuration(outlier.baseEjectionTime) : { seconds: 30 },
    max_ejection_percent: { value: outlier.maxEjectionPercent ?? 10 },
    // Envoy and gRPC would otherwise also eject by success rate, which Istio leaves off.
    enforcing_success_rate: { value: 0 },
  };
  const consecutive5xx = outlier.consecutive5xxErrors ?? outlier.consecutiveErrors;
  if (target === 'grpc') {
    // gRPC has no consecutive-error ejection (gRFC A50): a host is ejected when at least
    // that many calls in an interval were made to it and half or more of them failed.
    const volume = consecutive5xx ?? outlier.consecutiveGatewayErrors ?? 5;
    return {
      ...common,
      failure_percentage_threshold: { value: 50 },
      enforcing_failure_percentage: { value: volume > 0 ? 100 : 0 },
      failure_percentage_minimum_hosts: { value: 1 },
      failure_percentage_request_volume: { value: Math.max(volume, 1) },
    };
  }
  const fields: Record<string, unknown> = { ...common };
  if (consecutive5xx !== undefined) {
    fields['consecutive_5xx'] = { value: consecutive5xx };
    fields['enforcing_consecutive_5xx'] = { value: consecutive5xx > 0 ? 100 : 0 };
  } else {
    fields['enforcing_consecutive_5xx'] = { value: 0 };
  }
  if (outlier.consecutiveGatewayErrors !== undefined) {
    fields['consecutive_gateway_failure'] = { value: outlier.consecutiveGatewayErrors };
    fields['enforcing_consecutive_gateway_failure'] = { value: outlier.consecutiveGatewayErrors > 0 ? 100 : 0 };
  }
  return fields;
}

/** Route hash policies for a consistent-hash DestinationRule. */
export function hashPolicies(policy: PolicyFields, target: ProxyKind): Array<Record<string, unknown>> {
  const hash = policy.loadBalancer?.consistentHash;
  if (!hash) return [];
  if (hash.httpHeaderName) return [{ header: { header_name: hash.httpHeaderName } }];
  if (target === 'grpc') {
    // gRPC hashes on headers or on the channel (gRFC A42); the channel is the closest to a source IP.
    return hash.useSourceIp ? [{ filter_state: { key: 'io.grpc.channel_id' } }] : [];
  }
  if (hash.httpCookie) {
    return [
      {
        cookie: {
          name: hash.httpCookie.name,
          ...(hash.httpCookie.path ? { path: hash.httpCookie.path } : {}),
          ...(hash.httpCookie.ttl ? cookieTtl(hash.httpCookie.ttl) : {}),
        },
      },
    ];
  }
  if (hash.useSourceIp) return [{ connection_properties: { source_ip: true } }];
  if (hash.httpQueryParameterName) return [{ query_parameter: { name: hash.httpQueryParameterName } }];
  return [];
}

/** The subsets a rule defines, with the endpoint labels each selects. */
export const subsetLabels = (subset: Subset): Record<string, string> => (subset.labels ?? {}) as Record<string, string>;

/** A cookie TTL Envoy can use; one that is not a duration is left out (a session cookie) rather than failing the cluster. */
function cookieTtl(ttl: string): { ttl?: { seconds: number; nanos?: number } } {
  try {
    return { ttl: protoDuration(ttl) };
  } catch {
    return {};
  }
}
