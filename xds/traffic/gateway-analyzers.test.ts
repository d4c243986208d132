import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { emptyIstioConfig, type ConfigObject, type GatewaySpec, type VirtualServiceSpec } from '../model/istio-config.js';
import type { MeshModel, MeshService } from '../model/mesh-model.js';
import { conflictingGateways, gatewayWorkloadMessages, virtualServiceGatewayHostMessages } from './gateway-analyzers.js';

// Istio's analyzer tests run over the file plus istioctl's default ingress gateway (pkg/config/analysis/local/defaults.go).
const defaultIngress = `
apiVersion: v1
kind: Pod
metadata: { labels: { istio: ingressgateway }, name: istio-ingressgateway-dummypod, namespace: istio-system }
---
apiVersion: v1
kind: Service
metadata: { name: istio-ingressgateway, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  ports:
    - { name: http2, port: 80, protocol: TCP, targetPort: 80 }
    - { name: https, port: 443, protocol: TCP, targetPort: 443 }
    - { name: tcp, port: 31400, protocol: TCP, targetPort: 31400 }
    - { name: tls, port: 15443, protocol: TCP, targetPort: 15443 }
`;

interface KubeObject {
  kind?: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
}

/** Istio's analyzer testdata as a mesh model: each Service's endpoints are the pods its selector picks, as the endpoints controller would. */
function meshOf(
  file: string,
  extra = '',
): {
  model: MeshModel;
  gateways: Array<ConfigObject<GatewaySpec>>;
  virtualServices: Array<ConfigObject<VirtualServiceSpec>>;
} {
  const text = readFileSync(join(import.meta.dirname, 'testdata', 'analyzers', file), 'utf8');
  const objects = [...parseAllDocuments(text), ...parseAllDocuments(defaultIngress), ...parseAllDocuments(extra)]
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => !!o?.kind);
  const ns = (o: KubeObject) => o.metadata.namespace ?? 'default';
  const pods = objects.filter((o) => o.kind === 'Pod');
  const services: MeshService[] = objects
    .filter((o) => o.kind === 'Service')
    .map((service) => {
      const selector = (service.spec?.['selector'] ?? {}) as Record<string, string>;
      const ports = (service.spec?.['ports'] ?? []) as Array<{
        name?: string;
        port: number;
        protocol?: string;
        targetPort?: number | string;
      }>;
      return {
        name: service.metadata.name,
        namespace: ns(service),
        selector,
        ports: ports.map((p) => ({
          name: p.name ?? '',
          port: p.port,
          protocol: p.protocol ?? 'TCP',
          ...(typeof p.targetPort === 'number' ? { targetPort: p.targetPort } : {}),
        })),
        endpoints: pods
          .filter((pod) => ns(pod) === ns(service) && Object.entries(selector).every(([k, v]) => pod.metadata.labels?.[k] === v))
          .map((pod) => ({ address: '10.0.0.1', labels: pod.metadata.labels ?? {}, ports: {} })),
      };
    });
  const config = <S>(kind: string) =>
    objects
      .filter((o) => o.kind === kind)
      .map((o) => ({ kind, name: o.metadata.name, namespace: ns(o), spec: o.spec as S }) as ConfigObject<S>);
  const gateways = config<GatewaySpec>('Gateway');
  const virtualServices = config<VirtualServiceSpec>('VirtualService');
  return {
    model: { clusterDomain: 'cluster.local', services, istio: { ...emptyIstioConfig(), gateways, virtualServices } } as MeshModel,
    gateways,
    virtualServices,
  };
}

/** What Istio's analyzers_test.go lists: `<code> <namespace>/<name>` per message. */
function gatewayFindings(file: string): string[] {
  const { model, gateways } = meshOf(file);
  return gateways.flatMap((g) => gatewayWorkloadMessages(g, model).map((m) => `${m.code} ${g.namespace}/${g.name}`));
}

