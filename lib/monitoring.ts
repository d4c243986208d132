// One Prometheus registry per process, and the HTTP endpoint that serves it with
// /healthz (alive) and /ready (able to do its job).
import { createServer, type Server } from 'node:http';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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

export async function startMonitoringServer(host: string, port: number, isReady: () => boolean): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url === '/metrics') {
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
      const ready = isReady();
      res.statusCode = ready ? 200 : 503;
      res.end(ready ? 'ready' : 'not ready');
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
