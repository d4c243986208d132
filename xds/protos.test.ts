// The ADS codec shortcuts must be invisible: responses assembled from cached
// resource encodings are the bytes a full encoding gives, and requests decoded
// lazily read as a full decoding does.
import { aggregatedDiscoveryService, encodeResource, typeOf, typeUrls } from './protos.js';

const ads = aggregatedDiscoveryService();
const sotw = ads['StreamAggregatedResources'] as unknown as {
  responseSerialize: (value: unknown) => Buffer;
  requestDeserialize: (bytes: Buffer) => Record<string, unknown>;
};
const delta = ads['DeltaAggregatedResources'] as unknown as { responseSerialize: (value: unknown) => Buffer };
const request = typeOf('type.googleapis.com/envoy.service.discovery.v3.DiscoveryRequest');
const cluster = (name: string) => ({ type_url: typeUrls.cluster, value: encodeResource(typeUrls.cluster, { name, type: 'EDS' }) });

describe('ADS codec', () => {
  it('assembles responses byte for byte as a full encoding, reusing each resource’s encoding', () => {
    const resources = [cluster('a'), cluster('b')];
    const response = { version_info: 'v1', resources, type_url: typeUrls.cluster, nonce: '7' };
    const type = typeOf('type.googleapis.com/envoy.service.discovery.v3.DiscoveryResponse');
    const full = Buffer.from(type.encode(type.fromObject(response)).finish());
    expect(sotw.responseSerialize(response).equals(full)).toBe(true);
    // Again with the cached parts, and another nonce.
    const again = { ...response, nonce: '8' };
    expect(sotw.responseSerialize(again).equals(Buffer.from(type.encode(type.fromObject(again)).finish()))).toBe(true);

    const deltaType = typeOf('type.googleapis.com/envoy.service.discovery.v3.DeltaDiscoveryResponse');
    const deltaResponse = {
      system_version_info: 'x',
      resources: [{ name: 'a', version: 'va', resource: resources[0] }],
      type_url: typeUrls.cluster,
      removed_resources: ['z'],
      nonce: '3',
    };
    const decoded = deltaType.toObject(deltaType.decode(delta.responseSerialize(deltaResponse)));
    expect(decoded).toEqual(deltaType.toObject(deltaType.fromObject(deltaResponse)));
  });

  it('decodes an ACK with its names kept as bytes, and a request with a node in full', () => {
    const names = Array.from({ length: 50 }, (_, i) => `outbound|8080||svc-${i}.ns.svc.cluster.local`);
    const ack = Buffer.from(
      request
        .encode(request.fromObject({ version_info: 'v', resource_names: names, type_url: typeUrls.endpoint, response_nonce: '4' }))
        .finish(),
    );
    const decoded = sotw.requestDeserialize(ack);
    expect(decoded['version_info']).toBe('v');
    expect(decoded['type_url']).toBe(typeUrls.endpoint);
    expect(decoded['response_nonce']).toBe('4');
    expect(decoded['resource_names']).toEqual(names);
    const again = sotw.requestDeserialize(Buffer.from(ack));
    expect((again['resource_names_bytes'] as Buffer).equals(decoded['resource_names_bytes'] as Buffer)).toBe(true);

    // Names need not be contiguous: a request may interleave them with other fields.
    const piece = (fields: Record<string, unknown>) => Buffer.from(request.encode(request.fromObject(fields)).finish());
    const interleaved = Buffer.concat([
      piece({ resource_names: ['a', 'b'] }),
      piece({ type_url: typeUrls.endpoint }),
      piece({ resource_names: ['c'] }),
      piece({ response_nonce: '9' }),
    ]);
    expect(sotw.requestDeserialize(interleaved)['resource_names']).toEqual(['a', 'b', 'c']);

    const first = Buffer.from(
      request.encode(request.fromObject({ node: { id: 'sidecar~1.2.3.4~a.b~b.svc.cluster.local' }, type_url: typeUrls.cluster })).finish(),
    );
    const full = sotw.requestDeserialize(first);
    expect((full['node'] as { id: string }).id).toBe('sidecar~1.2.3.4~a.b~b.svc.cluster.local');
    expect(full['resource_names_bytes']).toBeUndefined();
  });
});
