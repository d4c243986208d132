// How parity case files are read: one case per proxy, gateways found by their labels,
// objects defaulted into `default` as kubectl does, Secrets' certificates made at load.
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadParityCases } from './parity-case.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'parity-case-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const caseFile = (name: string, text: string) => {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, text);
  return file;
};

const twoProxies = `
kind: ParityCase
base: istio-ingressgateway
proxies:
  gateway: { kind: router, namespace: istio-system, labels: { istio: ingressgateway } }
  sidecar: { namespace: default, labels: { app: sleep } }
services:
  - { name: sleep, namespace: default, clusterIP: 10.96.1.40, ports: [{ name: http, port: 80 }], pods: [{ name: sleep-a, ip: 10.244.1.40 }] }
calls:
  - { from: gateway, name: through the gateway, port: 8080, protocol: http, host: a.example.com }
  - { from: sidecar, name: from the sidecar, to: sleep.default, port: 80, protocol: http, host: sleep }
---
apiVersion: v1
kind: Secret
metadata: { name: credential, namespace: istio-system }
type: kubernetes.io/tls
stringData: { tls.crt: certificate for a.example.com, tls.key: key for a.example.com, ca.crt: CA certificate, note: kept as written }
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw }
spec: { selector: { istio: ingressgateway }, servers: [{ port: { number: 80, name: http, protocol: HTTP }, hosts: ['*'] }] }
`;

describe('loadParityCases', () => {
  it('gives one case per proxy, each with the calls made from it', () => {
    const cases = loadParityCases(caseFile('two', twoProxies));
    expect(cases.map((c) => [c.name, c.calls.map((call) => call.name)])).toEqual([
      ['two/gateway', ['through the gateway']],
      ['two/sidecar', ['from the sidecar']],
    ]);
  });

  it("finds a router's pod by its namespace and labels: name, IP and ServiceAccount; its calls go to that IP", () => {
    const [gateway] = loadParityCases(caseFile('router', twoProxies));
    expect(gateway?.proxy).toMatchObject({
      kind: 'router',
      name: 'istio-ingressgateway-a',
      ip: '10.244.9.10',
      serviceAccount: 'istio-ingressgateway-service-account',
    });
    expect(gateway?.calls[0]?.address).toBe('10.244.9.10');
  });

  it('puts objects that name no namespace in default, as kubectl apply does', () => {
    const [gateway] = loadParityCases(caseFile('namespace', twoProxies));
    expect(gateway?.istio.find((o) => o.kind === 'Gateway')?.metadata?.namespace).toBe('default');
  });

  it("makes the certificates a Secret's stringData names, as data, and keeps other values as written", () => {
    const [gateway] = loadParityCases(caseFile('secret', twoProxies));
    const secret = gateway?.kube.find((o) => o.kind === 'Secret');
    const data = secret?.['data'] as Record<string, string>;
    expect(secret?.['stringData']).toBeUndefined();
    const pem = (key: string) => Buffer.from(data[key] as string, 'base64').toString();
    const server = new X509Certificate(pem('tls.crt'));
    const ca = new X509Certificate(pem('ca.crt'));
    expect(server.subject).toContain('CN=a.example.com');
    expect(server.verify(ca.publicKey)).toBe(true);
    expect(pem('tls.key')).toContain('BEGIN PRIVATE KEY');
    expect(pem('note')).toBe('kept as written');
  });

  it('refuses a call whose from names no proxy of the case, naming the call', () => {
    const file = caseFile('bad-from', twoProxies.replace('from: sidecar', 'from: sidecars'));
    expect(() => loadParityCases(file)).toThrow("call 'from the sidecar' has from: 'sidecars'");
  });

  it('refuses a router whose labels select no pod', () => {
    const file = caseFile('no-pod', twoProxies.replace('istio: ingressgateway } }', 'istio: nothing } }'));
    expect(() => loadParityCases(file)).toThrow('selects no pod of the case');
  });
});

