// `weft control-plane` (weftd): hosts the CA, the injection webhook and the xDS
// server in one process, as istiod does. Today it serves health and metrics; each
// component joins here as its issue lands.
import type { Command } from 'commander';
import { ports } from '../api/labels.js';
import { componentLogger } from '../lib/logger.js';
import { startMonitoringServer } from '../lib/monitoring.js';
import { weftVersion } from '../lib/version.js';

export function registerControlPlaneCommand(program: Command): void {
  program
    .command('control-plane')
    .description('run weftd: CA, sidecar injector and xDS server (health and metrics only so far)')
    .option('--monitoring-port <port>', 'port for /metrics, /healthz and /ready', String(ports.monitoring))
    .action(async (options: { monitoringPort: string }) => {
      const log = componentLogger('control-plane');
      const server = await startMonitoringServer(process.env['POD_IP'] ?? '0.0.0.0', Number(options.monitoringPort), () => true);
      log.info(
        { version: weftVersion, installation: process.env['WEFT_INSTALLATION'], monitoringPort: Number(options.monitoringPort) },
        'weftd started',
      );
      const stop = (): void => {
        log.info('shutting down');
        server.close(() => process.exit(0));
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
}
