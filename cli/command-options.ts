// Flags every cluster-facing command shares, spelled as kubectl spells them.
import { Option, type Command } from 'commander';
import { ClusterConnection, type ConnectionOptions } from './cluster-connection.js';
import { outputFormats } from './output-format.js';

export function withConnectionOptions(command: Command): Command {
  return command
    .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)')
    .option('--context <name>', 'kubeconfig context (default: the current context)');
}

export function outputOption(formats: readonly string[] = outputFormats): Option {
  return new Option('-o, --output <format>', 'output format').choices([...formats]).default('table');
}

export function namespaceOption(): Option {
  return new Option('-n, --namespace <namespace>', "namespace of a pod given without one (default: the context's)");
}

export const connect = (options: ConnectionOptions): ClusterConnection =>
  ClusterConnection.open({
    ...(options.kubeconfig ? { kubeconfig: options.kubeconfig } : {}),
    ...(options.context ? { context: options.context } : {}),
  });

export const print = (text: string): void => void process.stdout.write(text);
export const warn = (text: string): void => void process.stderr.write(`weft: warning: ${text}\n`);
