// Istio's APIs on the real apiserver with Weft installed: the CRDs' structural schemas and CEL
// rules, then weftd's /validate webhook (the ValidatingWebhookConfiguration the operator generates,
// weftd running as the process of its own kwok pod).
import { AdmissionregistrationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { ensureClusterBinaries } from '../../testing/cluster/binaries.js';
import { installMeshDemo } from '../../testing/cluster/mesh-demo.js';
import type { PodProcessRunner } from '../../testing/cluster/pod-processes.js';
import { describeWithCluster } from '../../testing/jest/local-cluster-fixture.js';
import { createNamespace, eventually, kubectl } from '../../testing/jest/kube-helpers.js';

const virtualService = (name: string, weights: number[], apiVersion = 'networking.istio.io/v1') => `
apiVersion: ${apiVersion}
kind: VirtualService
metadata:
  name: ${name}
  namespace: bookinfo
spec:
  hosts:
  - reviews
  http:
  - route:
${weights.map((weight, i) => `    - destination:\n        host: reviews\n        subset: v${i + 1}\n      weight: ${weight}`).join('\n')}
`;

describeWithCluster('Istio API validation', (cluster) => {
  let kc: KubeConfig;
  let runner: PodProcessRunner;
  let kubectlPath: string;
  const apply = (yaml: string) => kubectl(cluster(), kubectlPath, ['apply', '-f', '-'], yaml);

  beforeAll(async () => {
    const binaries = await ensureClusterBinaries(undefined, { allowBuild: false });
    kubectlPath = binaries.kubectl;
    kc = cluster().kubeConfig();
    runner = await installMeshDemo(cluster(), binaries, process.cwd(), () => {});
    await eventually('weftd to set the caBundle of its validating webhook', async () => {
      const hook = await kc
        .makeApiClient(AdmissionregistrationV1Api)
        .readValidatingWebhookConfiguration({ name: 'weft-validator-weft-system' });
      return hook.webhooks?.every((w) => w.clientConfig.caBundle) ? hook : undefined;
    });
    await createNamespace(kc, 'bookinfo');
  }, 120_000);

  afterAll(async () => {
    await runner?.stop();
  });

  it("serves Istio's CRDs in every version Istio serves", () => {
    const result = kubectl(cluster(), kubectlPath, ['api-versions']);
    expect(result.stdout.split('\n')).toEqual(
      expect.arrayContaining([
        'networking.istio.io/v1',
        'networking.istio.io/v1beta1',
        'networking.istio.io/v1alpha3',
        'security.istio.io/v1',
        'security.istio.io/v1beta1',
        'telemetry.istio.io/v1',
      ]),
    );
  });

  it('admits a good VirtualService, even before the DestinationRule that defines its subsets', () => {
    const result = apply(virtualService('reviews', [75, 25]));
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('admits relative weights (60/60) and refuses a split whose weights are all 0, naming the field', () => {
    const relative = apply(virtualService('reviews-split', [60, 60]));
    expect(relative.stderr).toBe('');
    expect(relative.status).toBe(0);
    const result = apply(virtualService('reviews-zero', [0, 0]));
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('admission webhook "validation.weft.dev" denied the request');
    expect(result.stderr).toContain('spec.http[0].route: total destination weight = 0');
    // An update that breaks a stored object is refused the same way.
    const update = apply(virtualService('reviews', [0, 0]));
    expect(update.stderr).toContain('spec.http[0].route: total destination weight = 0');
  });

  it('refuses what the structural schema and CEL rules refuse, before the webhook', () => {
    const wrongType = apply(virtualService('reviews-typed', [100]).replace('  hosts:\n  - reviews', '  hosts: reviews'));
    expect(wrongType.status).not.toBe(0);
    expect(wrongType.stderr).toMatch(/spec\.hosts/);
    const celRule = apply(`${virtualService('reviews-timeout', [100])}    timeout: 0s\n`);
    expect(celRule.status).not.toBe(0);
    expect(celRule.stderr).toContain('spec.http[0].timeout');
    expect(celRule.stderr).not.toContain('validation.weft.dev');
  });

  it('admits a v1alpha3 VirtualService with a deprecation warning', () => {
    const result = apply(virtualService('reviews-old', [100], 'networking.istio.io/v1alpha3'));
    expect(result.status).toBe(0);
    expect(result.stderr).toContain('Warning: apiVersion: networking.istio.io/v1alpha3 VirtualService is deprecated');
  });

  it('validates DestinationRules', () => {
    const good = apply(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: bookinfo }
spec:
  host: reviews
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
`);
    expect(good.status).toBe(0);
    const bad = apply(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: db, namespace: bookinfo }
spec:
  host: db.example.com
  trafficPolicy: { tls: { mode: MUTUAL } }
  subsets:
  - { name: v1 }
  - { name: v1 }
`);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('validation.weft.dev');
    expect(bad.stderr).toContain('spec.trafficPolicy.tls.clientCertificate: client certificate required');
    expect(bad.stderr).toContain('spec.subsets[1].name: duplicate subset name "v1"');
  });

  it('validates AuthorizationPolicies', () => {
    const good = apply(`
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: httpbin, namespace: bookinfo }
spec:
  selector: { matchLabels: { app: httpbin } }
  action: ALLOW
  rules:
  - from: [{ source: { principals: [cluster.local/ns/default/sa/sleep] } }]
    to: [{ operation: { methods: [GET] } }]
`);
    expect(good.status).toBe(0);
    const bad = apply(`
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ext-authz, namespace: bookinfo }
spec:
  action: CUSTOM
  rules:
  - from: [{ source: { principals: [spiffe://cluster.local/ns/default/sa/sleep] } }]
    when: [{ key: request.colour, values: [red] }]
`);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('validation.weft.dev');
    expect(bad.stderr).toContain('spec.provider.name: action CUSTOM needs provider.name');
    expect(bad.stderr).toContain('spec.rules[0].from[0].source.principals[0]');
    expect(bad.stderr).toContain('spec.rules[0].when[0].key: unknown condition key "request.colour"');
  });
});
