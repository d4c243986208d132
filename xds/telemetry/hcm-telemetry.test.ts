// Istio's Telemetry examples (and MeshConfig defaults) as Envoy connection manager
// fields: strictly decoded, golden-tested, with the precedence users rely on.
import { join } from 'node:path';
import { stringify } from 'yaml';
import { expectMatchesGolden } from '../../testing/jest/golden.js';
import { decodeStrictly } from '../../testing/jest/xds-decode.js';
import { emptyIstioConfig, type ConfigObject, type TelemetrySpec } from '../model/istio-config.js';
import type { MeshModel, MeshTelemetry } from '../model/mesh-model.js';
import { encodeResource } from '../protos.js';
import { hcmTelemetry, type Direction } from './hcm-telemetry.js';

const hcmType = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const telemetry = (namespace: string, name: string, spec: TelemetrySpec): ConfigObject<TelemetrySpec> => ({
  kind: 'Telemetry',
  namespace,
  name,
  creationTimestamp: '2026-01-01T00:00:00Z',
  spec,
});
const providers: MeshTelemetry = {
  tracingSampling: 1,
  extensionProviders: [
    { name: 'otel', opentelemetry: { service: 'otel-collector.observability.svc.cluster.local', port: 4317 } },
    { name: 'zipkin', zipkin: { service: 'zipkin.istio-system.svc.cluster.local', port: 9411 } },
    {
      name: 'json-logs',
      envoyFileAccessLog: { path: '/dev/stdout', logFormat: { labels: { method: '%REQ(:METHOD)%', code: '%RESPONSE_CODE%' } } },
    },
  ],
};
/** The collectors the providers name: Istio configures a tracer only for a collector the mesh has. */
const collectors: MeshModel['services'] = [
  { name: 'otel-collector', namespace: 'observability', ports: [{ name: 'grpc-otlp', port: 4317, protocol: 'TCP' }], endpoints: [] },
  { name: 'zipkin', namespace: 'istio-system', ports: [{ name: 'http-query', port: 9411, protocol: 'TCP' }], endpoints: [] },
];
const model = (telemetries: Array<ConfigObject<TelemetrySpec>>, mesh: MeshTelemetry = providers): MeshModel => ({
  clusterDomain: 'cluster.local',
  rootNamespace: 'istio-system',
  services: collectors,
  istio: { ...emptyIstioConfig(), telemetries },
  meshConfig: { telemetry: mesh },
});
const workload = { namespace: 'shop', labels: { app: 'echo' } };

/** The fields inside a real connection manager, decoded as Envoy would. */
const decoded = (m: MeshModel, direction: Direction) => {
  const { fields } = hcmTelemetry(m, workload, direction);
  return decodeStrictly(hcmType, encodeResource(hcmType, { stat_prefix: 'test', ...fields }));
};

const cases: Record<string, MeshModel> = {
  'mesh-access-logs': model([telemetry('istio-system', 'mesh-default', { accessLogging: [{ providers: [{ name: 'envoy' }] }] })]),
  'namespace-disables': model([
    telemetry('istio-system', 'mesh-default', { accessLogging: [{ providers: [{ name: 'envoy' }] }] }),
    telemetry('shop', 'no-logs', { accessLogging: [{ disabled: true }] }),
  ]),
  'workload-server-only': model([
    telemetry('shop', 'echo-logs', {
      selector: { matchLabels: { app: 'echo' } },
      accessLogging: [{ providers: [{ name: 'json-logs' }], match: { mode: 'SERVER' } }],
    }),
  ]),
  'otel-tracing': model([
    telemetry('istio-system', 'mesh-default', {
      tracing: [
        {
          providers: [{ name: 'otel' }],
          randomSamplingPercentage: 10,
          customTags: { cluster: { literal: { value: 'east' } }, user: { header: { name: 'x-user', defaultValue: 'anonymous' } } },
        },
      ],
    }),
  ]),
  'zipkin-default-provider': model([], { ...providers, defaultProviders: { tracing: ['zipkin'] } }),
  'legacy-access-log-file': model([], { accessLogFile: '/dev/stdout', accessLogEncoding: 'JSON' }),
};

