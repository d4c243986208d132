import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import fastJsonPatch from 'fast-json-patch';
import { parse, stringify } from 'yaml';
import { expectMatchesGolden } from '../../testing/jest/golden.js';
import { reviewInjection } from '../admission-review.js';
import { decideInjection, decideOfflineInjection } from './decision.js';
import { injectPod } from './inject-pod.js';
import { defaultInjectionConfig, injectionConfigFromValues, type InjectionConfig } from './injection-config.js';

const testdata = join(import.meta.dirname, 'testdata');
const basePod = parse(readFileSync(join(testdata, 'deployment-pod.yaml'), 'utf8')) as V1Pod;
const pod = (change: (p: V1Pod) => void = () => {}): V1Pod => {
  const copy = structuredClone(basePod);
  change(copy);
  return copy;
};
const labelled = { 'weft-injection': 'enabled' };

interface Case {
  name: string;
  pod: V1Pod;
  namespace?: string;
  namespaceLabels?: Record<string, string>;
  config?: Partial<InjectionConfig>;
}

const cases: Case[] = [
  { name: 'labelled-namespace', pod: pod(), namespaceLabels: labelled },
  { name: 'unlabelled-namespace', pod: pod(), namespaceLabels: {} },
  { name: 'pod-opt-out', pod: pod((p) => (p.metadata!.labels!['sidecar.istio.io/inject'] = 'false')), namespaceLabels: labelled },
  {
    name: 'pod-opt-in-unlabelled-namespace',
    pod: pod((p) => (p.metadata!.labels!['sidecar.istio.io/inject'] = 'true')),
    namespaceLabels: {},
  },
  { name: 'istio-injection-label', pod: pod(), namespaceLabels: { 'istio-injection': 'enabled' } },
  { name: 'istio-labels-not-honoured', pod: pod(), namespaceLabels: { 'istio-injection': 'enabled' }, config: { honorIstioLabels: false } },
  {
    name: 'namespace-disabled',
    pod: pod((p) => (p.metadata!.labels!['sidecar.istio.io/inject'] = 'true')),
    namespaceLabels: { 'weft-injection': 'disabled' },
  },
  { name: 'host-network', pod: pod((p) => (p.spec!.hostNetwork = true)), namespaceLabels: labelled },
  { name: 'control-plane-namespace', pod: pod(), namespace: 'weft-system', namespaceLabels: labelled },
  { name: 'revision-selected', pod: pod(), namespaceLabels: { 'istio.io/rev': 'canary' }, config: { revision: 'canary' } },
  { name: 'revision-other', pod: pod(), namespaceLabels: { 'istio.io/rev': 'stable' }, config: { revision: 'canary' } },
  {
    name: 'probes-not-rewritten',
    pod: pod((p) => (p.metadata!.annotations = { 'sidecar.istio.io/rewriteAppHTTPProbers': 'false' })),
    namespaceLabels: labelled,
  },
  {
    name: 'proxy-annotations',
    pod: pod(
      (p) =>
        (p.metadata!.annotations = {
          'sidecar.istio.io/proxyCPU': '300m',
          'sidecar.istio.io/proxyMemory': '256Mi',
          'sidecar.istio.io/proxyCPULimit': '1',
          'sidecar.istio.io/proxyMemoryLimit': '512Mi',
          'sidecar.istio.io/proxyImage': 'registry.example/proxyv2:custom',
          'sidecar.istio.io/logLevel': 'debug',
        }),
    ),
    namespaceLabels: labelled,
  },
  {
    name: 'traffic-annotations',
    pod: pod(
      (p) =>
        (p.metadata!.annotations = {
          'traffic.sidecar.istio.io/excludeInboundPorts': '9901',
          'traffic.sidecar.istio.io/excludeOutboundPorts': '3306,5432',
          'traffic.sidecar.istio.io/includeOutboundIPRanges': '10.96.0.0/12',
          'traffic.sidecar.istio.io/excludeOutboundIPRanges': '169.254.169.254/32',
        }),
    ),
    namespaceLabels: labelled,
  },
  {
    name: 'grpc-agent-template',
    pod: pod((p) => (p.metadata!.annotations = { 'inject.istio.io/templates': 'grpc-agent' })),
    namespaceLabels: labelled,
  },
  { name: 'legacy-sidecars', pod: pod(), namespaceLabels: labelled, config: { nativeSidecars: false } },
  { name: 'cni-no-init-container', pod: pod(), namespaceLabels: labelled, config: { cni: true } },
  {
    name: 'user-init-containers',
    pod: pod((p) => (p.spec!.initContainers = [{ name: 'migrate', image: 'registry.example/migrate:1', args: ['up'] }])),
    namespaceLabels: labelled,
  },
  {
    name: 'bare-pod-no-owner',
    pod: pod((p) => ((p.metadata = { name: 'debug', namespace: 'bookinfo', labels: {} }), void 0)),
    namespaceLabels: labelled,
  },
];

