#!/usr/bin/env node
// The one executable. Subcommands are added by each capability's composition root.
import { Command } from 'commander';
import { registerCliCommands } from '../cli/cli-commands.js';
import { registerControlPlaneCommand } from './control-plane-command.js';
import { registerDevCommands } from './dev-commands.js';
import { registerInjectCommand } from './inject-command.js';
import { registerManifestsCommand } from './manifests-command.js';
import { registerOperatorCommand } from './operator-command.js';
import { weftVersion } from '../lib/version.js';

const program = new Command();
program.name('weft').description("Weft: a service mesh for Kubernetes that speaks Istio's APIs").version(weftVersion);
registerOperatorCommand(program);
registerControlPlaneCommand(program);
registerManifestsCommand(program);
registerInjectCommand(program);
registerDevCommands(program);
registerCliCommands(program);

program.parseAsync(process.argv).catch((error: unknown) => {
  process.stderr.write(`weft: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
