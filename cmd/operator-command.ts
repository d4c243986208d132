// `weft operator`: composition root of the operator.
import { hostname } from 'node:os';
import type { Command } from 'commander';
import { loadKubeConfig } from '../kube/client.js';
import { LeaderElector } from '../kube/leader-election.js';
import { componentLogger } from '../lib/logger.js';
import { startMonitoringServer } from '../lib/monitoring.js';
import { exporterEnv, startTracing } from '../lib/tracing.js';
import { weftVersion } from '../lib/version.js';
import { InstallationReconciler } from '../operator/reconciler.js';
import { WeftOperator } from '../operator/weft-operator.js';

interface OperatorOptions {
  monitoringPort: string;
  resyncSeconds: string;
  leaseNamespace: string;
}

async function runOperator(options: OperatorOptions): Promise<void> {
  const log = componentLogger('operator');
  // One OTLP trace per reconcile, when OTEL_EXPORTER_OTLP_ENDPOINT is set.
  const tracing = startTracing('weft-operator');
  const config = loadKubeConfig();
  const identity = process.env['POD_NAME'] ?? `${hostname()}-${process.pid}`;
  const elector = new LeaderElector(
    config,
    { namespace: options.leaseNamespace, name: 'weft-operator-leader', identity },
    log.child({ component: 'leader-election' }),
  );
  const operator = new WeftOperator(config, new InstallationReconciler(config, weftVersion, log, exporterEnv()), log, {
    resyncSeconds: Number(options.resyncSeconds),
  });
  const monitoring = await startMonitoringServer(
    process.env['POD_IP'] ?? '0.0.0.0',
    Number(options.monitoringPort),
    () => elector.isLeader,
  );
  log.info({ version: weftVersion, identity, monitoringPort: Number(options.monitoringPort) }, 'operator starting; waiting for leadership');

  let shuttingDown = false;
  const shutdown = async (code: number): Promise<void> => {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info('shutting down');
    await operator.shutdown();
    await elector.stop();
    monitoring.close();
    await tracing.shutdown().catch(() => undefined);
    process.exit(code);
  };
  process.once('SIGTERM', () => void shutdown(0));
  process.once('SIGINT', () => void shutdown(0));
  elector.start(
    () => {
      // Won while shutting down (the elector renews until the operator is idle): shutdown's stop() hands it back.
      if (shuttingDown) return;
      operator.start().catch((error: unknown) => {
        log.error({ error: error instanceof Error ? error.message : String(error) }, 'operator failed to start');
        void shutdown(1);
      });
    },
    // Crash-only: a replica that lost the lease exits and restarts as a standby.
    () => void shutdown(1),
  );
}

export function registerOperatorCommand(program: Command): void {
  program
    .command('operator')
    .description('reconcile MeshInstallations into running control planes')
    .option('--monitoring-port <port>', 'port for /metrics, /healthz and /ready', '15014')
    .option('--resync-seconds <s>', 'reconcile every installation at least this often', '60')
    .option('--lease-namespace <ns>', 'namespace of the leader-election Lease', process.env['POD_NAMESPACE'] ?? 'weft-operator')
    .action(async (options: OperatorOptions) => runOperator(options));
}
