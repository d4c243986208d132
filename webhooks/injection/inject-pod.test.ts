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

describe('the decision follows Istio’s precedence (one decision for the webhook and weft inject)', () => {
  const plain = (labels: Record<string, string> = {}, annotations: Record<string, string> = {}): V1Pod => ({
    metadata: { name: 'web', labels, annotations },
    spec: { containers: [{ name: 'app', image: 'app:1' }] },
  });
  const decide = (p: V1Pod, ns: Record<string, string>, config: Partial<InjectionConfig> = {}) =>
    decideInjection(p, 'shop', ns, { ...defaultInjectionConfig, ...config });
  it('a namespace with istio-injection=enabled and istio.io/rev=canary is injected by the default control plane, not canary', () => {
    const ns = { 'istio-injection': 'enabled', 'istio.io/rev': 'canary' };
    expect(decide(plain(), ns)).toEqual({ inject: true, reason: 'namespace label istio-injection=enabled' });
    expect(decide(plain(), ns, { revision: 'canary' }).inject).toBe(false);
  });
  it('a pod labelled istio.io/rev=canary in an unlabelled namespace is injected by canary only', () => {
    expect(decide(plain({ 'istio.io/rev': 'canary' }), {}, { revision: 'canary' })).toEqual({
      inject: true,
      reason: 'pod label istio.io/rev=canary in a namespace without injection labels',
    });
    expect(decide(plain({ 'istio.io/rev': 'canary' }), {}).inject).toBe(false);
  });
  it('the annotation sidecar.istio.io/inject=false opts out in an enabled namespace; the label wins over it', () => {
    expect(decide(plain({}, { 'sidecar.istio.io/inject': 'false' }), labelled)).toEqual({
      inject: false,
      reason: 'pod opted out with annotation sidecar.istio.io/inject=false',
    });
    expect(decide(plain({ 'sidecar.istio.io/inject': 'true' }, { 'sidecar.istio.io/inject': 'false' }), labelled).inject).toBe(true);
  });
  it('neverInjectSelector keeps matching pods out unless they opt in; alwaysInjectSelector with policy disabled lets them in', () => {
    const never = { neverInjectSelector: [{ matchLabels: { job: 'batch' } }] };
    expect(decide(plain({ job: 'batch' }), labelled, never)).toEqual({ inject: false, reason: 'pod labels match neverInjectSelector[0]' });
    expect(decide(plain({ job: 'batch', 'sidecar.istio.io/inject': 'true' }), labelled, never).inject).toBe(true);
    const disabled = { policy: 'disabled' as const, alwaysInjectSelector: [{ matchLabels: { mesh: 'yes' } }] };
    expect(decide(plain(), labelled, disabled).inject).toBe(false);
    expect(decide(plain({ mesh: 'yes' }), labelled, disabled).inject).toBe(true);
  });
  it('a revision tag is served by the revision it points at', () => {
    expect(decide(plain(), { 'istio.io/rev': 'prod' }, { revision: 'stable', revisionTags: ['prod'] }).inject).toBe(true);
  });
  it('reads revision tags and the never/always selectors from the injector values', () => {
    const config = injectionConfigFromValues(
      JSON.stringify({
        revision: 'stable',
        revisionTags: ['prod'],
        policy: 'disabled',
        neverInjectSelector: [{ matchLabels: { a: 'b' } }],
      }),
      'weft-system',
      true,
    );
    expect(config).toMatchObject({ revisionTags: ['prod'], policy: 'disabled', neverInjectSelector: [{ matchLabels: { a: 'b' } }] });
  });
});

