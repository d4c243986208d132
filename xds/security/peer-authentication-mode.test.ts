import { join } from 'node:path';
import { stringify } from 'yaml';
import { expectMatchesGolden } from '../../testing/jest/golden.js';
import { decodeStrictly } from '../../testing/jest/xds-decode.js';
import { ResourceEncoder, SnapshotCache } from '../cache/snapshot-cache.js';
import { grpcClientResources, grpcServerListeners } from '../generate/grpc-client-resources.js';
import { emptyIstioConfig, type ConfigObject, type PeerAuthenticationSpec } from '../model/istio-config.js';
import type { MeshModel } from '../model/mesh-model.js';
import { typeUrls } from '../protos.js';
import { ProxyView } from '../traffic/proxy-view.js';
import { mtlsModeFor } from './peer-authentication-mode.js';
import { authorizationPoliciesFor } from './workload-policies.js';

const policy = (
  namespace: string,
  name: string,
  spec: PeerAuthenticationSpec,
  creationTimestamp = '2026-01-01T00:00:00Z',
): ConfigObject<PeerAuthenticationSpec> => ({ kind: 'PeerAuthentication', namespace, name, creationTimestamp, spec });

describe('PeerAuthentication precedence', () => {
  const workload = { namespace: 'shop', labels: { app: 'echo' } };

  it('is PERMISSIVE when nothing is said, and follows mesh, then namespace, then workload, then port', () => {
    expect(mtlsModeFor([], 'istio-system', workload)).toBe('PERMISSIVE');
    const mesh = policy('istio-system', 'default', { mtls: { mode: 'STRICT' } });
    expect(mtlsModeFor([mesh], 'istio-system', workload)).toBe('STRICT');
    const namespace = policy('shop', 'default', { mtls: { mode: 'PERMISSIVE' } });
    expect(mtlsModeFor([mesh, namespace], 'istio-system', workload)).toBe('PERMISSIVE');
    const own = policy('shop', 'echo', {
      selector: { matchLabels: { app: 'echo' } },
      mtls: { mode: 'STRICT' },
      portLevelMtls: { '9090': { mode: 'DISABLE' } },
    });
    expect(mtlsModeFor([mesh, namespace, own], 'istio-system', workload, 8080)).toBe('STRICT');
    expect(mtlsModeFor([mesh, namespace, own], 'istio-system', workload, 9090)).toBe('DISABLE');
    // A workload policy for other labels does not apply; UNSET inherits.
    expect(mtlsModeFor([mesh, namespace, own], 'istio-system', { namespace: 'shop', labels: { app: 'other' } })).toBe('PERMISSIVE');
    const unset = policy('shop', 'default', { mtls: { mode: 'UNSET' } });
    expect(mtlsModeFor([mesh, unset], 'istio-system', workload)).toBe('STRICT');
  });

  it("starts from the MeshInstallation's meshConfig.mtls.mode, which any PeerAuthentication overrides", () => {
    expect(mtlsModeFor([], 'istio-system', workload, 8080, 'STRICT')).toBe('STRICT');
    const namespace = policy('shop', 'default', { mtls: { mode: 'PERMISSIVE' } });
    expect(mtlsModeFor([namespace], 'istio-system', workload, 8080, 'STRICT')).toBe('PERMISSIVE');
  });

  it('reads an empty selector as no selector, and ignores selector policies in the root namespace', () => {
    const meshWide = policy('istio-system', 'default', { selector: { matchLabels: {} }, mtls: { mode: 'STRICT' } });
    expect(mtlsModeFor([meshWide], 'istio-system', workload)).toBe('STRICT');
    const rootSelector = policy('istio-system', 'echo', { selector: { matchLabels: { app: 'echo' } }, mtls: { mode: 'DISABLE' } });
    expect(mtlsModeFor([meshWide, rootSelector], 'istio-system', workload)).toBe('STRICT');
  });

  it('takes the oldest of competing namespace policies, as Istio', () => {
    const older = policy('shop', 'a', { mtls: { mode: 'DISABLE' } }, '2025-01-01T00:00:00Z');
    const newer = policy('shop', 'b', { mtls: { mode: 'STRICT' } }, '2026-01-01T00:00:00Z');
    expect(mtlsModeFor([newer, older], 'istio-system', workload)).toBe('DISABLE');
  });
});