function run(c: Case): { decision: ReturnType<typeof decideInjection>; pod: V1Pod } {
  const config = { ...defaultInjectionConfig, ...c.config };
  const namespace = c.namespace ?? 'bookinfo';
  const decision = decideInjection(c.pod, namespace, c.namespaceLabels ?? {}, config);
  return { decision, pod: decision.inject ? injectPod(c.pod, namespace, config) : c.pod };
}

describe('sidecar injection', () => {
  it.each(cases.map((c) => [c.name, c] as const))('%s matches its golden file', (name, c) => {
    expectMatchesGolden(join(testdata, 'golden', `${name}.yaml`), stringify(run(c)));
  });

  it('covers at least 15 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(15);
  });

  it('is a no-op on an injected pod: re-injection changes nothing', () => {
    const once = run(cases[0] as Case).pod;
    const again = reviewInjection(
      {
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: { uid: 'u2', kind: { kind: 'Pod' }, operation: 'CREATE', namespace: 'bookinfo', object: once },
      },
      () => labelled,
      defaultInjectionConfig,
    );
    expect(again.response).toEqual({ uid: 'u2', allowed: true, auditAnnotations: { injection: 'not injected: already injected' } });
  });

  it('answers with a JSON patch that turns the submitted pod into the injected one', () => {
    const submitted = pod();
    const out = reviewInjection(
      {
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: { uid: 'u1', kind: { kind: 'Pod' }, operation: 'CREATE', namespace: 'bookinfo', object: submitted },
      },
      () => labelled,
      defaultInjectionConfig,
    );
    expect(out.response.allowed).toBe(true);
    expect(out.response.auditAnnotations).toEqual({ injection: 'injected: namespace label weft-injection=enabled' });
    const patch = JSON.parse(Buffer.from(out.response.patch ?? '', 'base64').toString()) as fastJsonPatch.Operation[];
    const patched = fastJsonPatch.applyPatch(structuredClone(submitted), patch).newDocument;
    expect(patched).toEqual(injectPod(submitted, 'bookinfo', defaultInjectionConfig));
  });

  it('refuses malformed AdmissionReviews clearly and never throws', () => {
    const bad: unknown[] = [
      null,
      'text',
      42,
      {},
      { kind: 'AdmissionReview' },
      { apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: { uid: 'x' } },
    ];
    for (const body of bad) {
      const out = reviewInjection(body, () => ({}), defaultInjectionConfig);
      expect(out.response.allowed).toBe(false);
      expect(out.response.status?.code).toBe(400);
      expect(out.response.status?.message).toMatch(/AdmissionReview|request\.uid/);
    }
    const noContainers = reviewInjection(
      {
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: { uid: 'u3', kind: { kind: 'Pod' }, operation: 'CREATE', object: { spec: {} } },
      },
      () => labelled,
      defaultInjectionConfig,
    );
    expect(noContainers.response).toEqual({
      uid: 'u3',
      allowed: false,
      status: { code: 400, message: 'request.object is not a Pod with spec.containers' },
    });
  });
});

