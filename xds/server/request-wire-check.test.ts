import protobuf from 'protobufjs';
import { typeOf } from '../protos.js';
import { aggregatedDiscoveryService } from '../protos.js';
import { SnapshotCache } from '../cache/snapshot-cache.js';
import { AdsStream, type DiscoveryRequest } from './ads-stream.js';
import { DeltaStream, type DeltaDiscoveryRequest } from './delta-stream.js';
import { firstRequestProblem, maxMessageDepth, wireProblem } from './request-wire-check.js';

const requestType = () => typeOf('type.googleapis.com/envoy.service.discovery.v3.DiscoveryRequest');
const encode = (message: Record<string, unknown>) => Buffer.from(requestType().encode(requestType().fromObject(message)).finish());
const field = (number: number, wire: number, write: (w: protobuf.Writer) => protobuf.Writer) =>
  Buffer.from(write(protobuf.Writer.create().uint32((number << 3) | wire)).finish());
const nested = (number: number, bytes: Uint8Array) => field(number, 2, (w) => w.bytes(bytes));
const cds = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';

describe('wireProblem (DiscoveryRequest)', () => {
  it('accepts what a protobuf encoder writes, unknown fields included', () => {
    const valid = encode({
      node: {
        id: 'sidecar~10.0.0.1~a.ns~ns.svc.cluster.local',
        metadata: { fields: { LABELS: { struct_value: { fields: { app: { string_value: 'a' } } } } } },
      },
      type_url: cds,
      resource_names: ['a', 'b'],
      error_detail: { code: 3, message: 'bad' },
    });
    expect(wireProblem(requestType(), valid)).toBeUndefined();
    expect(wireProblem(requestType(), Buffer.concat([valid, nested(99, Buffer.from('future'))]))).toBeUndefined();
  });

  it('names the field of a wrong wire type, a truncation, text that is not UTF-8, and nesting too deep', () => {
    const type = requestType();
    expect(
      wireProblem(
        type,
        field(1, 0, (w) => w.uint32(5)),
      ),
    ).toBe('version_info: wire type 0 (varint), expected 2 (length-delimited)');
    expect(
      wireProblem(
        type,
        nested(
          2,
          field(1, 5, (w) => w.fixed32(1)),
        ),
      ),
    ).toBe('node.id: wire type 5 (32-bit), expected 2 (length-delimited)');
    expect(wireProblem(type, Buffer.concat([nested(3, Buffer.from('a')), field(3, 1, (w) => w.fixed64(1))]))).toBe(
      'resource_names[1]: wire type 1 (64-bit), expected 2 (length-delimited)',
    );
    expect(
      wireProblem(
        type,
        nested(
          6,
          field(2, 0, (w) => w.uint32(1)),
        ),
      ),
    ).toBe('error_detail.message: wire type 0 (varint), expected 2 (length-delimited)');
    const whole = encode({ type_url: cds });
    expect(wireProblem(type, whole.subarray(0, whole.length - 4))).toMatch(/^type_url: truncated/);
    expect(wireProblem(type, nested(2, nested(1, Buffer.from([0x61, 0xff]))))).toBe('node.id: not valid UTF-8');
    // node.metadata: Struct → fields["k"] → Value.struct_value → Struct ..., built inside out.
    let struct = Buffer.alloc(0);
    for (let i = 0; i < maxMessageDepth; i++)
      struct = nested(1, Buffer.concat([nested(1, Buffer.from('k')), nested(2, nested(5, struct))]));
    expect(wireProblem(type, nested(2, nested(3, struct)))).toMatch(
      /^node\.metadata\.fields\["k"\]\.struct_value\.fields\["k"\].*: nested deeper than 100 messages$/,
    );
    expect(
      wireProblem(
        type,
        nested(
          2,
          nested(
            3,
            nested(
              1,
              Buffer.concat([
                nested(1, Buffer.from('LABELS')),
                nested(
                  2,
                  field(3, 0, (w) => w.uint32(1)),
                ),
              ]),
            ),
          ),
        ),
      ),
    ).toBe('node.metadata.fields["LABELS"].string_value: wire type 0 (varint), expected 2 (length-delimited)');
  });

  it('makes the ADS deserializer hand the stream { malformed } instead of throwing or reading garbage', () => {
    const deserialize = aggregatedDiscoveryService()['StreamAggregatedResources']?.requestDeserialize as (b: Buffer) => unknown;
    expect(deserialize(Buffer.concat([encode({ type_url: cds }), field(5, 5, (w) => w.fixed32(1))]))).toEqual({
      malformed: 'response_nonce: wire type 5 (32-bit), expected 2 (length-delimited)',
    });
    const whole = encode({ node: { id: 'n' }, type_url: cds });
    expect(deserialize(whole.subarray(0, whole.length - 2))).toMatchObject({ malformed: expect.stringMatching(/^type_url: truncated/) });
    // The fast path (no node) still decodes ACKs as before.
    expect(deserialize(encode({ type_url: cds, response_nonce: '3', resource_names: ['a'] }))).toMatchObject({
      type_url: cds,
      response_nonce: '3',
      resource_names: ['a'],
    });
  });
});

describe('firstRequestProblem', () => {
  const cache = new SnapshotCache();
  const node = { id: 'sidecar~10.0.0.1~a.ns~ns.svc.cluster.local' };
  /** What the stream itself says when it handles the request as its first: the check must say the same, before authentication. */
  const streamSays = (request: DiscoveryRequest | DeltaDiscoveryRequest, delta: boolean): string | undefined => {
    const stream = delta ? new DeltaStream(1, cache, () => undefined) : new AdsStream(1, cache, () => undefined);
    try {
      stream.handle(request as DiscoveryRequest & DeltaDiscoveryRequest);
      return undefined;
    } catch (error) {
      return (error as Error).message;
    }
  };
  const long = (n: number) => 'x'.repeat(n);

  it.each<[string, DiscoveryRequest | DeltaDiscoveryRequest, boolean]>([
    ['a good request', { node, type_url: cds, resource_names: ['a'] }, false],
    ['a good Delta request', { node, type_url: cds, resource_names_subscribe: ['a'] }, true],
    ['malformed on the wire', { malformed: 'node.id: wire type 5 (32-bit), expected 2 (length-delimited)' }, false],
    ['no node', { type_url: cds }, false],
    ['no node (Delta)', { type_url: cds }, true],
    ['node.id empty', { node: { id: '' }, type_url: cds }, false],
    ['node.id too long', { node: { id: long(3000) }, type_url: cds }, true],
    ['no type_url', { node }, false],
    ['no type_url (Delta)', { node }, true],
    ['type_url too long', { node, type_url: long(600) }, false],
    ['version_info too long', { node, type_url: cds, version_info: long(2000) }, false],
    ['a resource name too long', { node, type_url: cds, resource_names: ['a', long(5000)] }, false],
    ['a subscribed name too long', { node, type_url: cds, resource_names_subscribe: [long(5000)] }, true],
    ['an unsubscribed name too long', { node, type_url: cds, resource_names_unsubscribe: [long(5000)] }, true],
  ])('%s: the same verdict as the stream its first request opens', (name, request, delta) => {
    const problem = firstRequestProblem(request, delta);
    expect(problem).toBe(streamSays(request, delta));
    // Refusals name the field first (`resource_names[1]: 5000 characters, ...`).
    if (name.startsWith('a good')) expect(problem).toBeUndefined();
    else expect(problem).toMatch(/^[a-z_.]+(\[\d+\])?: /);
  });
});
