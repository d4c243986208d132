import { join } from 'node:path';
import { stringify } from 'yaml';
import { typeUrls } from '../xds/protos.js';
import { expectMatchesGolden } from '../testing/jest/golden.js';
import { CliError } from './cli-error.js';
import { selectProxy } from './proxy-selector.js';
import { proxyStatusData, proxyStatusDetail, proxyStatusTable, renderSummary, syncState, type ConnectedProxy } from './sync-status.js';
import { renderTable } from './table.js';

const testdata = join(import.meta.dirname, 'testdata');
const weftd = { name: 'weftd-7d9f-abcde', namespace: 'weft-system', installation: 'default', version: '0.1.0' };
const acked = (typeUrl: string, version = '3') => ({
  typeUrl,
  subscribed: 'wildcard' as const,
  versionSent: version,
  nonceSent: '4',
  versionAcked: version,
  state: 'acked' as const,
});

// /debug/syncz rows as weftd serves them (from two weftd pods).
const proxies: ConnectedProxy[] = [
  {
    streamId: 1,
    nodeId: 'sidecar~10.244.1.7~reviews-v1-abc.bookinfo~bookinfo.svc.cluster.local',
    pod: { name: 'reviews-v1-abc', namespace: 'bookinfo', ip: '10.244.1.7' },
    connectedAt: '2026-11-25T10:00:00.000Z',
    types: [
      acked(typeUrls.cluster),
      acked(typeUrls.listener),
      { ...acked(typeUrls.endpoint), subscribed: ['outbound|9080||ratings.bookinfo.svc.cluster.local'] },
      { ...acked(typeUrls.route), subscribed: ['9080'] },
    ],
    weftd,
  },
  {
    streamId: 2,
    nodeId: 'sidecar~10.244.9.9~client-1.traffic~traffic.svc.cluster.local',
    pod: { name: 'client-1', namespace: 'traffic', ip: '10.244.9.9' },
    connectedAt: '2026-11-25T10:01:00.000Z',
    types: [
      {
        typeUrl: typeUrls.listener,
        subscribed: ['echo.traffic.svc.cluster.local:8080'],
        versionSent: '5',
        nonceSent: '1',
        versionAcked: '5',
        state: 'acked',
      },
      { typeUrl: typeUrls.route, subscribed: ['echo.traffic.svc.cluster.local:8080'], versionSent: '5', nonceSent: '2', state: 'pending' },
      { typeUrl: typeUrls.cluster, subscribed: ['outbound|8080||echo.traffic.svc.cluster.local'], state: 'pending' },
    ],
    weftd: { ...weftd, name: 'weftd-7d9f-fghij' },
  },
  {
    streamId: 3,
    nodeId: 'sidecar~10.244.9.11~nacker.traffic~traffic.svc.cluster.local',
    pod: { name: 'nacker', namespace: 'traffic', ip: '10.244.9.11' },
    connectedAt: '2026-11-25T10:02:00.000Z',
    types: [
      {
        typeUrl: typeUrls.cluster,
        subscribed: 'wildcard',
        versionSent: '7',
        nonceSent: '1',
        state: 'nacked',
        lastNackError: 'cluster rejected by test',
      },
      {
        typeUrl: 'type.googleapis.com/istio.networking.nds.v1.NameTable',
        subscribed: 'wildcard',
        versionSent: '',
        nonceSent: '2',
        versionAcked: '',
        state: 'acked',
      },
    ],
    weftd,
  },
  { streamId: 4, nodeId: 'not-istio-form', connectedAt: '2026-11-25T10:03:00.000Z', types: [], weftd },
];

describe('proxy-status', () => {
  it('says SYNCED, STALE, NOT SENT or NACK per type', () => {
    expect(syncState(undefined)).toBe('NOT SENT');
    expect(syncState({ typeUrl: typeUrls.cluster, subscribed: 'wildcard', state: 'pending' })).toBe('NOT SENT');
    expect(syncState({ typeUrl: typeUrls.cluster, subscribed: 'wildcard', versionSent: '1', nonceSent: '1', state: 'pending' })).toBe(
      'STALE',
    );
    expect(syncState(acked(typeUrls.cluster))).toBe('SYNCED');
    expect(syncState({ ...acked(typeUrls.cluster), state: 'nacked' })).toBe('NACK');
  });

  it('renders the table like istioctl proxy-status', () => {
    expectMatchesGolden(join(testdata, 'proxy-status.txt'), renderTable(proxyStatusTable(proxies)));
  });

  it('adds a SECRET column only when some proxy gets secrets from weftd', () => {
    expect(proxyStatusTable(proxies).headers).not.toContain('SECRET');
    const withSecret = [{ ...proxies[0]!, types: [...proxies[0]!.types, acked(typeUrls.secret)] }];
    expect(proxyStatusTable(withSecret).headers).toContain('SECRET');
  });

  it('shows one proxy in detail, with the NACK error', () => {
    const detail = proxyStatusDetail(selectProxy(proxies, 'nacker.traffic', 'default'));
    expectMatchesGolden(join(testdata, 'proxy-status-detail.txt'), `${renderSummary(detail.summary)}\n${renderTable(detail.types)}`);
  });

  it('gives scripts the states and the errors (-o json|yaml)', () => {
    expectMatchesGolden(join(testdata, 'proxy-status.yaml'), stringify(proxyStatusData(proxies)));
  });

  it('finds a proxy by pod.namespace, by pod in the default namespace, or by node id; says which exist when none match', () => {
    expect(selectProxy(proxies, 'client-1.traffic', 'default').streamId).toBe(2);
    expect(selectProxy(proxies, 'client-1', 'traffic').streamId).toBe(2);
    expect(selectProxy(proxies, 'not-istio-form', 'default').streamId).toBe(4);
    expect(() => selectProxy(proxies, 'client-1', 'default')).toThrow(
      new CliError('no proxy client-1.default is connected to weftd; did you mean client-1.traffic?'),
    );
    expect(() => selectProxy(proxies, 'ghost.x', 'default')).toThrow(
      /no proxy ghost.x is connected to weftd; connected proxies: client-1.traffic, nacker.traffic/,
    );
  });

  it('picks the newest stream of a pod that reconnected', () => {
    const again = { ...proxies[1]!, streamId: 9, connectedAt: '2026-11-25T11:00:00.000Z' };
    expect(selectProxy([proxies[1]!, again], 'client-1.traffic', 'default').streamId).toBe(9);
  });
});
