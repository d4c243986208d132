// `weft proxy-status`, pure: weftd's /debug/syncz rows (one per proxy stream)
// into istioctl-style states per xDS type.
import { typeUrls } from '../xds/protos.js';
import type { ProxySyncStatus, TypeSyncStatus } from '../xds/server/discovery-types.js';
import type { WeftdPod } from './control-plane-locator.js';
import { orDash, type Table } from './table.js';

/** One proxy stream, with the weftd pod that serves it. */
export type ConnectedProxy = ProxySyncStatus & { weftd: WeftdPod };

/** SYNCED: the last response was ACKed; STALE: sent, not ACKed yet; NACK: rejected; NOT SENT: nothing sent. */
export type SyncState = 'SYNCED' | 'STALE' | 'NOT SENT' | 'NACK';

export const xdsColumns = [
  ['CDS', typeUrls.cluster],
  ['LDS', typeUrls.listener],
  ['EDS', typeUrls.endpoint],
  ['RDS', typeUrls.route],
  ['SECRET', typeUrls.secret],
] as const;

export function syncState(type: TypeSyncStatus | undefined): SyncState {
  if (!type || type.versionSent === undefined || type.nonceSent === undefined) return 'NOT SENT';
  if (type.state === 'nacked') return 'NACK';
  if (type.state === 'acked') return 'SYNCED';
  return 'STALE';
}

export const proxyName = (proxy: ProxySyncStatus): string => (proxy.pod ? `${proxy.pod.name}.${proxy.pod.namespace}` : proxy.nodeId);

const shortType = (typeUrl: string) =>
  xdsColumns.find(([, url]) => url === typeUrl)?.[0] ?? typeUrl.replace(/^type\.googleapis\.com\//, '');

function byName(a: ConnectedProxy, b: ConnectedProxy): number {
  return (
    (a.pod?.namespace ?? '').localeCompare(b.pod?.namespace ?? '') ||
    (a.pod?.name ?? a.nodeId).localeCompare(b.pod?.name ?? b.nodeId) ||
    a.connectedAt.localeCompare(b.connectedAt)
  );
}

/** The proxy-status table; SECRET shows only when some proxy gets secrets from weftd. */
export function proxyStatusTable(proxies: ConnectedProxy[]): Table {
  const withSecrets = proxies.some((proxy) => proxy.types.some((t) => t.typeUrl === typeUrls.secret));
  const columns = xdsColumns.filter(([name]) => name !== 'SECRET' || withSecrets);
  return {
    headers: ['NAME', 'NAMESPACE', ...columns.map(([name]) => name), 'WEFTD', 'VERSION'],
    rows: [...proxies]
      .sort(byName)
      .map((proxy) => [
        proxy.pod?.name ?? proxy.nodeId,
        orDash(proxy.pod?.namespace),
        ...columns.map(([, typeUrl]) => syncState(proxy.types.find((t) => t.typeUrl === typeUrl))),
        proxy.weftd.name,
        orDash(proxy.weftd.version),
      ]),
  };
}

/** `-o json|yaml`: syncz as weftd reports it, plus the state per type and where the proxy is connected. */
export function proxyStatusData(proxies: ConnectedProxy[]): object[] {
  return [...proxies].sort(byName).map((proxy) => ({
    name: proxyName(proxy),
    nodeId: proxy.nodeId,
    ...(proxy.pod ? { pod: proxy.pod } : {}),
    weftd: proxy.weftd,
    connectedAt: proxy.connectedAt,
    sync: Object.fromEntries(xdsColumns.map(([name, typeUrl]) => [name, syncState(proxy.types.find((t) => t.typeUrl === typeUrl))])),
    types: proxy.types.map((type) => ({ type: shortType(type.typeUrl), status: syncState(type), ...type })),
  }));
}

/** One proxy in detail: every type it subscribes to, its versions, and a NACK's error. */
export function proxyStatusDetail(proxy: ConnectedProxy): { summary: Array<[string, string]>; types: Table } {
  const subscribed = (t: TypeSyncStatus) =>
    t.subscribed === 'wildcard' ? '*' : t.subscribed.length <= 2 ? t.subscribed.join(', ') || '-' : `${t.subscribed.length} names`;
  return {
    summary: [
      ['Proxy', proxyName(proxy)],
      ['Node ID', proxy.nodeId],
      ...(proxy.pod ? ([['Pod IP', proxy.pod.ip]] as Array<[string, string]>) : []),
      [
        'Connected',
        `${proxy.connectedAt} to ${proxy.weftd.namespace}/${proxy.weftd.name}${proxy.weftd.version ? ` (weftd ${proxy.weftd.version})` : ''}`,
      ],
    ],
    types: {
      headers: ['TYPE', 'STATUS', 'VERSION SENT', 'VERSION ACKED', 'SUBSCRIBED', 'ERROR'],
      rows: proxy.types.map((t) => [
        shortType(t.typeUrl),
        syncState(t),
        orDash(t.versionSent),
        orDash(t.versionAcked),
        subscribed(t),
        t.state === 'nacked' ? orDash(t.lastNackError) : '-',
      ]),
    },
  };
}

export function renderSummary(summary: Array<[string, string]>): string {
  const width = Math.max(...summary.map(([key]) => key.length)) + 2;
  return summary.map(([key, value]) => `${`${key}:`.padEnd(width)}${value}\n`).join('');
}