describe("Istio's gateway.IngressGatewayPortAnalyzer (its analyzer testdata and expectations)", () => {
  it.each([
    ['gateway-no-workload.yaml', ['IST0101 default/httpbin-gateway']],
    ['gateway-no-port.yaml', ['IST0162 default/httpbin-gateway']],
    ['gateway-correct-port.yaml', []],
    ['gateway-custom-ingressgateway.yaml', []],
    ['gateway-custom-ingressgateway-badport.yaml', ['IST0162 default/httpbin-gateway']],
    ['gateway-custom-ingressgateway-badport-notarget.yaml', ['IST0162 default/httpbin-gateway']],
    ['gateway-custom-ingressgateway-translation.yaml', []],
    ['gateway-custom-ingressgateway-svcselector.yaml', ['IST0162 default/httpbin8002-gateway']],
  ])('%s', (file, expected) => {
    expect(gatewayFindings(file)).toEqual(expected);
  });

  it("says which port and selector, in Istio's words", () => {
    const { model, gateways } = meshOf('gateway-no-port.yaml');
    expect(gatewayWorkloadMessages(gateways[0] as ConfigObject<GatewaySpec>, model)).toEqual([
      {
        code: 'IST0162',
        name: 'GatewayPortNotDefinedOnService',
        level: 'WARNING',
        message:
          'The gateway is listening on a target port (port 8004) that is not defined in the Service associated with its workload instances (Pod selector istio=ingressgateway). If you need to access the gateway port through the gateway Service, it will not be available.',
      },
    ]);
  });
});

describe("Istio's gateway.ConflictingGatewayAnalyzer", () => {
  const podService = `
apiVersion: v1
kind: Service
metadata: { name: my-ingressgateway, namespace: default }
spec: { selector: { cusKey: cusValue }, ports: [{ name: http, port: 80, protocol: TCP }] }
`;
  it.each([
    ['conflicting-gateways.yaml', ['alpha', 'beta']],
    ['gateway-different-port.yaml', []],
    ['conflicting-gateways-multiple-ports.yaml', ['alpha', 'beta']],
    // Weft sees workloads through Services: this file's pods get one (Istio's analyzer lists every pod).
    ['conflicting-gateways-subSelector.yaml', ['alpha', 'beta'], podService],
    ['conflicting-gateways-invalid-port.yaml', []],
  ])('%s', (file, expected, extra = '') => {
    const { model, gateways } = meshOf(file, extra);
    const found = conflictingGateways(gateways, model);
    expect([...found.keys()].map((key) => key.split('/')[1]).sort()).toEqual(expected);
    for (const messages of found.values()) expect(messages.every((m) => m.code === 'IST0145' && m.level === 'ERROR')).toBe(true);
  });
});

describe("Istio's virtualservice.GatewayAnalyzer: IST0132", () => {
  const findings = (file: string) => {
    const { gateways, virtualServices } = meshOf(file);
    const byKey = new Map(gateways.map((g) => [`${g.namespace}/${g.name}`, g]));
    return virtualServices
      .flatMap((vs) => virtualServiceGatewayHostMessages(vs, byKey).map((m) => `${m.code} ${vs.namespace}/${vs.name}`))
      .sort();
  };
  it.each([
    ['virtualservice_gateways.yaml', ['IST0132 default/cross-test', 'IST0132 default/httpbin', 'IST0132 default/httpbin-bogus']],
    [
      'virtualservice_host_not_found_gateway.yaml',
      [
        'IST0132 default/testing-service-02-test-01',
        'IST0132 default/testing-service-02-test-02',
        'IST0132 default/testing-service-02-test-03',
        'IST0132 default/testing-service-03-test-04',
      ],
    ],
    ['virtualservice_host_not_found_gateway_with_ns_prefix.yaml', ['IST0132 default/testing-service-01-test-01']],
  ])('%s', (file, expected) => {
    expect(findings(file)).toEqual(expected);
  });
});
