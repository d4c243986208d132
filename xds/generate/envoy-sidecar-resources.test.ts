import { join } from 'node:path';
import { stringify } from 'yaml';
import { expectMatchesGolden } from '../../testing/jest/golden.js';
import { decodeStrictly } from '../../testing/jest/xds-decode.js';
import { SnapshotCache } from '../cache/snapshot-cache.js';
import type { MeshModel } from '../model/mesh-model.js';
import { typeUrls } from '../protos.js';
import { ProxyView } from '../traffic/proxy-view.js';
import { envoySidecarResources } from './envoy-sidecar-resources.js';

const model: MeshModel = {
  clusterDomain: 'cluster.local',
  services: [
    {
      name: 'reviews',
      namespace: 'bookinfo',
      ports: [{ name: 'http', port: 9080, protocol: 'TCP' }],
      endpoints: [
        { address: '10.244.1.7', ports: { http: 9080 }, tlsMode: 'istio' },
        { address: '10.244.2.3', ports: { http: 9080 } },
      ],
    },
    { name: 'ratings', namespace: 'bookinfo', ports: [{ name: 'http', port: 9080, protocol: 'TCP' }], endpoints: [] },
  ],
};
const node = { id: 'sidecar~10.244.1.7~reviews-v1-abc.bookinfo~bookinfo.svc.cluster.local' };

const viewOf = (m: MeshModel) => new ProxyView(m, { kind: 'sidecar', namespace: 'bookinfo', labels: {} });

describe('Envoy sidecar resources', () => {
  const cache = new SnapshotCache();
  cache.update(envoySidecarResources(viewOf(model)));

  it.each(Object.entries(typeUrls).filter(([kind]) => kind !== 'secret'))(
    '%s resources decode strictly and match their golden file',
    (kind, typeUrl) => {
      const decoded = cache.resources(node, typeUrl, []).resources.map((r) => decodeStrictly(typeUrl, r.resource.value));
      expectMatchesGolden(join(import.meta.dirname, 'testdata', `envoy-sidecar-${kind}.yaml`), stringify(decoded));
    },
  );

  it("uses Istio's listener and cluster names", () => {
    expect(cache.resources(node, typeUrls.listener, []).resources.map((r) => r.name)).toEqual([
      '0.0.0.0_9080',
      'virtualOutbound',
      'virtualInbound',
    ]);
    expect(cache.resources(node, typeUrls.cluster, []).resources.map((r) => r.name)).toEqual([
      'outbound|9080||ratings.bookinfo.svc.cluster.local',
      'outbound|9080||reviews.bookinfo.svc.cluster.local',
      'PassthroughCluster',
      'InboundPassthroughCluster',
      'BlackHoleCluster',
    ]);
  });

  it('routes one port to every Service on it by host, and unknown hosts out of the mesh', () => {
    const route = decodeStrictly(typeUrls.route, cache.resources(node, typeUrls.route, ['9080']).resources[0]!.resource.value) as any;
    expect(route.virtual_hosts.map((v: { name: string }) => v.name)).toEqual([
      'ratings.bookinfo.svc.cluster.local:9080',
      'reviews.bookinfo.svc.cluster.local:9080',
      'allow_any',
    ]);
    expect(route.virtual_hosts[1].domains).toContain('reviews.bookinfo:9080');
  });

  it('marks endpoints whose pod runs the sidecar, so Envoy uses Istio mTLS to them and plaintext to the rest', () => {
    const eds = decodeStrictly(
      typeUrls.endpoint,
      cache.resources(node, typeUrls.endpoint, ['outbound|9080||reviews.bookinfo.svc.cluster.local']).resources[0]!.resource.value,
    ) as any;
    const [meshed, plain] = eds.endpoints[0].lb_endpoints;
    expect(meshed.metadata.filter_metadata['envoy.transport_socket_match'].fields.tlsMode.stringValue).toBe('istio');
    expect(plain.metadata).toBeUndefined();
    const cluster = decodeStrictly(
      typeUrls.cluster,
      cache.resources(node, typeUrls.cluster, ['outbound|9080||reviews.bookinfo.svc.cluster.local']).resources[0]!.resource.value,
    ) as any;
    expect(cluster.transport_socket_matches.map((m: { name: string }) => m.name)).toEqual(['tlsMode-istio', 'tlsMode-disabled']);
    expect(cluster.transport_socket).toBeUndefined();
  });
});