describe('Telemetry for Envoy', () => {
  it.each(Object.keys(cases))('%s decodes strictly and matches its golden file', (name) => {
    const m = cases[name]!;
    expectMatchesGolden(
      join(import.meta.dirname, 'testdata', `${name}.yaml`),
      stringify({ client: decoded(m, 'CLIENT'), server: decoded(m, 'SERVER') }),
    );
  });

  it('logs with the mesh default, unless the namespace turns logs off', () => {
    expect(decoded(cases['mesh-access-logs']!, 'CLIENT')['access_log']).toHaveLength(1);
    expect(decoded(cases['namespace-disables']!, 'CLIENT')['access_log']).toBeUndefined();
    // Another namespace still follows the mesh default.
    const other = hcmTelemetry(cases['namespace-disables']!, { namespace: 'other', labels: {} }, 'CLIENT');
    expect(other.fields['access_log']).toHaveLength(1);
  });

  it('applies a SERVER-only entry to inbound traffic only, in the provider JSON format', () => {
    const m = cases['workload-server-only']!;
    expect(decoded(m, 'CLIENT')['access_log']).toBeUndefined();
    const [log] = decoded(m, 'SERVER')['access_log'] as Array<Record<string, any>>;
    expect(log?.['typed_config'].log_format.json_format).toEqual({
      fields: { method: { stringValue: '%REQ(:METHOD)%' }, code: { stringValue: '%RESPONSE_CODE%' } },
    });
  });

  it("keeps the mesh's client logs when a workload's Telemetry names a provider for its server side only", () => {
    // Istio's mergeLogs: the most specific level naming providers for a direction chooses them, per direction.
    const m = model([
      telemetry('istio-system', 'mesh-default', { accessLogging: [{ providers: [{ name: 'envoy' }] }] }),
      telemetry('shop', 'echo-logs', {
        selector: { matchLabels: { app: 'echo' } },
        accessLogging: [{ providers: [{ name: 'json-logs' }], match: { mode: 'SERVER' } }],
      }),
    ]);
    const pathOf = (direction: Direction) =>
      (decoded(m, direction)['access_log'] as Array<Record<string, any>>).map((l) =>
        l['typed_config'].log_format.json_format ? 'json' : 'text',
      );
    expect(pathOf('CLIENT')).toEqual(['text']);
    expect(pathOf('SERVER')).toEqual(['json']);
  });

  it('traces nothing when the collector is not a service of the mesh, as Istio', () => {
    const m = { ...model([], { ...providers, defaultProviders: { tracing: ['zipkin'] } }), services: [] };
    const { fields, problems } = hcmTelemetry(m, workload, 'CLIENT');
    expect(fields['tracing']).toBeUndefined();
    expect(problems).toEqual(['tracing provider "zipkin": its collector service is not in the mesh, so nothing is traced (as in Istio)']);
  });

  it("samples 1% for the proxy's own tracer when no Telemetry or default provider says otherwise, as Istio", () => {
    expect(decoded(model([], {}), 'CLIENT')['tracing']).toEqual({ random_sampling: { value: 1 } });
  });

  it('traces to the OpenTelemetry collector cluster with the Telemetry sampling and tags', () => {
    const tracing = decoded(cases['otel-tracing']!, 'CLIENT')['tracing'] as Record<string, any>;
    expect(tracing['random_sampling']).toEqual({ value: 10 });
    expect(tracing['provider'].typed_config.grpc_service.envoy_grpc.cluster_name).toBe(
      'outbound|4317||otel-collector.observability.svc.cluster.local',
    );
    expect(tracing['custom_tags'].map((t: { tag: string }) => t.tag)).toEqual(['cluster', 'user']);
  });

  it('reports providers the mesh does not define instead of ignoring them', () => {
    const m = model([
      telemetry('shop', 'typo', { tracing: [{ providers: [{ name: 'otle' }] }], accessLogging: [{ providers: [{ name: 'nope' }] }] }),
    ]);
    const { fields, problems } = hcmTelemetry(m, workload, 'CLIENT');
    expect(fields).toEqual({});
    expect(problems).toEqual([
      'access log provider "nope" is not an envoyFileAccessLog extension provider of the mesh',
      'tracing provider "otle" is not an opentelemetry or zipkin extension provider of the mesh',
    ]);
  });
});
