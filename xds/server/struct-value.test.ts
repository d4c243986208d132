import { structToJson } from './struct-value.js';

describe('structToJson', () => {
  it('reads node metadata as proto-loader delivers it', () => {
    const wire = {
      fields: {
        GENERATOR: { string_value: 'grpc', kind: 'string_value' },
        LABELS: { struct_value: { fields: { app: { string_value: 'reviews' } } } },
        PORTS: { list_value: { values: [{ number_value: 8080 }] } },
        SIDECAR: { bool_value: true },
      },
    };
    expect(structToJson(wire)).toEqual({ GENERATOR: 'grpc', LABELS: { app: 'reviews' }, PORTS: [8080], SIDECAR: true });
    expect(structToJson(undefined)).toEqual({});
  });
});
