// GAMMA with real traffic: a GRPCRoute whose parentRef is a Service, applied to a real API server with the
// Gateway API CRDs install.yaml carries, reaches @grpc/grpc-js-xds clients in the network sandbox through
// Weft's xDS (the route converted to a mesh VirtualService, then the proxyless generators). The backends are
// xDS-enabled gRPC servers bound to their pods' IPs; PeerAuthentication STRICT makes every call Istio mTLS
// with SPIFFE certificates, so each reply names the caller's identity. Where calls land is counted: the
// header match, the 80/20 weights, a weight change (and how long the split takes to follow it), and the
// Service's own endpoints once the route is deleted. The route's status is read back from the API server.
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { selfSignedRootOfTrust, type RootOfTrust } from '../ca/root-of-trust.js';
import { componentLogger } from '../lib/logger.js';
import { installGatewayApiCrds } from '../testing/jest/gateway-api-crds.js';
import { describeWithCluster } from '../testing/jest/local-cluster-fixture.js';
import { writeSpiffeIdentity } from '../testing/jest/spiffe-identity.js';
import { createNamespace, eventually } from '../testing/jest/kube-helpers.js';
import { installIstioCrds, startXdsHarness, type XdsHarness } from '../testing/jest/xds-harness.js';
import { echoService, type EchoReply } from '../testing/workloads/echo.js';
import type { Condition, GrpcRoute } from './gateway-api-types.js';

const log = componentLogger('gamma-traffic-test');
const ns = 'gamma';
const group = 'gateway.networking.k8s.io';
const EchoClient = grpc.makeGenericClientConstructor(echoService, 'Echo');
type GrpcXds = typeof import('@grpc/grpc-js-xds');
type Reply = EchoReply & { peer?: string };

/** Calls per measurement. */
const calls = 400;
/**
 * How far a count may stray from `calls * p` for share p: five standard deviations of the binomial,
 * sqrt(calls * p * (1 - p)). grpc-js draws a weighted cluster per call at random, so each measurement is
 * a binomial; five sigma fails a correct split about once in 1.7 million runs, while 80/20 and 50/50
 * (80 against 200 calls to v2 of 400) stay 15 sigma apart.
 */
const tolerance = (p: number) => 5 * Math.sqrt(calls * p * (1 - p));

