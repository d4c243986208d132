import { SnapshotCache } from '../cache/snapshot-cache.js';
import { typeUrls } from '../protos.js';
import { DeltaStream, type DeltaDiscoveryResponse } from './delta-stream.js';

const cluster = (name: string, seconds = 1) => ({
  name,
  type: 'EDS',
  eds_cluster_config: { eds_config: { ads: {} } },
  connect_timeout: { seconds },
});
const node = { id: 'sidecar~10.0.0.1~a.ns~ns.svc.cluster.local' };

describe('DeltaStream (incremental)', () => {
  it('sends everything once, then only what changed, and names what was removed', () => {
    const cache = new SnapshotCache();
    cache.update({ [typeUrls.cluster]: { a: cluster('a'), b: cluster('b') } });
    const sent: DeltaDiscoveryResponse[] = [];
    const stream = new DeltaStream(1, cache, (r) => sent.push(r));
    cache.onChange((change) => stream.changed(change.typeUrls));
    stream.handle({ node, type_url: typeUrls.cluster });
    expect(sent[0]?.resources.map((r) => r.name).sort()).toEqual(['a', 'b']);
    stream.handle({ type_url: typeUrls.cluster, response_nonce: sent[0]?.nonce ?? '' });
    expect(stream.status().types[0]).toMatchObject({ state: 'acked', subscribed: 'wildcard' });

    cache.update({ [typeUrls.cluster]: { a: cluster('a', 5), b: cluster('b') } });
    expect(sent[1]?.resources.map((r) => r.name)).toEqual(['a']);
    expect(sent[1]?.removed_resources).toEqual([]);
    cache.update({ [typeUrls.cluster]: { a: cluster('a', 5) } });
    expect(sent[2]).toMatchObject({ resources: [], removed_resources: ['b'] });
  });

  it('does not resend what the proxy already holds after a reconnect, and honours unsubscribe', () => {
    const cache = new SnapshotCache();
    cache.update({ [typeUrls.cluster]: { a: cluster('a'), b: cluster('b') } });
    const first: DeltaDiscoveryResponse[] = [];
    const before = new DeltaStream(1, cache, (r) => first.push(r));
    before.handle({ node, type_url: typeUrls.cluster });
    const held = Object.fromEntries((first[0]?.resources ?? []).map((r) => [r.name, r.version]));

    const sent: DeltaDiscoveryResponse[] = [];
    const after = new DeltaStream(2, cache, (r) => sent.push(r));
    after.handle({ node, type_url: typeUrls.cluster, initial_resource_versions: { a: held['a'] ?? '' } });
    expect(sent[0]?.resources.map((r) => r.name)).toEqual(['b']);

    const named: DeltaDiscoveryResponse[] = [];
    const byName = new DeltaStream(3, cache, (r) => named.push(r));
    byName.handle({ node, type_url: typeUrls.cluster, resource_names_subscribe: ['a'] });
    expect(named[0]?.resources.map((r) => r.name)).toEqual(['a']);
    byName.handle({
      type_url: typeUrls.cluster,
      resource_names_subscribe: ['b'],
      resource_names_unsubscribe: ['a'],
      response_nonce: named[0]?.nonce ?? '',
    });
    expect(named[1]?.resources.map((r) => r.name)).toEqual(['b']);
    expect(byName.status().types[0]?.subscribed).toEqual(['b']);
  });

  it('holds pushes while the transport is busy, then sends each waiting type once: what changed since, removals included', () => {
    const cache = new SnapshotCache();
    cache.update({ [typeUrls.cluster]: { a: cluster('a'), b: cluster('b'), c: cluster('c') } });
    const sent: DeltaDiscoveryResponse[] = [];
    let busy = false;
    const stream = new DeltaStream(
      1,
      cache,
      (r) => sent.push(r),
      undefined,
      undefined,
      () => busy,
    );
    cache.onChange((change) => stream.changed(change.typeUrls, change.names));
    stream.handle({ node, type_url: typeUrls.cluster });
    expect(sent).toHaveLength(1);
    // A proxy that stopped reading: ten changes and a new subscription queue nothing.
    busy = true;
    for (let i = 2; i < 12; i++) cache.update({ [typeUrls.cluster]: { a: cluster('a', i), b: cluster('b') } });
    stream.handle({ type_url: typeUrls.listener });
    expect(sent).toHaveLength(1);
    expect(stream.waitingTypes).toEqual([typeUrls.cluster, typeUrls.listener]);
    busy = false;
    stream.drained();
    expect(sent.map((r) => r.type_url)).toEqual([typeUrls.cluster, typeUrls.cluster, typeUrls.listener]);
    // The latest 'a' only, and 'c', removed in between, named as removed.
    expect(sent[1]).toMatchObject({ removed_resources: ['c'], system_version_info: cache.resources(node, typeUrls.cluster, []).version });
    expect(sent[1]?.resources.map((r) => r.name)).toEqual(['a']);
    expect(stream.waitingTypes).toEqual([]);
  });
});
