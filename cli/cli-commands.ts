// The user-facing commands that talk to a cluster: kubectl-style, also run as `kubectl weft`.
import type { Command } from 'commander';
import { registerAnalyzeCommand } from './analyze-command.js';
import { registerCompletionCommand } from './completion-command.js';
import { registerDashboardCommand } from './dashboard-command.js';
import { registerInstallCommand } from './install-command.js';
import { registerProxyConfigCommand } from './proxy-config-command.js';
import { registerProxyStatusCommand } from './proxy-status-command.js';
import { registerStatusCommand } from './status-command.js';

export function registerCliCommands(program: Command): void {
  registerInstallCommand(program);
  registerStatusCommand(program);
  registerProxyStatusCommand(program);
  registerProxyConfigCommand(program);
  registerAnalyzeCommand(program);
  registerDashboardCommand(program);
  registerCompletionCommand(program);
}