describe('Istio mTLS for proxyless gRPC', () => {
  const model = (policies: Array<ConfigObject<PeerAuthenticationSpec>>): MeshModel => ({
    clusterDomain: 'cluster.local',
    rootNamespace: 'istio-system',
    trustDomain: 'example.org',
    services: [
      {
        name: 'echo',
        namespace: 'shop',
        ports: [{ name: 'grpc', port: 8080, protocol: 'TCP' }],
        endpoints: [{ address: '10.244.1.1', ports: { grpc: 9090 }, labels: { app: 'echo' }, serviceAccount: 'echo' }],
      },
    ],
    istio: { ...emptyIstioConfig(), peerAuthentications: policies },
  });
  const generate = (m: MeshModel) => {
    const cache = new SnapshotCache(new ResourceEncoder());
    cache.update(grpcClientResources(new ProxyView(m, { kind: 'grpc', namespace: 'shop', labels: {} })), grpcServerListeners(m));
    const node = { id: 'test' };
    return {
      cluster: decodeStrictly(typeUrls.cluster, cache.resources(node, typeUrls.cluster, []).resources[0]!.resource.value),
      server: decodeStrictly(
        typeUrls.listener,
        cache.resources(node, typeUrls.listener, ['xds.istio.io/grpc/lds/inbound/10.244.1.1:9090']).resources[0]!.resource.value,
      ),
    };
  };

  it('speaks plaintext to PERMISSIVE servers, which gRPC cannot serve both ways', () => {
    const { cluster, server } = generate(model([]));
    expect(cluster['transport_socket']).toBeUndefined();
    expect((server['filter_chains'] as Array<Record<string, unknown>>)[0]?.['transport_socket']).toBeUndefined();
  });

  it('under STRICT, clients verify the server SPIFFE identity and servers require a client certificate', () => {
    const { cluster, server } = generate(model([policy('shop', 'default', { mtls: { mode: 'STRICT' } })]));
    expectMatchesGolden(join(import.meta.dirname, 'testdata', 'golden', 'mtls-strict.grpc.yaml'), stringify({ cluster, server }));
    expect(cluster).toMatchObject({
      transport_socket: {
        typed_config: {
          common_tls_context: {
            tls_certificate_provider_instance: { instance_name: 'default', certificate_name: 'default' },
            validation_context: { match_subject_alt_names: [{ exact: 'spiffe://example.org/ns/shop/sa/echo' }] },
          },
        },
      },
    });
    expect((server['filter_chains'] as Array<Record<string, unknown>>)[0]).toMatchObject({
      transport_socket: { typed_config: { require_client_certificate: { value: true } } },
    });
  });
});

describe('AuthorizationPolicy selection', () => {
  it('never attaches targetRef policies to sidecars, and applies root-namespace selectors mesh-wide', () => {
    const m: MeshModel = {
      clusterDomain: 'cluster.local',
      rootNamespace: 'istio-system',
      services: [],
      istio: {
        ...emptyIstioConfig(),
        authorizationPolicies: [
          {
            kind: 'AuthorizationPolicy',
            namespace: 'shop',
            name: 'gateway',
            spec: { targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'gw' }], rules: [{}] } as never,
          },
          {
            kind: 'AuthorizationPolicy',
            namespace: 'istio-system',
            name: 'echo-everywhere',
            spec: { selector: { matchLabels: { app: 'echo' } } },
          },
          { kind: 'AuthorizationPolicy', namespace: 'other', name: 'elsewhere', spec: {} },
        ],
      },
    };
    expect(authorizationPoliciesFor(m, { namespace: 'shop', labels: { app: 'echo' } }).map((p) => p.metadata?.name)).toEqual([
      'echo-everywhere',
    ]);
  });
});