describeWithCluster('GAMMA: a GRPCRoute on a Service routes real proxyless gRPC calls', (cluster) => {
  let kc: KubeConfig;
  let grpcXds: GrpcXds;
  let xds: XdsHarness;
  let custom: CustomObjectsApi;
  let root: RootOfTrust;
  let caller: grpc.Client;
  const servers: Array<{ server: grpc.Server; address: string }> = [];

  beforeAll(async () => {
    grpcXds = await import('@grpc/grpc-js-xds');
    grpcXds.register();
    kc = cluster().kubeConfig();
    custom = kc.makeApiClient(CustomObjectsApi);
    // Both CRD sets before the model starts: it watches the Gateway API kinds served when it starts.
    await installIstioCrds(cluster());
    await installGatewayApiCrds(cluster());
    xds = await startXdsHarness(kc, log, { writeStatus: true, trustDomain: 'cluster.local' });
    root = selfSignedRootOfTrust('cluster.local', new Date());

    await createNamespace(kc, ns);
    const core = kc.makeApiClient(CoreV1Api);
    for (const sa of ['echo', 'client']) await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: sa } } });
    // The route's parent selects both versions; its backends one version each (GAMMA backends are Services).
    for (const [name, selector] of [
      ['echo', { app: 'echo' }],
      ['echo-v1', { app: 'echo', version: 'v1' }],
      ['echo-v2', { app: 'echo', version: 'v2' }],
    ] as const)
      await core.createNamespacedService({
        namespace: ns,
        body: { metadata: { name }, spec: { selector, ports: [{ name: 'grpc', port: 8080, targetPort: 'grpc' }] } },
      });
    await custom.createNamespacedCustomObject({
      group: 'security.istio.io',
      version: 'v1',
      namespace: ns,
      plural: 'peerauthentications',
      body: {
        apiVersion: 'security.istio.io/v1',
        kind: 'PeerAuthentication',
        metadata: { name: 'default', namespace: ns },
        spec: { mtls: { mode: 'STRICT' } },
      },
    });
    // Pods no process runner claims: the test serves each pod's IP with an XdsServer of that version. Each
    // serves its own port, the Services' named targetPort resolving per pod: grpc-js-xds's XdsServer listens
    // on the port alone (every address), so two in one process cannot share one.
    for (const [version, port] of [
      ['v1', 9443],
      ['v2', 9444],
    ] as const) {
      const name = `echo-${version}`;
      await core.createNamespacedPod({
        namespace: ns,
        body: {
          metadata: { name, labels: { app: 'echo', version } },
          spec: {
            serviceAccountName: 'echo',
            containers: [{ name: 'echo', image: 'registry.example/xds-echo:1', ports: [{ name: 'grpc', containerPort: port }] }],
          },
        },
      });
      const ip = await eventually(`the ${name} pod IP`, async () => (await core.readNamespacedPod({ name, namespace: ns })).status?.podIP);
      servers.push({ server: await startServer(name, `${ip}:${port}`, version), address: `${ip}:${port}` });
    }
    caller = new EchoClient(
      `xds:///echo.${ns}.svc.cluster.local:8080`,
      new grpcXds.XdsChannelCredentials(grpc.credentials.createInsecure()),
      {
        'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config': JSON.stringify(
          bootstrap(`sidecar~10.244.9.60~client-0.${ns}~${ns}.svc.cluster.local`, { app: 'client' }, 'client'),
        ),
      },
    );
    // The default before any route: both versions answer, over mTLS.
    await eventually('v1 and v2 both serving the Service over mTLS', async () => {
      const { versions, peers } = await measure(40);
      return versions.get('v1') && versions.get('v2') && peers.size === 1 ? true : undefined;
    });
  });

  afterAll(async () => {
    caller?.close();
    for (const { server } of servers) server.forceShutdown();
    await xds?.stop();
  });

  /** `spiffe://cluster.local/ns/<ns>/sa/<serviceAccount>`, signed by the test root, on disk as Istio's agent writes it for gRPC. */
  const identity = (serviceAccount: string) =>
    writeSpiffeIdentity(join(cluster().workDir, 'certs'), { namespace: ns, serviceAccount, ca: root }).certificateProviders;

  const bootstrap = (nodeId: string, labels: Record<string, string>, serviceAccount: string) => ({
    xds_servers: [{ server_uri: `127.0.0.1:${xds.port}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: { id: nodeId, locality: {}, metadata: { GENERATOR: 'grpc', NAMESPACE: ns, LABELS: labels } },
    server_listener_resource_name_template: 'xds.istio.io/grpc/lds/inbound/%s',
    certificate_providers: identity(serviceAccount),
  });

  /** An xDS-enabled server on the pod's IP: it gets its inbound listener (STRICT mTLS) from Weft and answers with its version and the caller's SPIFFE ID. */
  async function startServer(pod: string, address: string, version: string): Promise<grpc.Server> {
    const server = new grpcXds.XdsServer({
      'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config': JSON.stringify(
        bootstrap(`sidecar~${address.split(':')[0]}~${pod}.${ns}~${ns}.svc.cluster.local`, { app: 'echo', version }, 'echo'),
      ),
    });
    server.addService(echoService, {
      Echo: (call: grpc.ServerUnaryCall<{ message: string }, Reply>, callback: grpc.sendUnaryData<Reply>) => {
        const san = call.getAuthContext().sslPeerCertificate?.subjectaltname ?? '';
        const peer = /URI:(spiffe:\/\/[^,\s]+)/.exec(san)?.[1];
        callback(null, { pod, version, message: call.request.message, ...(peer ? { peer } : {}) });
      },
    });
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(address, new grpcXds.XdsServerCredentials(grpc.ServerCredentials.createInsecure()), (e) =>
        e ? reject(e) : resolve(),
      ),
    );
    return server as unknown as grpc.Server;
  }

  const echo = (metadata: grpc.Metadata) =>
    new Promise<Reply>((resolve, reject) =>
      (
        caller as unknown as Record<
          string,
          (r: object, m: grpc.Metadata, o: object, cb: (e: grpc.ServiceError | null, v: Reply) => void) => void
        >
      )['Echo']?.({ message: 'hi' }, metadata, { deadline: Date.now() + 5_000 }, (e, v) => (e ? reject(e) : resolve(v))),
    );

  /** `n` calls, ten at a time; replies counted by version, failures by status code, and the callers the servers saw. */
  async function measure(n: number, canary = false) {
    const metadata = new grpc.Metadata();
    if (canary) metadata.set('x-canary', 'yes');
    const versions = new Map<string, number>();
    const codes = new Map<number, number>();
    const peers = new Set<string | undefined>();
    for (let done = 0; done < n; done += 10) {
      const batch = await Promise.allSettled(Array.from({ length: Math.min(10, n - done) }, () => echo(metadata)));
      for (const result of batch) {
        if (result.status === 'fulfilled') {
          versions.set(result.value.version ?? '', (versions.get(result.value.version ?? '') ?? 0) + 1);
          peers.add(result.value.peer);
        } else {
          const code = (result.reason as grpc.ServiceError).code;
          codes.set(code, (codes.get(code) ?? 0) + 1);
        }
      }
    }
    return { versions, codes, peers };
  }

  const routeSpec = (v1: number, v2: number) => ({
    parentRefs: [{ group: '', kind: 'Service', name: 'echo', port: 8080 }],
    rules: [
      { matches: [{ headers: [{ name: 'x-canary', value: 'yes' }] }], backendRefs: [{ name: 'echo-v2', port: 8080 }] },
      {
        backendRefs: [
          { name: 'echo-v1', port: 8080, weight: v1 },
          { name: 'echo-v2', port: 8080, weight: v2 },
        ],
      },
    ],
  });
  const grpcRoute = () =>
    custom.getNamespacedCustomObject({ group, version: 'v1', plural: 'grpcroutes', namespace: ns, name: 'echo' }) as Promise<
      GrpcRoute & { metadata: { generation: number; resourceVersion: string } }
    >;
  const condition = (conditions: Condition[] | undefined, type: string) => conditions?.find((c) => c.type === type);

  /** The route's status for its Service parent once it reports the route's current generation. */
  async function currentStatus() {
    return eventually('the GRPCRoute status for its current generation', async () => {
      const route = await grpcRoute();
      const parent = route.status?.parents?.[0];
      const accepted = condition(parent?.conditions, 'Accepted');
      return accepted?.observedGeneration === route.metadata.generation ? { route, parent } : undefined;
    });
  }

  const expectSpiffeMtls = (peers: Set<string | undefined>) => expect([...peers]).toEqual([`spiffe://cluster.local/ns/${ns}/sa/client`]);

  it('sends x-canary: yes to v2 and splits the rest 80/20, every call over mTLS, and reports the route Accepted', async () => {
    await custom.createNamespacedCustomObject({
      group,
      version: 'v1',
      namespace: ns,
      plural: 'grpcroutes',
      body: { apiVersion: `${group}/v1`, kind: 'GRPCRoute', metadata: { name: 'echo', namespace: ns }, spec: routeSpec(80, 20) },
    });
    // Until the route arrives the Service's own endpoints answer header or not; the header match and the
    // weights arrive in the same route configuration, so 40 canary calls on v2 alone mean both have.
    await eventually('the header match to apply', async () => {
      const { versions } = await measure(40, true);
      return versions.get('v2') === 40 ? true : undefined;
    });

    const canary = await measure(calls, true);
    expect(canary.codes).toEqual(new Map());
    expect(canary.versions).toEqual(new Map([['v2', calls]]));
    expectSpiffeMtls(canary.peers);

    const weighted = await measure(calls);
    expect(weighted.codes).toEqual(new Map());
    log.info({ v1: weighted.versions.get('v1'), v2: weighted.versions.get('v2') }, '80/20 split measured');
    expect((weighted.versions.get('v1') ?? 0) + (weighted.versions.get('v2') ?? 0)).toBe(calls);
    expect(Math.abs((weighted.versions.get('v2') ?? 0) - calls * 0.2)).toBeLessThanOrEqual(tolerance(0.2));
    expectSpiffeMtls(weighted.peers);

    // As the real API server holds it: the Service parent (the mesh) accepted the route and resolved both backends.
    const { route, parent } = await currentStatus();
    expect(parent?.parentRef).toEqual({ group: '', kind: 'Service', name: 'echo', port: 8080 });
    expect(parent?.controllerName).toBe('weft.dev/gateway-controller');
    expect(condition(parent?.conditions, 'Accepted')).toMatchObject({
      status: 'True',
      reason: 'Accepted',
      observedGeneration: route.metadata.generation,
    });
    expect(condition(parent?.conditions, 'ResolvedRefs')).toMatchObject({
      status: 'True',
      reason: 'ResolvedRefs',
      observedGeneration: route.metadata.generation,
    });
  });

  it('follows a weight change to 20/80 within a bounded time, and the status its generation', async () => {
    const before = await grpcRoute();
    await custom.replaceNamespacedCustomObject({
      group,
      version: 'v1',
      namespace: ns,
      plural: 'grpcroutes',
      name: 'echo',
      body: { ...before, spec: routeSpec(20, 80) },
    });
    const changedAt = Date.now();
    // A window of 50 calls has v2 about 10 times under 80/20 and 40 under 20/80 (sd 2.8 each): 25 or more
    // is the new split, more than five sigma from the old one.
    await eventually(
      'the 20/80 split to apply',
      async () => {
        const { versions } = await measure(50);
        return (versions.get('v2') ?? 0) >= 25 ? true : undefined;
      },
      15_000,
    );
    const followedMs = Date.now() - changedAt;
    log.info({ followedMs }, 'the split followed the weight change');

    const moved = await measure(calls);
    expect(moved.codes).toEqual(new Map());
    log.info({ v1: moved.versions.get('v1'), v2: moved.versions.get('v2') }, '20/80 split measured');
    expect(Math.abs((moved.versions.get('v2') ?? 0) - calls * 0.8)).toBeLessThanOrEqual(tolerance(0.8));
    // The header rule is unchanged.
    expect((await measure(40, true)).versions).toEqual(new Map([['v2', 40]]));

    const { route, parent } = await currentStatus();
    expect(route.metadata.generation).toBe(before.metadata.generation + 1);
    expect(condition(parent?.conditions, 'ResolvedRefs')).toMatchObject({ status: 'True', observedGeneration: route.metadata.generation });
  });

  it('returns to the Service’s own endpoints when the route is deleted', async () => {
    await custom.deleteNamespacedCustomObject({ group, version: 'v1', namespace: ns, plural: 'grpcroutes', name: 'echo' });
    // Under the route every canary call reaches v2; one reaching v1 means the route is gone.
    await eventually('the route to be gone', async () => {
      const { versions } = await measure(20, true);
      return versions.get('v1') ? true : undefined;
    });
    // The default: the echo Service's endpoints, both versions, for header and no header alike.
    for (const canary of [true, false]) {
      const { versions, codes, peers } = await measure(calls, canary);
      expect(codes).toEqual(new Map());
      log.info({ canary, v1: versions.get('v1'), v2: versions.get('v2') }, 'default split measured');
      expect(Math.abs((versions.get('v2') ?? 0) - calls * 0.5)).toBeLessThanOrEqual(tolerance(0.5));
      expectSpiffeMtls(peers);
    }
    // No mesh VirtualService is left behind in the model the generators read.
    expect(xds.model.current()?.istio?.virtualServices.filter((vs) => vs.namespace === ns)).toEqual([]);
  });
});
