// `pod[.namespace]` (or a full node id) to the one proxy stream it names. Pure.
import { CliError } from './cli-error.js';
import { proxyName, type ConnectedProxy } from './sync-status.js';

/**
 * Matches, in order: a node id, `pod.namespace`, then `pod` in `namespace` (the
 * -n flag or the context's). Of several streams for one pod, the newest wins.
 */
export function selectProxy(proxies: ConnectedProxy[], wanted: string, namespace: string): ConnectedProxy {
  const matches =
    [
      proxies.filter((p) => p.nodeId === wanted),
      proxies.filter((p) => p.pod && `${p.pod.name}.${p.pod.namespace}` === wanted),
      proxies.filter((p) => p.pod?.name === wanted && p.pod.namespace === namespace),
    ].find((found) => found.length > 0) ?? [];
  const newest = [...matches].sort((a, b) => b.connectedAt.localeCompare(a.connectedAt))[0];
  if (newest) return newest;
  const elsewhere = proxies.filter((p) => p.pod?.name === wanted).map(proxyName);
  const hint = elsewhere.length
    ? `; did you mean ${elsewhere.join(' or ')}?`
    : proxies.length
      ? `; connected proxies: ${[...new Set(proxies.map(proxyName))].sort().slice(0, 10).join(', ')}${proxies.length > 10 ? ', ...' : ''}`
      : '; no proxy is connected';
  throw new CliError(`no proxy ${wanted.includes('.') ? wanted : `${wanted}.${namespace}`} is connected to weftd${hint}`);
}
