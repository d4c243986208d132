import { SnapshotCache } from '../cache/snapshot-cache.js';
import { typeUrls } from '../protos.js';
import { AdsStream, ProtocolError, requestLimits, type DiscoveryResponse } from './ads-stream.js';

const cluster = (name: string, seconds = 1) => ({
  name,
  type: 'EDS',
  eds_cluster_config: { eds_config: { ads: {} } },
  connect_timeout: { seconds },
});
const node = { id: 'sidecar~10.0.0.1~a.ns~ns.svc.cluster.local' };

function setup() {
  const cache = new SnapshotCache();
  cache.update({ [typeUrls.cluster]: { a: cluster('a'), b: cluster('b') } });
  const sent: DiscoveryResponse[] = [];
  const stream = new AdsStream(1, cache, (r) => sent.push(r));
  cache.onChange((change) => stream.changed(change.typeUrls));
  return { cache, sent, stream };
}

describe('AdsStream (state of the world)', () => {
  it('answers a wildcard subscription with every resource, then only on change, tracking ACK per type', () => {
    const { cache, sent, stream } = setup();
    stream.handle({ node, type_url: typeUrls.cluster });
    expect(sent).toHaveLength(1);
    const first = sent[0]?.version_info as string;
    expect(sent[0]).toMatchObject({
      type_url: typeUrls.cluster,
      version_info: cache.resources(node, typeUrls.cluster, []).version,
      nonce: '1',
    });
    expect(sent[0]?.resources).toHaveLength(2);
    stream.handle({ type_url: typeUrls.cluster, version_info: first, response_nonce: '1' });
    expect(stream.status().types[0]).toMatchObject({ state: 'acked', versionAcked: first, subscribed: 'wildcard' });
    expect(sent).toHaveLength(1);

    cache.update({ [typeUrls.cluster]: { a: cluster('a', 2), b: cluster('b') } });
    expect(sent).toHaveLength(2);
    expect(sent[1]).toMatchObject({ nonce: '2' });
    expect(sent[1]?.version_info).not.toBe(first);
    expect(stream.status().types[0]?.state).toBe('pending');
  });

  it('keeps a NACK with its error, ignores stale nonces, and resends on the next change', () => {
    const { cache, sent, stream } = setup();
    stream.handle({ node, type_url: typeUrls.cluster });
    stream.handle({ type_url: typeUrls.cluster, version_info: '', response_nonce: '1', error_detail: { code: 3, message: 'bad cluster' } });
    expect(stream.status().types[0]).toMatchObject({ state: 'nacked', lastNackError: 'bad cluster', versionSent: sent[0]?.version_info });
    stream.handle({ type_url: typeUrls.cluster, version_info: sent[0]?.version_info, response_nonce: '999' });
    expect(stream.status().types[0]?.state).toBe('nacked');
    expect(sent).toHaveLength(1);
    cache.update({ [typeUrls.cluster]: { a: cluster('a', 3) } });
    expect(sent).toHaveLength(2);
    stream.handle({ type_url: typeUrls.cluster, version_info: sent[1]?.version_info, response_nonce: '2' });
    expect(stream.status().types[0]).toMatchObject({ state: 'acked', versionAcked: sent[1]?.version_info, lastNackError: 'bad cluster' });
  });

  it('answers named subscriptions with just those resources, and a new name list on ACK', () => {
    const { sent, stream } = setup();
    stream.handle({ node, type_url: typeUrls.cluster, resource_names: ['b'] });
    expect(sent[0]?.resources).toHaveLength(1);
    stream.handle({ type_url: typeUrls.cluster, version_info: '1', response_nonce: '1', resource_names: ['a', 'b'] });
    expect(sent).toHaveLength(2);
    expect(sent[1]?.resources).toHaveLength(2);
  });

  it('answers types it does not serve with an empty response, and requires a node first', () => {
    const { sent, stream } = setup();
    expect(() => stream.handle({ type_url: typeUrls.cluster })).toThrow(ProtocolError);
    stream.handle({ node, type_url: 'type.googleapis.com/istio.networking.nds.v1.NameTable' });
    expect(sent[0]).toMatchObject({ type_url: 'type.googleapis.com/istio.networking.nds.v1.NameTable', resources: [], version_info: '' });
    expect(() => stream.handle({ type_url: '' })).toThrow('type_url: missing');
  });

  it('refuses hostile requests naming the field: malformed, oversized strings and names, too many types', () => {
    const refused = (request: Parameters<AdsStream['handle']>[0], first = true) => {
      const { stream } = setup();
      if (!first) stream.handle({ node, type_url: typeUrls.cluster });
      try {
        stream.handle(request);
      } catch (error) {
        expect(error).toBeInstanceOf(ProtocolError);
        return (error as Error).message;
      }
      return 'accepted';
    };
    expect(refused({ malformed: 'node.id: wire type 5 (32-bit), expected 2 (length-delimited)' })).toMatch(/^node\.id: wire type 5/);
    expect(refused({ node: { id: 'x'.repeat(requestLimits.nodeId + 1) }, type_url: typeUrls.cluster })).toMatch(
      /^node\.id: 2049 characters/,
    );
    expect(refused({ node, type_url: `type.googleapis.com/${'x'.repeat(600)}` })).toMatch(/^type_url: 620 characters/);
    expect(refused({ node, type_url: typeUrls.cluster, version_info: 'v'.repeat(2_000) })).toMatch(/^version_info: 2000 characters/);
    expect(refused({ type_url: typeUrls.endpoint, resource_names: ['a', 'n'.repeat(5_000)] }, false)).toMatch(/^resource_names\[1\]: 5000/);
    // A stream keeps state per type: past the limit, a new type is refused; a known one is still served.
    const { stream, sent } = setup();
    for (let i = 0; i < requestLimits.typesPerStream; i++) stream.handle({ node, type_url: `type.googleapis.com/x.T${i}` });
    expect(() => stream.handle({ type_url: 'type.googleapis.com/x.Extra' })).toThrow(
      /^type_url: "type.googleapis.com\/x.Extra" would be type 33/,
    );
    expect(sent).toHaveLength(requestLimits.typesPerStream);
  });

  it("keeps a NACK's message clipped, and answers a reconnecting proxy's first request that carries its old nonce", () => {
    const { stream, sent } = setup();
    // Envoy and Istio's agent reconnect (to another replica, or after a restart) with the nonce of their last stream.
    stream.handle({ node, type_url: typeUrls.cluster, version_info: 'old', response_nonce: '17' });
    expect(sent).toHaveLength(1);
    stream.handle({ type_url: typeUrls.cluster, response_nonce: '1', error_detail: { code: 3, message: 'e'.repeat(5_000) } });
    const nack = stream.status().types[0];
    expect(nack?.state).toBe('nacked');
    expect(nack?.lastNackError).toMatch(/^e{1024}\.\.\. \(3976 more characters\)$/);
    // A NACK of a type never answered here is only noted; a stale nonce on a known type is still ignored.
    stream.handle({ type_url: typeUrls.endpoint, response_nonce: '9', error_detail: { message: 'x' } });
    stream.handle({ type_url: typeUrls.cluster, response_nonce: '999', resource_names: ['a'] });
    expect(sent).toHaveLength(1);
    expect(stream.status().types.map((t) => t.typeUrl)).toEqual([typeUrls.cluster]);
  });

  it('holds pushes while the transport is busy and sends each waiting type once, at its latest, when it drains', () => {
    const cache = new SnapshotCache();
    cache.update({ [typeUrls.cluster]: { a: cluster('a') } });
    const sent: DiscoveryResponse[] = [];
    let busy = false;
    const stream = new AdsStream(
      1,
      cache,
      (r) => sent.push(r),
      {},
      () => busy,
    );
    cache.onChange((change) => stream.changed(change.typeUrls, change.names));
    stream.handle({ node, type_url: typeUrls.cluster });
    expect(sent).toHaveLength(1);
    // A proxy that stopped reading: ten changes queue nothing.
    busy = true;
    for (let i = 2; i < 12; i++) cache.update({ [typeUrls.cluster]: { a: cluster('a', i) } });
    stream.handle({ type_url: typeUrls.listener });
    expect(sent).toHaveLength(1);
    expect(stream.waitingTypes).toEqual([typeUrls.cluster, typeUrls.listener]);
    busy = false;
    stream.drained();
    expect(sent.map((r) => r.type_url)).toEqual([typeUrls.cluster, typeUrls.cluster, typeUrls.listener]);
    expect(sent[1]?.version_info).toBe(cache.resources(node, typeUrls.cluster, []).version);
    expect(stream.waitingTypes).toEqual([]);
  });

  it('resends only the changed endpoints of the names a proxy uses, and nothing when its names did not change', () => {
    const cache = new SnapshotCache();
    const eds = (name: string, address: string) => ({
      cluster_name: name,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address, port_value: 80 } } } }] }],
    });
    cache.update({ [typeUrls.endpoint]: { a: eds('a', '10.0.0.1'), b: eds('b', '10.0.0.2'), c: eds('c', '10.0.0.3') } });
    const sent: DiscoveryResponse[] = [];
    const stream = new AdsStream(1, cache, (r) => sent.push(r));
    cache.onChange((change) => stream.changed(change.typeUrls));
    stream.handle({ node, type_url: typeUrls.endpoint, resource_names: ['a', 'b'] });
    expect(sent[0]?.resources).toHaveLength(2);
    cache.update({ [typeUrls.endpoint]: { a: eds('a', '10.0.0.9'), b: eds('b', '10.0.0.2'), c: eds('c', '10.0.0.3') } });
    expect(sent).toHaveLength(2);
    expect(sent[1]?.resources).toHaveLength(1);
    // A change to a resource this proxy does not use sends it nothing.
    cache.update({ [typeUrls.endpoint]: { a: eds('a', '10.0.0.9'), b: eds('b', '10.0.0.2'), c: eds('c', '10.0.0.7') } });
    expect(sent).toHaveLength(2);
  });
});
