// `weft proxy-status [pod[.namespace]]`: every proxy's xDS sync state, from each weftd's /debug/syncz.
import type { Command } from 'commander';
import { connect, namespaceOption, outputOption, print, warn, withConnectionOptions } from './command-options.js';
import type { ConnectionOptions } from './cluster-connection.js';
import { findControlPlanes } from './control-plane-locator.js';
import { renderStructured } from './output-format.js';
import { selectProxy } from './proxy-selector.js';
import { proxyName, proxyStatusData, proxyStatusDetail, proxyStatusTable, renderSummary } from './sync-status.js';
import { renderTable } from './table.js';
import { readSyncz } from './weftd-debug-client.js';

interface ProxyStatusOptions extends ConnectionOptions {
  output: 'table' | 'json' | 'yaml' | 'name';
  namespace?: string;
}

export function registerProxyStatusCommand(program: Command): void {
  withConnectionOptions(program.command('proxy-status'))
    .description("each connected proxy's xDS sync state per type (SYNCED, STALE, NOT SENT, NACK), like istioctl proxy-status")
    .argument('[pod]', 'one proxy, as pod[.namespace] or its node id: every type, its versions and NACK errors')
    .addOption(outputOption(['table', 'json', 'yaml', 'name']))
    .addOption(namespaceOption())
    .action(async (pod: string | undefined, options: ProxyStatusOptions) => {
      const connection = connect(options);
      const planes = await findControlPlanes(connection);
      const { proxies, warnings } = await readSyncz(connection, planes);
      warnings.forEach(warn);
      if (pod) {
        const proxy = selectProxy(proxies, pod, options.namespace ?? connection.defaultNamespace);
        if (options.output === 'json' || options.output === 'yaml') print(renderStructured(proxyStatusData([proxy])[0], options.output));
        else if (options.output === 'name') print(`${proxyName(proxy)}\n`);
        else {
          const detail = proxyStatusDetail(proxy);
          print(`${renderSummary(detail.summary)}\n${renderTable(detail.types)}`);
        }
        return;
      }
      if (options.output === 'json' || options.output === 'yaml') print(renderStructured(proxyStatusData(proxies), options.output));
      else if (options.output === 'name')
        print(
          [...new Set(proxies.map(proxyName))]
            .sort()
            .map((name) => `${name}\n`)
            .join(''),
        );
      else if (proxies.length === 0) {
        process.stderr.write(
          `no proxy is connected to weftd (${planes.flatMap((p) => p.pods.map((pod) => `${pod.namespace}/${pod.name}`)).join(', ')})\n`,
        );
      } else print(renderTable(proxyStatusTable(proxies)));
    });
}
