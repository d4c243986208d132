import { join } from 'node:path';
import { stringify } from 'yaml';
import { labels } from '../api/labels.js';
import { selectorMatches, type LabelSelector } from '../istio/injection/injection-policy.js';
import { expectMatchesGolden } from '../testing/jest/golden.js';
import { meshInstallation } from '../testing/fixtures/mesh-installation.js';
import { controlPlaneManifests, type ControlPlaneInput } from './control-plane-chart.js';
import type { Manifest } from './synth.js';
import { injectionConfigFromValues } from '../webhooks/injection/injection-config.js';

const testdata = join(import.meta.dirname, 'testdata');
const synth = (installation: ControlPlaneInput['installation']) => controlPlaneManifests({ installation, operatorVersion: '0.1.0' });
// weftd's own objects: gateways (cdk8s/gateway-chart.test.ts) have theirs.
const find = (manifests: Manifest[], kind: string) =>
  manifests.filter((m) => m.kind === kind && m.metadata.labels?.[labels.component] !== 'gateway');
const only = (manifests: Manifest[], kind: string): Manifest & Record<string, any> => {
  const found = find(manifests, kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`);
  return found[0] as Manifest & Record<string, any>;
};

describe('control-plane chart', () => {
  it('synthesizes the default installation exactly as reviewed', () => {
    const manifests = synth(meshInstallation('default', {}, '9b0e3c9e-1111-4222-8333-444455556666'));
    expectMatchesGolden(join(testdata, 'default-installation.yaml'), manifests.map((m) => stringify(m)).join('---\n'));
  });

  it('synthesizes the demo profile with a revision exactly as reviewed', () => {
    const manifests = synth(meshInstallation('canary', { profile: 'demo', revision: 'canary', namespace: 'weft-canary' }));
    expectMatchesGolden(join(testdata, 'demo-revision.yaml'), manifests.map((m) => stringify(m)).join('---\n'));
  });

  it("passes the operator's OTLP exporter settings to weftd", () => {
    const manifests = controlPlaneManifests({
      installation: meshInstallation('default', {}),
      operatorVersion: '0.1.0',
      tracingEnv: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel-collector.observability:4318' },
    });
    const env = only(manifests, 'Deployment')['spec'].template.spec.containers[0].env as Array<{ name: string; value?: string }>;
    expect(env.at(-1)).toEqual({ name: 'OTEL_EXPORTER_OTLP_ENDPOINT', value: 'http://otel-collector.observability:4318' });
  });

  it("hands spec.dashboard.prometheus.url to weftd, and nothing when it is unset (the dashboard's load reports only)", () => {
    type Env = Array<{ name: string; value?: string }>;
    const env = (spec: Parameters<typeof meshInstallation>[1]) =>
      only(synth(meshInstallation('default', spec)), 'Deployment')['spec'].template.spec.containers[0].env as Env;
    expect(env({ dashboard: { prometheus: { url: 'http://prometheus.istio-system:9090' } } })).toContainEqual({
      name: 'WEFT_PROMETHEUS_URL',
      value: 'http://prometheus.istio-system:9090',
    });
    expect(env({}).map((e) => e.name)).not.toContain('WEFT_PROMETHEUS_URL');
  });

  it('is a pure function of the spec', () => {
    const installation = meshInstallation('default', { profile: 'minimal' });
    expect(synth(installation)).toEqual(synth(structuredClone(installation)));
  });

  it('labels every object with its installation and gives stable names', () => {
    const manifests = synth(meshInstallation('prod'));
    for (const manifest of manifests) {
      expect(manifest.metadata.labels?.[labels.installation]).toBe('prod');
      expect(manifest.metadata.labels?.[labels.managedBy]).toBe('weft-operator');
      expect(manifest.metadata.name).not.toMatch(/-[0-9a-f]{8}$/);
    }
    expect(only(manifests, 'Deployment').metadata).toMatchObject({ name: 'weftd', namespace: 'weft-system' });
    expect(only(manifests, 'MutatingWebhookConfiguration').metadata.name).toBe('weft-sidecar-injector-weft-system');
  });

  it('takes replicas from the profile unless the spec sets them, with a PDB only above one replica', () => {
    expect(only(synth(meshInstallation('a')), 'Deployment').spec.replicas).toBe(2);
    expect(find(synth(meshInstallation('a')), 'PodDisruptionBudget')).toHaveLength(1);
    expect(only(synth(meshInstallation('b', { profile: 'minimal' })), 'Deployment').spec.replicas).toBe(1);
    expect(find(synth(meshInstallation('b', { profile: 'minimal' })), 'PodDisruptionBudget')).toHaveLength(0);
    expect(only(synth(meshInstallation('c', { profile: 'minimal', controlPlane: { replicas: 3 } })), 'Deployment').spec.replicas).toBe(3);
  });

  it("writes Istio's injector webhooks: revision label first, then weft-injection/istio-injection, then the pod opt-in", () => {
    const hooks = only(synth(meshInstallation('a')), 'MutatingWebhookConfiguration').webhooks;
    expect(hooks.map((h: { name: string }) => h.name)).toEqual([
      'rev.namespace.sidecar-injector.weft.dev',
      'rev.object.sidecar-injector.weft.dev',
      'namespace.sidecar-injector.weft.dev',
      'istio.namespace.sidecar-injector.weft.dev',
      'object.sidecar-injector.weft.dev',
      'probe.weft.dev',
    ]);
    expect(hooks[4].objectSelector.matchExpressions[0]).toEqual({ key: 'sidecar.istio.io/inject', operator: 'In', values: ['true'] });
    expect(hooks[2].namespaceSelector.matchExpressions[0]).toEqual({ key: 'weft-injection', operator: 'In', values: ['enabled'] });
    expect(hooks[2].objectSelector.matchExpressions[0]).toEqual({ key: 'sidecar.istio.io/inject', operator: 'NotIn', values: ['false'] });
    expect(hooks[0].clientConfig).toEqual({ service: { name: 'weftd', namespace: 'weft-system', path: '/inject', port: 443 } });
    expect(hooks[0].clientConfig.caBundle).toBeUndefined();

    const weftOnly = only(
      synth(meshInstallation('a', { injection: { honorIstioLabels: false, failurePolicy: 'Ignore' } })),
      'MutatingWebhookConfiguration',
    );
    expect(weftOnly.webhooks.map((h: { name: string }) => h.name)).toEqual([
      'namespace.sidecar-injector.weft.dev',
      'object.sidecar-injector.weft.dev',
      'probe.weft.dev',
    ]);
    expect(weftOnly.webhooks[0].failurePolicy).toBe('Ignore');
  });

  // What the API server does with the written selectors, for the cases of Istio's mutatingwebhook.yaml.
  describe('the written selectors call the webhook exactly where Istio would', () => {
    const hooksOf = (spec: Parameters<typeof meshInstallation>[1] = {}) =>
      only(synth(meshInstallation('a', spec)), 'MutatingWebhookConfiguration').webhooks as Array<{
        name: string;
        namespaceSelector: LabelSelector;
        objectSelector: LabelSelector;
      }>;
    const called = (
      hooks: ReturnType<typeof hooksOf>,
      namespace: string,
      nsLabels: Record<string, string>,
      podLabels: Record<string, string> = {},
    ) =>
      hooks
        .filter(
          (h) =>
            selectorMatches(h.namespaceSelector, { ...nsLabels, 'kubernetes.io/metadata.name': namespace }) &&
            selectorMatches(h.objectSelector, podLabels),
        )
        .map((h) => h.name);
    const byDefault = hooksOf();
    const canary = hooksOf({ revision: 'canary', namespace: 'weft-canary' });
    it.each([
      [
        'istio-injection=enabled and istio.io/rev=canary: the default revision',
        { 'istio-injection': 'enabled', 'istio.io/rev': 'canary' },
        {},
        ['istio.namespace.sidecar-injector.weft.dev'],
        [],
      ],
      ['istio.io/rev=canary alone: the canary revision', { 'istio.io/rev': 'canary' }, {}, [], ['rev.namespace.sidecar-injector.weft.dev']],
      ['istio.io/rev=default: the default revision', { 'istio.io/rev': 'default' }, {}, ['rev.namespace.sidecar-injector.weft.dev'], []],
      ['unlabelled namespace, pod istio.io/rev=canary', {}, { 'istio.io/rev': 'canary' }, [], ['rev.object.sidecar-injector.weft.dev']],
      [
        'unlabelled namespace, pod sidecar.istio.io/inject=true',
        {},
        { 'sidecar.istio.io/inject': 'true' },
        ['object.sidecar-injector.weft.dev'],
        [],
      ],
      [
        'unlabelled namespace, pod inject=true and istio.io/rev=canary',
        {},
        { 'sidecar.istio.io/inject': 'true', 'istio.io/rev': 'canary' },
        [],
        ['rev.object.sidecar-injector.weft.dev'],
      ],
      ['weft-injection=enabled, pod opted out', { 'weft-injection': 'enabled' }, { 'sidecar.istio.io/inject': 'false' }, [], []],
      ['istio-injection=disabled, pod inject=true', { 'istio-injection': 'disabled' }, { 'sidecar.istio.io/inject': 'true' }, [], []],
      [
        'weft-injection=enabled over istio-injection=disabled',
        { 'weft-injection': 'enabled', 'istio-injection': 'disabled' },
        {},
        ['namespace.sidecar-injector.weft.dev'],
        [],
      ],
      ['unlabelled namespace, plain pod', {}, {}, [], []],
    ])('%s', (_, nsLabels, podLabels, defaultHooks, canaryHooks) => {
      expect(called(byDefault, 'shop', nsLabels, podLabels)).toEqual(defaultHooks);
      expect(called(canary, 'shop', nsLabels, podLabels)).toEqual(canaryHooks);
    });
    it("calls a revision for the namespaces labelled with one of its tags (Istio's revision tags)", () => {
      const tagged = hooksOf({ revision: 'canary', namespace: 'weft-canary', injection: { revisionTags: ['prod-stable'] } });
      expect(called(tagged, 'shop', { 'istio.io/rev': 'prod-stable' })).toEqual(['rev.namespace.sidecar-injector.weft.dev']);
      expect(called(canary, 'shop', { 'istio.io/rev': 'prod-stable' })).toEqual([]);
    });
    it('never calls it for the control plane namespace or kube-system, whatever their labels', () => {
      expect(called(byDefault, 'weft-system', { 'weft-injection': 'enabled' })).toEqual([]);
      expect(called(byDefault, 'kube-system', { 'istio-injection': 'enabled' })).toEqual([]);
      expect(called(canary, 'weft-canary', { 'istio.io/rev': 'canary' })).toEqual([]);
    });
  });

  it('never injects the control plane namespace or kube-system', () => {
    const podHooks = only(synth(meshInstallation('a', { namespace: 'mesh' })), 'MutatingWebhookConfiguration').webhooks.filter(
      (hook: { rules: Array<{ resources: string[] }> }) => hook.rules[0]?.resources.includes('pods'),
    );
    expect(podHooks).toHaveLength(5);
    for (const hook of podHooks) {
      expect(hook.namespaceSelector.matchExpressions).toContainEqual({
        key: 'kubernetes.io/metadata.name',
        operator: 'NotIn',
        values: ['kube-system', 'kube-public', 'kube-node-lease', 'local-path-storage', 'mesh'],
      });
    }
  });

  it("routes only probe ConfigMaps in weftd's own namespace to the readiness probe webhooks", () => {
    const manifests = synth(meshInstallation('a', { namespace: 'mesh' }));
    const probes = [
      ...only(manifests, 'MutatingWebhookConfiguration').webhooks,
      ...only(manifests, 'ValidatingWebhookConfiguration').webhooks,
    ].filter((hook: { name: string }) => hook.name.startsWith('probe.'));
    expect(probes.map((hook: { clientConfig: { service: { path: string } } }) => hook.clientConfig.service.path)).toEqual([
      '/probe/mutate',
      '/probe/validate',
    ]);
    for (const hook of probes) {
      expect(hook.rules).toEqual([
        { operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['configmaps'], scope: 'Namespaced' },
      ]);
      expect(hook.namespaceSelector).toEqual({
        matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['mesh'] }],
      });
      expect(hook.objectSelector).toEqual({ matchExpressions: [{ key: 'weft.dev/webhook-probe', operator: 'Exists' }] });
      expect(hook.failurePolicy).toBe('Ignore');
    }
  });

  it("hands Istio's injector settings (policy, never/always selectors, tags) to weftd's injector", () => {
    const selector = { matchLabels: { 'batch.example.com/job': 'true' } };
    const manifests = synth(
      meshInstallation('a', {
        injection: { policy: 'disabled', revisionTags: ['stable'], neverInjectSelector: [selector], alwaysInjectSelector: [selector] },
      }),
    );
    const injector = (find(manifests, 'ConfigMap') as Array<Manifest & { data: Record<string, string> }>).find(
      (c) => c.metadata.name === 'weft-sidecar-injector',
    );
    const config = injectionConfigFromValues(injector?.data['values'] ?? '{}', 'weft-system', true);
    expect(config).toMatchObject({
      policy: 'disabled',
      revisionTags: ['stable'],
      neverInjectSelector: [selector],
      alwaysInjectSelector: [selector],
    });
  });

  it('rolls out proxy image and mTLS mode changes through the config maps', () => {
    const manifests = synth(
      meshInstallation('a', { proxy: { image: 'example.com/proxyv2:9.9' }, meshConfig: { mtls: { mode: 'STRICT' } } }),
    );
    const configMaps = find(manifests, 'ConfigMap') as Array<Manifest & { data: Record<string, string> }>;
    const injector = configMaps.find((c) => c.metadata.name === 'weft-sidecar-injector');
    const mesh = configMaps.find((c) => c.metadata.name === 'weft');
    expect(JSON.parse(injector?.data['values'] ?? '{}').proxy.image).toBe('example.com/proxyv2:9.9');
    expect(mesh?.data['mesh']).toContain('mtlsMode: STRICT');
  });

  it('runs weftd least-privileged: non-root, read-only root, no capabilities', () => {
    const pod = only(synth(meshInstallation('a')), 'Deployment').spec.template.spec;
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(pod.containers[0].securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
    });
    const clusterRole = only(synth(meshInstallation('a')), 'ClusterRole');
    // Secrets cluster-wide only to read (SDS serves gateway certificates from any namespace); writes stay in weftd's namespace.
    for (const rule of clusterRole.rules) if (rule.resources.includes('secrets')) expect(rule.verbs).toEqual(['get', 'list', 'watch']);
  });
});