describe('template merge: a user-declared istio-proxy or istio-init is merged, never duplicated', () => {
  const all = (p: V1Pod) => [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])];
  const named = (p: V1Pod, name: string) => all(p).filter((c) => c.name === name);
  const userProxy: V1Container = {
    name: 'istio-proxy',
    image: 'auto',
    resources: { requests: { cpu: '500m' }, limits: { memory: '2Gi' } },
    lifecycle: { preStop: { exec: { command: ['sleep', '10'] } } },
    env: [{ name: 'EXTRA', value: '1' }],
  };
  it.each([
    ['native sidecars', true],
    ['legacy sidecars', false],
  ])('%s: image auto keeps the injector’s image; resources, preStop and env are the user’s', (_, nativeSidecars) => {
    const submitted = pod((p) => p.spec!.containers.push(structuredClone(userProxy)));
    const config = { ...defaultInjectionConfig, nativeSidecars };
    const injected = injectPod(submitted, 'bookinfo', config);
    const proxies = named(injected, 'istio-proxy');
    expect(proxies).toHaveLength(1);
    const proxy = proxies[0]!;
    expect(proxy.image).toBe(config.proxyImage);
    expect(proxy.resources).toEqual({ requests: { cpu: '500m', memory: '128Mi' }, limits: { cpu: '2', memory: '2Gi' } });
    expect(proxy.lifecycle).toEqual({ preStop: { exec: { command: ['sleep', '10'] } } });
    expect(proxy.env?.find((e) => e.name === 'EXTRA')).toEqual({ name: 'EXTRA', value: '1' });
    expect(proxy.env?.filter((e) => e.name === 'POD_NAME')).toHaveLength(1);
    // The user's container is not an app container: not in the agent's metadata, not probed through itself.
    expect(proxy.env?.find((e) => e.name === 'ISTIO_META_APP_CONTAINERS')?.value).toBe('reviews');
    expect(JSON.parse(injected.metadata?.annotations?.['proxy.istio.io/overrides'] ?? '{}')).toEqual({ containers: [userProxy] });
  });
  it('a user image other than auto wins, and an istio-proxy declared as an init container is merged too', () => {
    const submitted = pod((p) => (p.spec!.initContainers = [{ name: 'istio-proxy', image: 'registry.example/proxyv2:debug' }]));
    const injected = injectPod(submitted, 'bookinfo', defaultInjectionConfig);
    expect(named(injected, 'istio-proxy').map((c) => c.image)).toEqual(['registry.example/proxyv2:debug']);
  });
  it('a user istio-init is merged field by field, and a user proxy uid moves istio-init’s -u', () => {
    const submitted = pod((p) => {
      p.spec!.initContainers = [{ name: 'istio-init', image: 'auto', resources: { limits: { cpu: '100m' } } }];
      p.spec!.containers.push({ name: 'istio-proxy', image: 'auto', securityContext: { runAsUser: 1500 } });
    });
    const injected = injectPod(submitted, 'bookinfo', defaultInjectionConfig);
    const inits = named(injected, 'istio-init');
    expect(inits).toHaveLength(1);
    expect(inits[0]!.image).toBe(defaultInjectionConfig.proxyImage);
    expect(inits[0]!.resources?.limits).toEqual({ cpu: '100m', memory: '1Gi' });
    const args = inits[0]!.args ?? [];
    expect(args[args.indexOf('-u') + 1]).toBe('1500');
    expect(named(injected, 'istio-proxy')[0]!.securityContext?.runAsUser).toBe(1500);
  });
  it('re-injection of an injected pod is a no-op', () => {
    const once = injectPod(pod(), 'bookinfo', defaultInjectionConfig);
    expect(injectPod(structuredClone(once), 'bookinfo', defaultInjectionConfig)).toEqual(once);
    expect(decideOfflineInjection(once, 'bookinfo', defaultInjectionConfig)).toEqual({ inject: false, reason: 'already injected' });
  });
});

