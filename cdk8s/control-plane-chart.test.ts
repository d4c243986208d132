import { join } from 'node:path';
import { stringify } from 'yaml';
import { labels } from '../api/labels.js';
import { expectMatchesGolden } from '../testing/jest/golden.js';
import { meshInstallation } from '../testing/fixtures/mesh-installation.js';
import { controlPlaneManifests, type ControlPlaneInput } from './control-plane-chart.js';
import type { Manifest } from './synth.js';

const testdata = join(import.meta.dirname, 'testdata');
const synth = (installation: ControlPlaneInput['installation']) => controlPlaneManifests({ installation, operatorVersion: '0.1.0' });
const find = (manifests: Manifest[], kind: string) => manifests.filter((m) => m.kind === kind);
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

  it('injects into namespaces labelled weft-injection=enabled, and istio-injection=enabled unless told not to', () => {
    const hooks = only(synth(meshInstallation('a')), 'MutatingWebhookConfiguration').webhooks;
    expect(hooks.map((h: { name: string }) => h.name)).toEqual([
      'namespace.sidecar-injector.weft.dev',
      'istio.namespace.sidecar-injector.weft.dev',
      'object.sidecar-injector.weft.dev',
    ]);
    expect(hooks[2].objectSelector.matchExpressions[0]).toEqual({ key: 'sidecar.istio.io/inject', operator: 'In', values: ['true'] });
    expect(hooks[0].namespaceSelector.matchExpressions[0]).toEqual({ key: 'weft-injection', operator: 'In', values: ['enabled'] });
    expect(hooks[0].objectSelector.matchExpressions[0]).toEqual({ key: 'sidecar.istio.io/inject', operator: 'NotIn', values: ['false'] });
    expect(hooks[0].clientConfig).toEqual({ service: { name: 'weftd', namespace: 'weft-system', path: '/inject', port: 443 } });
    expect(hooks[0].clientConfig.caBundle).toBeUndefined();

    const weftOnly = only(
      synth(meshInstallation('a', { injection: { honorIstioLabels: false, failurePolicy: 'Ignore' } })),
      'MutatingWebhookConfiguration',
    );
    expect(weftOnly.webhooks.map((h: { name: string }) => h.name)).toEqual([
      'namespace.sidecar-injector.weft.dev',
      'object.sidecar-injector.weft.dev',
    ]);
    expect(weftOnly.webhooks[0].failurePolicy).toBe('Ignore');
  });

  it('never injects the control plane namespace or kube-system', () => {
    const hook = only(synth(meshInstallation('a', { namespace: 'mesh' })), 'MutatingWebhookConfiguration').webhooks[0];
    expect(hook.namespaceSelector.matchExpressions).toContainEqual({
      key: 'kubernetes.io/metadata.name',
      operator: 'NotIn',
      values: ['kube-system', 'kube-public', 'kube-node-lease', 'mesh'],
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
    for (const rule of clusterRole.rules) expect(rule.resources).not.toContain('secrets');
  });
});
