// The `Reconciled` condition across weftd replicas: which replica writes it, how counts add up
// (a peer missing, a peer at an older generation, a peer's NACK), and a writer fetching a peer's
// counts from its real monitoring endpoint.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startMonitoringServer } from '../../lib/monitoring.js';
import type { DiscoveryNode } from '../server/discovery-types.js';
import { emptyIstioConfig, type ConfigObject } from './istio-config.js';
import type { MeshModel } from './mesh-model.js';
import { conditionWriter, parsePropagationReport, ReplicatedPropagation, summedCondition } from './propagation-replicas.js';
import { Propagation } from './propagation.js';

const routeNack = 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration';

describe('conditionWriter', () => {
  it('picks the lowest address by number, whatever the order the endpoints come in', () => {
    expect(conditionWriter(['10.0.0.10', '10.0.0.9', '10.0.1.1'])).toBe('10.0.0.9');
    expect(conditionWriter(['10.0.1.1', '10.0.0.10'])).toBe('10.0.0.10');
    expect(conditionWriter(['fd00::2', '10.0.0.3'])).toBe('10.0.0.3');
    expect(conditionWriter([])).toBeUndefined();
  });
});

describe('summedCondition', () => {
  it("sums the replicas' counts at one generation, True only when every replica's proxies are up to date", () => {
    expect(
      summedCondition(2, [
        { generation: 3, up: 2, total: 2 },
        { generation: 3, up: 1, total: 3 },
      ]),
    ).toEqual({
      type: 'Reconciled',
      status: 'False',
      reason: 'StillPropagating',
      message: '3/5 proxies up to date.',
      observedGeneration: 3,
    });
    expect(
      summedCondition(2, [
        { generation: 3, up: 2, total: 2 },
        { generation: 3, up: 3, total: 3 },
      ]).status,
    ).toBe('True');
  });

  it('says Unknown, naming how many replicas reported, when one did not: never a count missing its proxies', () => {
    expect(summedCondition(2, [{ generation: 3, up: 2, total: 2 }])).toEqual({
      type: 'Reconciled',
      status: 'Unknown',
      reason: 'NotAggregated',
      message: '1 of 2 control plane replicas reported.',
      observedGeneration: 3,
    });
  });

  it("counts the proxies of a replica still at an older generation as not up to date, and drops that replica's NACK", () => {
    const oldNack = { proxy: 'web-9.shop', typeUrl: routeNack, error: 'about generation 2' };
    expect(
      summedCondition(2, [
        { generation: 3, up: 2, total: 2 },
        { generation: 2, up: 4, total: 4, nack: oldNack },
      ]),
    ).toMatchObject({ status: 'False', reason: 'StillPropagating', message: '2/6 proxies up to date.', observedGeneration: 3 });
    // The writer itself behind a peer: the newest generation is the one counted.
    expect(
      summedCondition(2, [
        { generation: 2, up: 2, total: 2 },
        { generation: 3, up: 1, total: 1 },
      ]),
    ).toMatchObject({
      message: '1/3 proxies up to date.',
      observedGeneration: 3,
    });
  });

  it("names a NACK from a peer's proxy", () => {
    const nack = { proxy: 'web-2.shop', typeUrl: routeNack, error: 'duplicate route name' };
    expect(
      summedCondition(2, [
        { generation: 1, up: 1, total: 1 },
        { generation: 1, up: 0, total: 1, nack },
      ]),
    ).toMatchObject({
      status: 'False',
      reason: 'Rejected',
      message: '1/2 proxies up to date. Last NACK: web-2.shop rejected RouteConfiguration: duplicate route name',
    });
  });
});

describe('parsePropagationReport', () => {
  it('refuses a malformed answer naming the field', () => {
    expect(() => parsePropagationReport({})).toThrow('objects: expected an object');
    expect(() => parsePropagationReport({ objects: { 'VirtualService/shop/a': { up: 1 } } })).toThrow(
      'objects["VirtualService/shop/a"].total: expected a count',
    );
    expect(() => parsePropagationReport({ objects: { 'VirtualService/shop/a': { up: 1, total: 1, nack: { proxy: 'x' } } } })).toThrow(
      'objects["VirtualService/shop/a"].nack: expected proxy, typeUrl and error',
    );
    const good = { objects: { 'VirtualService/shop/a': { generation: 2, up: 1, total: 1 } } };
    expect(parsePropagationReport(good)).toEqual(good);
  });
});

