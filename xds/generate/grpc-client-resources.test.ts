import { join } from 'node:path';
import { stringify } from 'yaml';
import { expectMatchesGolden } from '../../testing/jest/golden.js';
import { SnapshotCache } from '../cache/snapshot-cache.js';
import type { MeshModel } from '../model/mesh-model.js';
import { typeUrls } from '../protos.js';
import { ProxyView } from '../traffic/proxy-view.js';
import { decodeStrictly } from '../../testing/jest/xds-decode.js';
import { grpcClientResources, grpcServerListeners } from './grpc-client-resources.js';

const model: MeshModel = {
  clusterDomain: 'cluster.local',
  services: [
    {
      name: 'reviews',
      namespace: 'bookinfo',
      ports: [
        { name: 'grpc', port: 9080, protocol: 'TCP' },
        { name: 'admin', port: 9901, protocol: 'TCP' },
      ],
      endpoints: [
        { address: '10.244.1.7', ports: { grpc: 9080, admin: 9901 } },
        { address: '10.244.0.5', ports: { grpc: 9080 } },
      ],
    },
    { name: 'ratings', namespace: 'bookinfo', ports: [{ name: '', port: 8080, protocol: 'TCP' }], endpoints: [] },
  ],
};

const viewOf = (m: MeshModel) => new ProxyView(m, { kind: 'grpc', namespace: 'bookinfo', labels: {} });

describe('proxyless gRPC resources', () => {
  const cache = new SnapshotCache();
  cache.update(grpcClientResources(viewOf(model)));
  const node = { id: 'sidecar~10.244.9.9~client.bookinfo~bookinfo.svc.cluster.local' };

  it.each(Object.entries(typeUrls).filter(([kind]) => kind !== 'secret'))(
    '%s resources decode strictly and match their golden file',
    (kind, typeUrl) => {
      const set = cache.resources(node, typeUrl, []);
      const decoded = set.resources.map((r) => decodeStrictly(typeUrl, r.resource.value));
      expectMatchesGolden(join(import.meta.dirname, 'testdata', `grpc-client-${kind}.yaml`), stringify(decoded));
    },
  );

  it('gives xDS-enabled gRPC servers an inbound listener per endpoint, served only by name, decoding strictly', () => {
    const withServers = new SnapshotCache();
    withServers.update(grpcClientResources(viewOf(model)), grpcServerListeners(model));
    const name = 'xds.istio.io/grpc/lds/inbound/10.244.1.7:9080';
    expect(withServers.resources(node, typeUrls.listener, []).resources.map((r) => r.name)).not.toContain(name);
    const named = withServers.resources(node, typeUrls.listener, [name]).resources;
    expect(named.map((r) => r.name)).toEqual([name]);
    expectMatchesGolden(
      join(import.meta.dirname, 'testdata', 'grpc-server-listener.yaml'),
      stringify(named.map((r) => decodeStrictly(typeUrls.listener, r.resource.value))),
    );
  });

  it('matches the names a channel may use, with and without the port, the bare short name only from the same namespace', () => {
    const domains = (namespace: string) => {
      const resources = grpcClientResources(new ProxyView(model, { kind: 'grpc', namespace, labels: {} }));
      const route = resources[typeUrls.route]?.['reviews.bookinfo.svc.cluster.local:9080'] as any;
      return route.virtual_hosts[0].domains as string[];
    };
    expect(domains('bookinfo')).toEqual(expect.arrayContaining(['reviews:9080', 'reviews', 'reviews.bookinfo:9080']));
    expect(domains('shop')).not.toContain('reviews:9080');
    expect(domains('shop')).toEqual([
      'reviews.bookinfo.svc.cluster.local',
      'reviews.bookinfo.svc.cluster.local:9080',
      'reviews.bookinfo.svc.cluster.local.',
      'reviews.bookinfo.svc.cluster.local.:9080',
      'reviews.bookinfo',
      'reviews.bookinfo:9080',
      'reviews.bookinfo.svc',
      'reviews.bookinfo.svc:9080',
    ]);
  });

  it('names listeners as xds:/// targets ask for them and clusters as Istio does', () => {
    expect(cache.resources(node, typeUrls.listener, []).resources.map((r) => r.name)).toEqual([
      'ratings.bookinfo.svc.cluster.local:8080',
      'reviews.bookinfo.svc.cluster.local:9080',
      'reviews.bookinfo.svc.cluster.local:9901',
    ]);
    expect(cache.resources(node, typeUrls.cluster, ['outbound|9080||reviews.bookinfo.svc.cluster.local']).resources).toHaveLength(1);
  });

  it('changes only the endpoint version when only endpoints change', () => {
    const before = Object.fromEntries(Object.values(typeUrls).map((t) => [t, cache.resources(node, t, []).version]));
    const moved = structuredClone(model);
    moved.services[0]!.endpoints.push({ address: '10.244.2.9', ports: { grpc: 9080 } });
    expect(cache.update(grpcClientResources(viewOf(moved)))).toEqual([typeUrls.endpoint]);
    const after = Object.fromEntries(Object.values(typeUrls).map((t) => [t, cache.resources(node, t, []).version]));
    expect(after[typeUrls.endpoint]).not.toBe(before[typeUrls.endpoint]);
    expect(after[typeUrls.cluster]).toBe(before[typeUrls.cluster]);
    expect(after[typeUrls.listener]).toBe(before[typeUrls.listener]);
    // The same model again changes nothing.
    expect(cache.update(grpcClientResources(viewOf(moved)))).toEqual([]);
  });
});