describe('grpc-agent template', () => {
  const grpcPod = () => pod((p) => (p.metadata!.annotations = { 'inject.istio.io/templates': 'grpc-agent' }));
  const envOf = (c: V1Container | undefined, name: string) => c?.env?.find((e) => e.name === name)?.value;
  /** The volume and in-volume path a container sees at `path`: the deepest mount over it wins. */
  const resolve = (c: V1Container, path: string): { volume: string; path: string } | undefined => {
    const over = (c.volumeMounts ?? [])
      .filter((m) => path.startsWith(`${m.mountPath.replace(/\/$/, '')}/`))
      .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
    return over && { volume: over.name, path: path.slice(over.mountPath.replace(/\/$/, '').length) };
  };

  it.each([
    ['native sidecars', true],
    ['legacy sidecars', false],
  ])('%s: the agent writes the bootstrap on a shared volume, at the path the app reads', (_, nativeSidecars) => {
    const config = { ...defaultInjectionConfig, nativeSidecars };
    const injected = injectPod(grpcPod(), 'bookinfo', config);
    const all = [...(injected.spec?.initContainers ?? []), ...(injected.spec?.containers ?? [])];
    const agent = all.find((c) => c.name === 'istio-proxy');
    const app = injected.spec?.containers.find((c) => c.name === 'reviews');
    if (!agent || !app) throw new Error('no agent or app container');
    // pilot-agent writes GRPC_XDS_BOOTSTRAP, by default /etc/istio/proxy/grpc-bootstrap.json.
    const written = envOf(agent, 'GRPC_XDS_BOOTSTRAP') ?? '/etc/istio/proxy/grpc-bootstrap.json';
    const read = envOf(app, 'GRPC_XDS_BOOTSTRAP');
    expect(read).toBe(written);
    expect(written).toBe('/etc/istio/proxy/grpc-bootstrap.json');
    const onAgent = resolve(agent, written);
    const onApp = resolve(app, written);
    expect(onAgent).toEqual({ volume: 'istio-xds', path: '/grpc-bootstrap.json' });
    expect(onApp).toEqual(onAgent);
    expect(agent.volumeMounts?.find((m) => m.name === 'istio-xds')?.readOnly).toBeFalsy();
    expect(injected.spec?.volumes?.find((v) => v.name === 'istio-xds')).toEqual({ name: 'istio-xds', emptyDir: { medium: 'Memory' } });
    // Every container's mounts are valid: one volume per path, every volume declared.
    const declared = new Set(injected.spec?.volumes?.map((v) => v.name));
    for (const c of all) {
      const paths = (c.volumeMounts ?? []).map((m) => m.mountPath);
      expect(new Set(paths).size).toBe(paths.length);
      for (const m of c.volumeMounts ?? []) expect(declared).toContain(m.name);
    }
  });

  it("replaces rather than duplicates the app's own bootstrap env and mounts", () => {
    const submitted = grpcPod();
    submitted.spec!.containers[0]!.env = [{ name: 'GRPC_XDS_BOOTSTRAP', value: '/elsewhere.json' }];
    submitted.spec!.containers[0]!.volumeMounts = [{ name: 'other', mountPath: '/etc/istio/proxy' }];
    const app = injectPod(submitted, 'bookinfo', defaultInjectionConfig).spec?.containers[0];
    expect(app?.env?.filter((e) => e.name === 'GRPC_XDS_BOOTSTRAP')).toEqual([
      { name: 'GRPC_XDS_BOOTSTRAP', value: '/etc/istio/proxy/grpc-bootstrap.json' },
    ]);
    expect(app?.volumeMounts?.filter((m) => m.mountPath === '/etc/istio/proxy')).toEqual([
      { name: 'istio-xds', mountPath: '/etc/istio/proxy' },
    ]);
  });
});

describe('injectionConfigFromValues', () => {
  it("reads the operator's injector values, including CNI mode", () => {
    const values = JSON.stringify({
      revision: '',
      trustDomain: 'corp.example',
      discoveryAddress: 'weftd.mesh.svc:15012',
      cni: true,
      proxy: { image: 'p:1', logLevel: 'info' },
    });
    const config = injectionConfigFromValues(values, 'mesh', true);
    expect(config).toMatchObject({
      trustDomain: 'corp.example',
      meshId: 'corp.example',
      discoveryAddress: 'weftd.mesh.svc:15012',
      cni: true,
      proxyImage: 'p:1',
      controlPlaneNamespace: 'mesh',
    });
    expect(injectPod(pod(), 'bookinfo', config).spec?.initContainers?.map((c) => c.name)).toEqual(['istio-proxy']);
  });
});

describe('offline injection (weft inject -f) decides as the webhook does for the pod', () => {
  const config = { ...defaultInjectionConfig, controlPlaneNamespace: 'weft-system' };
  const pod = (spec: Partial<V1Pod['spec']> = {}, labels: Record<string, string> = {}): V1Pod => ({
    metadata: { name: 'web', labels },
    spec: { containers: [{ name: 'app', image: 'app:1' }], ...spec },
  });
  it('injects a plain pod whatever its namespace is labelled (the file asks for it)', () => {
    expect(decideOfflineInjection(pod(), 'shop', config).inject).toBe(true);
  });
  it('leaves hostNetwork pods, opted-out pods and never-injected namespaces alone, saying why', () => {
    expect(decideOfflineInjection(pod({ hostNetwork: true }), 'shop', config)).toEqual({
      inject: false,
      reason: expect.stringContaining('hostNetwork'),
    });
    expect(decideOfflineInjection(pod({}, { 'sidecar.istio.io/inject': 'false' }), 'shop', config)).toEqual({
      inject: false,
      reason: expect.stringContaining('opted out'),
    });
    expect(decideOfflineInjection(pod(), 'kube-system', config).inject).toBe(false);
  });
  it('injects for a revision as that revision’s webhook would', () => {
    expect(decideOfflineInjection(pod(), 'shop', { ...config, revision: 'canary' }).inject).toBe(true);
  });
});
