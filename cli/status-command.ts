// `weft status`: each MeshInstallation's conditions and its components' health.
import type { Command } from 'commander';
import { connect, outputOption, print, withConnectionOptions } from './command-options.js';
import type { ConnectionOptions } from './cluster-connection.js';
import { renderStatus, statusData } from './installation-status.js';
import { readMeshHealth } from './mesh-health-reader.js';
import { renderStructured } from './output-format.js';

export function registerStatusCommand(program: Command): void {
  withConnectionOptions(program.command('status'))
    .description(
      "the mesh's health: MeshInstallation conditions, the operator's and weftd's Deployments, each weftd's /ready, each gateway's replicas",
    )
    .addOption(outputOption())
    .action(async (options: ConnectionOptions & { output: 'table' | 'json' | 'yaml' }) => {
      const health = await readMeshHealth(connect(options));
      print(options.output === 'table' ? renderStatus(health) : renderStructured(statusData(health), options.output));
    });
}