describe('ReplicatedPropagation', () => {
  const vs = (generation: number): ConfigObject<unknown> => ({
    kind: 'VirtualService',
    namespace: 'shop',
    name: 'reviews',
    generation,
    creationTimestamp: '2026-01-01T00:00:00Z',
    spec: { hosts: ['reviews'], exportTo: ['.'], http: [{ route: [] }] },
  });
  const model = (generation: number, replicas: string[]): MeshModel => ({
    clusterDomain: 'cluster.local',
    rootNamespace: 'weft-system',
    services: [
      {
        name: 'weftd',
        namespace: 'weft-system',
        ports: [],
        endpoints: replicas.map((address) => ({ address }) as MeshModel['services'][number]['endpoints'][number]),
      } as unknown as MeshModel['services'][number],
    ],
    istio: { ...emptyIstioConfig(), virtualServices: [vs(generation) as never] },
  });
  const replicasOf = (m: MeshModel) => m.services[0]!.endpoints.map((e) => e.address);
  const node = (pod: string): DiscoveryNode => ({
    id: `sidecar~10.0.0.1~${pod}.shop~shop.svc.cluster.local`,
    metadata: { NAMESPACE: 'shop', LABELS: { app: 'web' } },
  });
  const messages = (p: ReplicatedPropagation) => p.take().map((u) => `${u.condition.status} ${u.condition.message}`);

  let peerServer: Server | undefined;
  afterEach(() => new Promise<void>((resolve) => (peerServer ? peerServer.close(() => resolve()) : resolve())));

  it("has the lowest address sum its peer's counts fetched from the peer's monitoring endpoint; Unknown when the peer is gone", async () => {
    // Two weftd replicas on two loopback addresses: the peer serves its counts as weftd does.
    const peerLocal = new Propagation();
    peerServer = await startMonitoringServer('127.0.0.2', 0, () => true, {
      '/debug/propagationz': () => ({ objects: peerLocal.counts() }),
    });
    const port = (peerServer.address() as AddressInfo).port;
    const replicas = ['127.0.0.2', '127.0.0.1'];
    const writerLocal = new Propagation();
    const writer = new ReplicatedPropagation(writerLocal, { self: '127.0.0.1', replicas: replicasOf, port, timeoutMs: 2_000 });
    const peer = new ReplicatedPropagation(peerLocal, { self: '127.0.0.2', replicas: replicasOf, port });
    writer.modelApplied(model(1, replicas));
    peer.modelApplied(model(1, replicas));
    expect([writer.currentRole, peer.currentRole]).toEqual(['writer', 'reader']);

    writerLocal.connected(1, node('web-1'));
    writerLocal.synced(1, true);
    peerLocal.connected(1, node('web-2'));
    peerLocal.connected(2, node('web-3'));
    peerLocal.synced(1, true);
    peerLocal.nacked(2, routeNack, 'duplicate route name');
    await writer.sum();
    expect(messages(writer)).toEqual([
      'False 2/3 proxies up to date. Last NACK: web-3.shop rejected RouteConfiguration: duplicate route name',
    ]);
    // The reader writes no Reconciled: the writer's stays on the object.
    expect(peer.take()).toEqual([]);
    expect(peer.condition('VirtualService', 'shop', 'reviews')).toBeUndefined();

    // Generation 2 reached the writer's proxy; the peer has not read it yet: its proxies are not up to date with it.
    writer.modelApplied(model(2, replicas));
    writerLocal.synced(1, false);
    writerLocal.synced(1, true);
    await writer.sum();
    expect(writer.take().map((u) => u.condition)).toEqual([
      expect.objectContaining({ status: 'False', message: '1/3 proxies up to date.', observedGeneration: 2 }),
    ]);
    // The peer reads it and pushes it: web-2 is pushed, web-3 ACKs at last.
    peerLocal.synced(1, false);
    peer.modelApplied(model(2, replicas));
    peerLocal.synced(2, true);
    await writer.sum();
    expect(messages(writer)).toEqual(['False 2/3 proxies up to date.']);
    peerLocal.synced(1, true);
    await writer.sum();
    expect(messages(writer)).toEqual(['True 3/3 proxies up to date.']);
    // Nothing moved: nothing to write.
    await writer.sum();
    expect(writer.take()).toEqual([]);

    // The peer stops answering: Unknown, never 1/1.
    await new Promise<void>((resolve) => peerServer!.close(() => resolve()));
    peerServer = undefined;
    await writer.sum();
    expect(writer.take().map((u) => u.condition)).toEqual([
      {
        type: 'Reconciled',
        status: 'Unknown',
        reason: 'NotAggregated',
        message: '1 of 2 control plane replicas reported.',
        observedGeneration: 2,
      },
    ]);
  });

  it('writes its own counts as they are while it is the only replica, and all of them again after being a writer', async () => {
    const local = new Propagation();
    const fetched: string[] = [];
    const p = new ReplicatedPropagation(local, {
      self: '10.0.0.1',
      replicas: replicasOf,
      fetchReport: async (address) => {
        fetched.push(address);
        return { objects: { 'VirtualService/shop/reviews': { generation: 1, up: 1, total: 1 } } };
      },
    });
    p.modelApplied(model(1, ['10.0.0.1']));
    local.connected(1, node('web-1'));
    expect(p.currentRole).toBe('alone');
    expect(messages(p)).toEqual(['False 0/1 proxies up to date.']);
    p.modelApplied(model(1, ['10.0.0.1', '10.0.0.2']));
    expect(p.currentRole).toBe('writer');
    await p.sum();
    expect(fetched).toEqual(['10.0.0.2']);
    expect(messages(p)).toEqual(['False 1/2 proxies up to date.']);
    // The peer is gone: this replica's own count is written again, though it did not move.
    p.modelApplied(model(1, ['10.0.0.1']));
    expect(messages(p)).toEqual(['False 0/1 proxies up to date.']);
    // A replica not among the endpoints (not ready yet) writes nothing.
    p.modelApplied(model(1, ['10.0.0.3']));
    expect(p.currentRole).toBe('reader');
  });
});
