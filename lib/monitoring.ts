// One Prometheus registry per process, and the HTTP endpoint that serves it with
// /healthz (alive) and /ready (able to do its job).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { isLogLevel, levelNames, runtimeLogLevels, type LogLevels } from './logger.js';
import { readinessBody, type ReadinessReport } from './readiness.js';

export const registry = new Registry();
collectDefaultMetrics({ register: registry });

export const reconcileTotal = new Counter({
  name: 'weft_operator_reconcile_total',
  help: 'MeshInstallation reconciles, by result',
  labelNames: ['result'] as const,
  registers: [registry],
});

export const reconcileDuration = new Histogram({
  name: 'weft_operator_reconcile_duration_seconds',
  help: 'Time to reconcile one MeshInstallation',
  buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [registry],
});

/** A debug request that cannot be answered as asked (answered with its status and message). */
export class DebugRequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export type DebugHandler = (query: URLSearchParams, method: string) => unknown;

/**
 * `/debug/loglevel`: GET lists the components and their levels; PUT or POST with
 * `level=` (and `component=`, else every component) changes them at run time.
 */
export function logLevelEndpoint(levels: LogLevels = runtimeLogLevels): DebugHandler {
  return (query, method) => {
    if (method === 'PUT' || method === 'POST') {
      const level = query.get('level') ?? '';
      if (!isLogLevel(level)) throw new DebugRequestError(400, `level must be one of ${levelNames.join(', ')}`);
      levels.setLevel(query.get('component') ?? undefined, level);
    } else if (method !== 'GET') {
      throw new DebugRequestError(405, 'use GET, or PUT with component= and level=');
    }
    const component = query.get('component');
    return component ? { [component]: levels.levelOf(component) } : levels.list();
  };
}

/**
 * Serves /metrics, /healthz, /ready, /debug/loglevel and any JSON debug endpoints given (such as /debug/syncz).
 * `isReady` is a plain flag (the operator: leadership) or a report naming what is missing (weftd's
 * `ReadinessGate`): /ready answers 200 `ready`, or 503 with `not ready` and one line per missing requirement.
 */
export async function startMonitoringServer(
  host: string,
  port: number,
  isReady: () => boolean | ReadinessReport,
  debug: Record<string, DebugHandler> = {},
  /** Other pages (weftd's dashboard): answers and returns true for the paths it owns. */
  routes?: (req: IncomingMessage, res: ServerResponse) => boolean,
): Promise<Server> {
  const handlers: Record<string, DebugHandler> = { '/debug/loglevel': logLevelEndpoint(), ...debug };
  const server = createServer((req, res) => {
    if (routes?.(req, res)) return;
    const url = new URL(req.url ?? '/', 'http://weft.local');
    const debugHandler = handlers[url.pathname];
    if (debugHandler) {
      res.setHeader('content-type', 'application/json');
      try {
        res.end(JSON.stringify(debugHandler(url.searchParams, req.method ?? 'GET'), null, 2));
      } catch (error) {
        res.statusCode = error instanceof DebugRequestError ? error.status : 500;
        res.end(JSON.stringify({ error: error instanceof Error ? error.message : String(error) }));
      }
    } else if (req.url === '/metrics') {
      registry.metrics().then(
        (body) => {
          res.setHeader('content-type', registry.contentType);
          res.end(body);
        },
        () => {
          res.statusCode = 500;
          res.end();
        },
      );
    } else if (req.url === '/healthz') {
      res.end('ok');
    } else if (req.url === '/ready') {
      const answer = isReady();
      const report = typeof answer === 'boolean' ? { ready: answer, missing: [] } : answer;
      res.statusCode = report.ready ? 200 : 503;
      res.setHeader('content-type', 'text/plain; charset=utf-8');
      res.end(readinessBody(report));
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  return server;
}

// CA metrics, named as Istio's where they mean the same.
export const csrCount = new Counter({
  name: 'citadel_server_csr_count',
  help: 'Certificate signing requests received',
  registers: [registry],
});
export const certificatesIssued = new Counter({
  name: 'citadel_server_success_cert_issuance_count',
  help: 'Workload certificates issued',
  registers: [registry],
});
export const csrRefused = new Counter({
  name: 'weft_ca_csr_refused_total',
  help: 'Certificate signing requests refused, by reason',
  labelNames: ['reason'] as const,
  registers: [registry],
});
export const signingDuration = new Histogram({
  name: 'weft_ca_signing_duration_seconds',
  help: 'Time to verify a CSR and sign its certificate',
  buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
  registers: [registry],
});
export const rootCertExpiry = new Gauge({
  name: 'citadel_server_root_cert_expiry_timestamp',
  help: 'Unix time at which the signing root (or plugged intermediate) expires',
  registers: [registry],
});

// Webhook metrics, named as Istio's injector's and validator's.
export const injectionRequests = new Counter({
  name: 'sidecar_injection_requests_total',
  help: 'Sidecar injection requests',
  registers: [registry],
});
export const injectionSuccess = new Counter({
  name: 'sidecar_injection_success_total',
  help: 'Pods injected',
  registers: [registry],
});
export const injectionSkip = new Counter({
  name: 'sidecar_injection_skip_total',
  help: 'Injection requests that injected nothing (not selected, opted out, not a pod creation)',
  registers: [registry],
});
export const injectionFailure = new Counter({
  name: 'sidecar_injection_failure_total',
  help: 'Injection requests refused as malformed',
  registers: [registry],
});
export const validationPassed = new Counter({
  name: 'galley_validation_passed',
  help: 'Istio objects admitted by the validating webhook',
  labelNames: ['group', 'version', 'resource'] as const,
  registers: [registry],
});
export const validationFailed = new Counter({
  name: 'galley_validation_failed',
  help: 'Istio objects refused by the validating webhook, by reason',
  labelNames: ['group', 'version', 'resource', 'reason'] as const,
  registers: [registry],
});

// xDS metrics, named as Istio's.
export const xdsPushes = new Counter({
  name: 'pilot_xds_pushes',
  help: 'xDS responses sent, by type',
  labelNames: ['type'] as const,
  registers: [registry],
});
export const xdsRejects = new Counter({
  name: 'pilot_total_xds_rejects',
  help: 'xDS responses NACKed by proxies, by type',
  labelNames: ['type'] as const,
  registers: [registry],
});
export const xdsConnected = new Gauge({ name: 'pilot_xds', help: 'Connected xDS streams', registers: [registry] });
export const sdsCertificateErrors = new Counter({
  name: 'pilot_sds_certificate_errors_total',
  help: 'SDS secrets not served: names that do not parse, Secrets missing, malformed or not authorized',
  registers: [registry],
});
export const xdsConfigSize = new Histogram({
  name: 'pilot_xds_config_size_bytes',
  help: 'Size of xDS responses, by type',
  labelNames: ['type'] as const,
  buckets: [256, 1024, 8192, 65_536, 524_288, 4_194_304],
  registers: [registry],
});
export const proxyConvergence = new Histogram({
  name: 'pilot_proxy_convergence_time',
  help: 'Seconds from sending an xDS response to the proxy ACKing it',
  buckets: [0.001, 0.01, 0.1, 0.5, 1, 3, 5, 10, 20, 30],
  registers: [registry],
});