describe('probe rewriting (Istio’s app_probe.go, ISTIO_KUBE_APP_PROBERS)', () => {
  const probersOf = (p: V1Pod) => {
    const proxy = [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])].find((c) => c.name === 'istio-proxy');
    const value = proxy?.env?.find((e) => e.name === 'ISTIO_KUBE_APP_PROBERS')?.value;
    return value === undefined ? undefined : (JSON.parse(value) as Record<string, unknown>);
  };
  const withProbes = (container: Partial<V1Container>, annotations: Record<string, string> = {}): V1Pod => ({
    metadata: { name: 'web', annotations },
    spec: { containers: [{ name: 'app', image: 'app:1', ports: [{ name: 'http', containerPort: 8080 }], ...container }] },
  });
  it('rewrites httpGet, tcpSocket and grpc for readiness, liveness and startup, and the agent gets the originals', () => {
    const injected = injectPod(
      withProbes({
        readinessProbe: {
          httpGet: { path: '/ready', port: 'http', scheme: 'HTTPS', httpHeaders: [{ name: 'x', value: 'y' }] },
          timeoutSeconds: 3,
        },
        livenessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 5 },
        startupProbe: { grpc: { port: 9090, service: 'health' } },
        lifecycle: { preStop: { httpGet: { path: '/drain', port: 8080 } }, postStart: { exec: { command: ['true'] } } },
      }),
      'shop',
      defaultInjectionConfig,
    );
    const app = injected.spec!.containers[0]!;
    expect(app.readinessProbe).toEqual({
      httpGet: { path: '/app-health/app/readyz', port: 15020, scheme: 'HTTP', httpHeaders: [{ name: 'x', value: 'y' }] },
      timeoutSeconds: 3,
    });
    expect(app.livenessProbe).toEqual({ httpGet: { path: '/app-health/app/livez', port: 15020 }, periodSeconds: 5 });
    expect(app.startupProbe).toEqual({ httpGet: { path: '/app-health/app/startupz', port: 15020 } });
    expect(app.lifecycle).toEqual({
      preStop: { httpGet: { path: '/app-lifecycle/app/prestopz', port: 15020 } },
      postStart: { exec: { command: ['true'] } },
    });
    expect(probersOf(injected)).toEqual({
      '/app-health/app/livez': { tcpSocket: { port: 8080 } },
      '/app-health/app/readyz': {
        httpGet: { path: '/ready', port: 8080, scheme: 'HTTPS', httpHeaders: [{ name: 'x', value: 'y' }] },
        timeoutSeconds: 3,
      },
      '/app-health/app/startupz': { grpc: { port: 9090, service: 'health' } },
      '/app-lifecycle/app/prestopz': { httpGet: { path: '/drain', port: 8080 } },
    });
    // Istio's exact string: keys sorted as Go marshals a map.
    expect(Object.keys(probersOf(injected) ?? {})).toEqual([...Object.keys(probersOf(injected) ?? {})].sort());
  });
  it('leaves exec probes alone, drops probers whose named port is unknown, and covers init containers', () => {
    const submitted = withProbes({
      readinessProbe: { exec: { command: ['cat', '/ready'] } },
      livenessProbe: { httpGet: { path: '/live', port: 'nope' } },
    });
    submitted.spec!.initContainers = [
      { name: 'cache', image: 'c:1', restartPolicy: 'Always', startupProbe: { tcpSocket: { port: 6379 } } },
    ];
    const injected = injectPod(submitted, 'shop', defaultInjectionConfig);
    expect(injected.spec!.containers[0]!.readinessProbe).toEqual({ exec: { command: ['cat', '/ready'] } });
    expect(injected.spec!.containers[0]!.livenessProbe?.httpGet?.port).toBe(15020);
    expect(injected.spec!.initContainers!.find((c) => c.name === 'cache')?.startupProbe).toEqual({
      httpGet: { path: '/app-health/cache/startupz', port: 15020 },
    });
    expect(probersOf(injected)).toEqual({ '/app-health/cache/startupz': { tcpSocket: { port: 6379 } } });
  });
  it('sidecar.istio.io/rewriteAppHTTPProbers: "false" opts the pod out', () => {
    const probe = { readinessProbe: { tcpSocket: { port: 8080 } } };
    const optedOut = injectPod(withProbes(probe, { 'sidecar.istio.io/rewriteAppHTTPProbers': 'false' }), 'shop', defaultInjectionConfig);
    expect(optedOut.spec!.containers[0]!.readinessProbe).toEqual({ tcpSocket: { port: 8080 } });
    expect(probersOf(optedOut)).toBeUndefined();
  });
});

describe('malformed pods are refused, naming the field', () => {
  const review = (object: unknown) =>
    reviewInjection(
      {
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: { uid: 'u9', kind: { kind: 'Pod' }, operation: 'CREATE', namespace: 'bookinfo', object },
      },
      () => labelled,
      defaultInjectionConfig,
    ).response;
  it.each([
    ['spec.containers[0].ports is not a list', (p: any) => (p.spec.containers[0].ports = { http: 9080 })],
    ['spec.volumes is not a list', (p: any) => (p.spec.volumes = 'data')],
    ['spec.initContainers is not a list', (p: any) => (p.spec.initContainers = {})],
    ['spec.containers[0].env has an item that is not an object', (p: any) => (p.spec.containers[0].env = ['A=1'])],
    ['metadata.annotations.a is not a string', (p: any) => (p.metadata.annotations = { a: 1 })],
    ['spec.containers[0].readinessProbe is not an object', (p: any) => (p.spec.containers[0].readinessProbe = 'http')],
    // Found by `make chaos` (testing/chaos): each of these threw inside workloadOf instead of being refused.
    ['metadata.ownerReferences is not a list', (p: any) => (p.metadata.ownerReferences = 'rs')],
    ['metadata.ownerReferences[0] is not an object', (p: any) => (p.metadata.ownerReferences = ['rs'])],
    ['metadata.ownerReferences[0].kind is not a string', (p: any) => (p.metadata.ownerReferences[0].kind = 7)],
    ['metadata.ownerReferences[0].name is not a string', (p: any) => delete p.metadata.ownerReferences[0].name],
    ['metadata.generateName is not a string', (p: any) => (p.metadata.generateName = ['web-'])],
  ])('%s', (field, change) => {
    expect(review(pod(change as (p: V1Pod) => void))).toEqual({
      uid: 'u9',
      allowed: false,
      status: { code: 400, message: `request.object is not a valid Pod: ${field}` },
    });
  });
});
