import protobuf from 'protobufjs';
import { typeOf } from '../protos.js';
import { aggregatedDiscoveryService } from '../protos.js';
import { maxMessageDepth, wireProblem } from './request-wire-check.js';

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
