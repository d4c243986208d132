import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { ConfigObject, GatewaySpec } from '../model/istio-config.js';
import { credentialSecret, gatewayCredentialReferences, gatewaySecretMessages, type GatewayWorkload } from './gateway-secret-analyzer.js';

interface KubeObject {
  kind?: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: GatewaySpec;
}

// Istio's analyzer tests run over the file plus istioctl's default ingress gateway pod (pkg/config/analysis/local/defaults.go).
const defaultIngressPod: GatewayWorkload = {
  namespace: 'istio-system',
  name: 'istio-ingressgateway-dummypod',
  labels: { istio: 'ingressgateway' },
};

function inputsOf(text: string) {
  const objects = parseAllDocuments(text)
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => !!o?.kind);
  const ns = (o: KubeObject) => o.metadata.namespace ?? 'default';
  const gateways = objects
    .filter((o) => o.kind === 'Gateway')
    .map((o): ConfigObject<GatewaySpec> => ({ kind: 'Gateway', name: o.metadata.name, namespace: ns(o), spec: o.spec ?? {} }));
  const pods = [
    defaultIngressPod,
    ...objects.filter((o) => o.kind === 'Pod').map((o) => ({ namespace: ns(o), name: o.metadata.name, labels: o.metadata.labels ?? {} })),
  ];
  const secrets = new Set(objects.filter((o) => o.kind === 'Secret').map((o) => `${ns(o)}/${o.metadata.name}`));
  return { gateways, pods, secretExists: (namespace: string, name: string) => secrets.has(`${namespace}/${name}`) };
}

const findingsOf = (text: string) => {
  const { gateways, pods, secretExists } = inputsOf(text);
  return gateways.flatMap((g) => gatewaySecretMessages(g, pods, secretExists).map((m) => `${m.code} ${g.name}: ${m.message}`));
};

describe("Istio's gateway.SecretAnalyzer: IST0101 for a credentialName with no Secret", () => {
  it("gateway-secrets.yaml (Istio's testdata and expectations)", () => {
    const text = readFileSync(join(import.meta.dirname, 'testdata', 'analyzers', 'gateway-secrets.yaml'), 'utf8');
    expect(findingsOf(text)).toEqual([
      'IST0101 defaultgateway-bogusCredentialName: Referenced credentialName not found: "httpbin-credential-bogus"',
      'IST0101 customgateway-wrongnamespace: Referenced selector not found: "istio=custom-gateway"',
      'IST0101 bogusgateway: Referenced selector not found: "istio=custom-gateway"',
    ]);
  });

  const gateway = (credentialName: string, namespace = 'shop') => `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: edge, namespace: ${namespace} }
spec:
  selector: { app: edge-gateway }
  servers:
    - port: { number: 443, name: https, protocol: HTTPS }
      hosts: [shop.example.com]
      tls: { mode: SIMPLE, credentialName: ${JSON.stringify(credentialName)} }
---
apiVersion: v1
kind: Pod
metadata: { name: edge-gateway-0, namespace: gateways, labels: { app: edge-gateway } }
`;
  const secret = (namespace: string, name: string) => `
---
apiVersion: v1
kind: Secret
metadata: { name: ${name}, namespace: ${namespace} }
`;

  it("looks in the namespace of the selected workloads, not the Gateway's", () => {
    expect(findingsOf(gateway('shop-cert') + secret('shop', 'shop-cert'))).toEqual([
      'IST0101 edge: Referenced credentialName not found: "shop-cert"',
    ]);
    expect(findingsOf(gateway('shop-cert') + secret('gateways', 'shop-cert'))).toEqual([]);
  });

  it('reads `namespace/name` as a Secret of that namespace, as Istio', () => {
    expect(findingsOf(gateway('shop/shop-cert') + secret('shop', 'shop-cert'))).toEqual([]);
    expect(findingsOf(gateway('shop/shop-cert') + secret('gateways', 'shop-cert'))).toEqual([
      'IST0101 edge: Referenced credentialName not found: "shop/shop-cert"',
    ]);
  });

  it('reads SDS prefixes as the SDS server does, and skips names that are no Secret', () => {
    expect(findingsOf(gateway('kubernetes://shop-cert') + secret('gateways', 'shop-cert'))).toEqual([]);
    expect(findingsOf(gateway('kubernetes://shop-cert'))).toEqual([
      'IST0101 edge: Referenced credentialName not found: "kubernetes://shop-cert"',
    ]);
    expect(findingsOf(gateway('kubernetes-gateway://shop/shop-cert') + secret('shop', 'shop-cert'))).toEqual([]);
    expect(findingsOf(gateway('builtin://'))).toEqual([]);
    expect(credentialSecret('kubernetes://other/cert/ignored', 'gateways')).toEqual({
      namespace: 'other',
      name: 'cert',
      credentialName: 'kubernetes://other/cert/ignored',
    });
    expect(credentialSecret('configmap://gateways/ca', 'gateways')).toBeUndefined();
    expect(credentialSecret('kubernetes-gateway://only-namespace/', 'gateways')).toBeUndefined();
    expect(credentialSecret('kubernetes-gateway://cert', 'gateways')).toBeUndefined();
  });

  it('does not require the -cacert companion of a MUTUAL server', () => {
    const mutual = gateway('shop-cert').replace('mode: SIMPLE', 'mode: MUTUAL');
    expect(findingsOf(mutual + secret('gateways', 'shop-cert'))).toEqual([]);
  });

  it('lists the Secrets to look up, and does not report one that could not be read', () => {
    const { gateways, pods } = inputsOf(gateway('shop-cert'));
    const edge = gateways[0] as ConfigObject<GatewaySpec>;
    expect(gatewayCredentialReferences(edge, pods)).toEqual([{ namespace: 'gateways', name: 'shop-cert', credentialName: 'shop-cert' }]);
    expect(gatewaySecretMessages(edge, pods, () => undefined)).toEqual([]);
  });
});
