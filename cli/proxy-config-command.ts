// `weft proxy-config <kind> <pod[.namespace]>`: what weftd sent one proxy, as tables or raw.
import { Argument, type Command } from 'commander';
import { connect, namespaceOption, outputOption, print, warn, withConnectionOptions } from './command-options.js';
import type { ConnectionOptions } from './cluster-connection.js';
import { expandConfigDump } from './config-dump.js';
import { findControlPlanes } from './control-plane-locator.js';
import { renderStructured } from './output-format.js';
import {
  proxyConfigData,
  proxyConfigKinds,
  proxyConfigTable,
  typeUrlOf,
  type ProxyConfigKind,
  type ResourceKind,
} from './proxy-config-tables.js';
import { selectProxy } from './proxy-selector.js';
import { maskPrivateKeys } from './secret-masking.js';
import { renderTable } from './table.js';
import { readConfigDump, readSyncz } from './weftd-debug-client.js';

interface ProxyConfigOptions extends ConnectionOptions {
  output: 'table' | 'json' | 'yaml';
  namespace?: string;
}

export function registerProxyConfigCommand(program: Command): void {
  withConnectionOptions(program.command('proxy-config'))
    .description('the xDS configuration weftd sent one proxy (private keys masked), like istioctl proxy-config')
    .addArgument(new Argument('<kind>', 'what to show').choices([...proxyConfigKinds]))
    .argument('<pod>', 'the proxy, as pod[.namespace] or its node id')
    .addOption(outputOption())
    .addOption(namespaceOption())
    .action(async (kind: ProxyConfigKind, pod: string, options: ProxyConfigOptions) => {
      const connection = connect(options);
      const { proxies, warnings } = await readSyncz(connection, await findControlPlanes(connection));
      warnings.forEach(warn);
      const proxy = selectProxy(proxies, pod, options.namespace ?? connection.defaultNamespace);
      const dump = maskPrivateKeys(expandConfigDump(await readConfigDump(connection, proxy)));
      if (options.output !== 'table') {
        print(renderStructured(proxyConfigData(dump, kind), options.output));
        return;
      }
      const kinds: ResourceKind[] =
        kind === 'all'
          ? (['clusters', 'listeners', 'routes', 'endpoints', 'secrets'] as const).filter((k) =>
              dump.configs.some((c) => c.typeUrl === typeUrlOf[k]),
            )
          : [kind];
      const sections = kinds.map((k) => renderTable(proxyConfigTable(dump, k, new Date())));
      if (kind !== 'all' && !dump.configs.some((c) => c.typeUrl === typeUrlOf[kind])) {
        process.stderr.write(`${pod} does not subscribe to ${kind} from weftd\n`);
      }
      print(sections.join('\n'));
    });
}