const gatewayApiCase = `
kind: ParityCase
proxy: { kind: router, namespace: istio-ingress, labels: { gateway.networking.k8s.io/gateway-name: gateway } }
services:
  - { name: httpbin, namespace: default, clusterIP: 10.96.1.10, ports: [{ name: http, port: 8000 }], pods: [{ name: httpbin-a, ip: 10.244.1.10 }] }
  - { name: httpbin-v1, namespace: default, clusterIP: 10.96.1.11, ports: [{ name: http, port: 8000 }], pods: [{ name: httpbin-a, ip: 10.244.1.10 }] }
calls:
  - { name: through the gateway, port: 80, protocol: http, host: httpbin.example.com }
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: { name: mine }
spec: { controllerName: example.com/gateway-controller }
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: gateway, namespace: istio-ingress }
spec:
  gatewayClassName: istio
  listeners:
  - { name: default, port: 80, protocol: HTTP }
  - { name: also-80, port: 80, protocol: HTTP, hostname: a.example.com }
  - { name: tls, port: 443, protocol: TLS, tls: { mode: Passthrough } }
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: { name: tcp }
spec:
  parentRefs: [{ name: gateway, namespace: istio-ingress }]
  rules: [{ backendRefs: [{ name: httpbin, port: 8000 }] }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: http }
spec:
  parentRefs: [{ name: gateway, namespace: istio-ingress }]
  rules:
  - matches: [{ headers: [{ name: env, value: canary }] }]
    backendRefs: [{ name: httpbin, port: 8000 }]
`;

describe('loadParityCases with Kubernetes Gateway API objects', () => {
  it("adds what istiod's deployment controller makes for a Gateway of class istio: its Service, ports and pod, the case's router", () => {
    const [parity] = loadParityCases(caseFile('gateway-api', gatewayApiCase));
    const service = parity?.kube.find((o) => o.kind === 'Service' && o.metadata?.name === 'gateway-istio');
    expect(service?.metadata?.namespace).toBe('istio-ingress');
    expect(service?.spec?.['selector']).toEqual({ 'gateway.networking.k8s.io/gateway-name': 'gateway' });
    // status-port, then one port per listener port (80 once), Envoy listening on the port itself.
    expect(service?.spec?.ports).toEqual([
      { name: 'status-port', port: 15021, protocol: 'TCP', targetPort: 15021, appProtocol: 'tcp' },
      { name: 'default', port: 80, protocol: 'TCP', targetPort: 80, appProtocol: 'http' },
      { name: 'tls', port: 443, protocol: 'TCP', targetPort: 443, appProtocol: 'tls' },
    ]);
    expect(parity?.proxy).toMatchObject({ kind: 'router', name: 'gateway-istio-a', ip: '10.244.7.1', serviceAccount: 'gateway-istio' });
    expect(parity?.calls[0]?.address).toBe('10.244.7.1');
  });

  it('keeps Gateway API objects apart from Istio and Kubernetes objects, at the version Istio reads, with the CRD defaults', () => {
    const [parity] = loadParityCases(caseFile('gateway-api-kinds', gatewayApiCase));
    expect(parity?.istio).toEqual([]);
    expect(parity?.gatewayApi?.map((o) => `${o.apiVersion} ${o.kind} ${o.metadata?.namespace ?? '(cluster)'}`)).toEqual([
      'gateway.networking.k8s.io/v1 GatewayClass (cluster)',
      'gateway.networking.k8s.io/v1 Gateway istio-ingress',
      'gateway.networking.k8s.io/v1 TCPRoute default',
      'gateway.networking.k8s.io/v1 HTTPRoute default',
    ]);
    const http = parity?.gatewayApi?.find((o) => o.kind === 'HTTPRoute');
    const rule = (http?.spec?.['rules'] as Array<{ matches: unknown[] }>)[0];
    // As the API server stores it: a match without path is PathPrefix /, a header match Exact.
    expect(rule?.matches).toEqual([
      { path: { type: 'PathPrefix', value: '/' }, headers: [{ name: 'env', value: 'canary', type: 'Exact' }] },
    ]);
    expect((http?.spec?.['parentRefs'] as unknown[])[0]).toEqual({
      group: 'gateway.networking.k8s.io',
      kind: 'Gateway',
      name: 'gateway',
      namespace: 'istio-ingress',
    });
  });

  it('holds a pod two services list once', () => {
    const [parity] = loadParityCases(caseFile('gateway-api-pods', gatewayApiCase));
    expect(parity?.kube.filter((o) => o.kind === 'Pod' && o.metadata?.name === 'httpbin-a')).toHaveLength(1);
  });

  it('makes no deployment for a Gateway of a class Istio does not serve', () => {
    const file = caseFile('gateway-api-other-class', gatewayApiCase.replace('gatewayClassName: istio', 'gatewayClassName: mine'));
    expect(() => loadParityCases(file)).toThrow('selects no pod of the case');
  });
});
