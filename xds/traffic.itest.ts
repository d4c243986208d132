// Istio traffic management with real traffic: @grpc/grpc-js-xds clients in the
// sandbox call echo workloads bound to pod IPs through Weft's xDS, and the
// VirtualServices, DestinationRules, ServiceEntries and Sidecars applied to the
// real apiserver (Istio's own CRDs) decide where calls go and how they fail.
import * as grpc from '@grpc/grpc-js';
import * as grpcXds from '@grpc/grpc-js-xds';
import { AppsV1Api, CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { componentLogger } from '../lib/logger.js';
import type { PodProcessRunner } from '../testing/cluster/pod-processes.js';
import { describeWithCluster } from '../testing/jest/local-cluster-fixture.js';
import { createNamespace, eventually } from '../testing/jest/kube-helpers.js';
import { echoDeployment, installIstioCrds, startEchoRunner, startXdsHarness, type XdsHarness } from '../testing/jest/xds-harness.js';
import { echoService, type EchoReply, type EchoRequest } from '../testing/workloads/echo.js';
import { aggregatedDiscoveryService, typeUrls } from './protos.js';

grpcXds.register();
const log = componentLogger('traffic-test');
const ns = 'shop';
const host = `echo.${ns}.svc.cluster.local`;
const EchoClient = grpc.makeGenericClientConstructor(echoService, 'Echo');

describeWithCluster('Istio traffic management through Weft xDS', (cluster) => {
  let kc: KubeConfig;
  let xds: XdsHarness;
  let port: number;
  let runner: PodProcessRunner;
  let custom: CustomObjectsApi;
  const clients: grpc.Client[] = [];

  beforeAll(async () => {
    kc = cluster().kubeConfig();
    custom = kc.makeApiClient(CustomObjectsApi);
    await installIstioCrds(cluster());
    xds = await startXdsHarness(kc, log, { writeStatus: true });
    ({ port } = xds);
    runner = startEchoRunner(kc, cluster());
    await createNamespace(kc, ns);
    await kc.makeApiClient(CoreV1Api).createNamespacedService({
      namespace: ns,
      body: { metadata: { name: 'echo' }, spec: { selector: { app: 'echo' }, ports: [{ name: 'grpc', port: 8080, targetPort: 9090 }] } },
    });
    await deploy('echo-v1', { version: 'v1' }, 1);
    await deploy('echo-v2', { version: 'v2' }, 1);
    await eventually('echo v1 and v2 serving through xDS', async () => {
      const seen = await versionsOf(client(), 40).catch(() => undefined);
      return seen && seen.get('v1') && seen.get('v2') ? true : undefined;
    });
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await runner?.stop();
    await xds?.stop();
  });

  async function deploy(name: string, labels: Record<string, string>, replicas: number, env: Record<string, string> = {}): Promise<void> {
    await kc.makeApiClient(AppsV1Api).createNamespacedDeployment({
      namespace: ns,
      body: echoDeployment(name, { deployment: name, ...labels }, replicas, { VERSION: labels['version'] ?? '', ...env }),
    });
  }

  /** A proxyless gRPC client with its own xDS client and node identity (as one pod would be). */
  function client(target = `xds:///${host}:8080`, labels: Record<string, string> = { app: 'shopper' }): grpc.Client {
    const bootstrap = {
      xds_servers: [{ server_uri: `127.0.0.1:${port}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
      node: {
        id: `sidecar~10.244.9.${clients.length + 20}~shopper-${clients.length}.${ns}~${ns}.svc.cluster.local`,
        locality: {},
        metadata: { GENERATOR: 'grpc', NAMESPACE: ns, LABELS: labels },
      },
    };
    const c = new EchoClient(target, grpc.credentials.createInsecure(), {
      'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config': JSON.stringify(bootstrap),
    });
    clients.push(c);
    return c;
  }

  const echo = (c: grpc.Client, request: Partial<EchoRequest> = {}, metadata = new grpc.Metadata(), deadlineMs = 5_000) =>
    new Promise<EchoReply>((resolve, reject) =>
      (
        c as unknown as Record<
          string,
          (r: object, m: grpc.Metadata, o: object, cb: (e: grpc.ServiceError | null, v: EchoReply) => void) => void
        >
      )['Echo']?.({ message: 'hi', ...request }, metadata, { deadline: Date.now() + deadlineMs }, (e, v) => (e ? reject(e) : resolve(v))),
    );

  /** Calls made one after another; replies counted by version, failures by status code. */
  async function outcomes(c: grpc.Client, calls: number, request: Partial<EchoRequest> = {}, metadata?: grpc.Metadata) {
    const versions = new Map<string, number>();
    const codes = new Map<number, number>();
    for (let i = 0; i < calls; i++) {
      try {
        const reply = await echo(c, request, metadata);
        versions.set(reply.version ?? '', (versions.get(reply.version ?? '') ?? 0) + 1);
      } catch (error) {
        const code = (error as grpc.ServiceError).code;
        codes.set(code, (codes.get(code) ?? 0) + 1);
      }
    }
    return { versions, codes };
  }
  const versionsOf = async (c: grpc.Client, calls: number) => (await outcomes(c, calls)).versions;

  async function apply(kind: string, plural: string, name: string, spec: object): Promise<void> {
    // weftd writes the object's status between our read and our replace: a 409 Conflict reads it again, as kubectl would.
    for (let attempt = 1; ; attempt++) {
      try {
        await applyOnce(kind, plural, name, spec);
        return;
      } catch (error) {
        if ((error as { code?: number }).code !== 409 || attempt >= 5) throw error;
      }
    }
  }
  async function applyOnce(kind: string, plural: string, name: string, spec: object): Promise<void> {
    const body = { apiVersion: 'networking.istio.io/v1', kind, metadata: { name, namespace: ns }, spec };
    try {
      const current = (await custom.getNamespacedCustomObject({
        group: 'networking.istio.io',
        version: 'v1',
        namespace: ns,
        plural,
        name,
      })) as {
        metadata: { resourceVersion: string };
      };
      await custom.replaceNamespacedCustomObject({
        group: 'networking.istio.io',
        version: 'v1',
        namespace: ns,
        plural,
        name,
        body: { ...body, metadata: { ...body.metadata, resourceVersion: current.metadata.resourceVersion } },
      });
    } catch (error) {
      if ((error as { code?: number }).code !== 404) throw error;
      await custom.createNamespacedCustomObject({ group: 'networking.istio.io', version: 'v1', namespace: ns, plural, body });
    }
  }
  const remove = (plural: string, name: string) =>
    custom.deleteNamespacedCustomObject({ group: 'networking.istio.io', version: 'v1', namespace: ns, plural, name });

  const subsets = {
    host: 'echo',
    subsets: [
      { name: 'v1', labels: { version: 'v1' } },
      { name: 'v2', labels: { version: 'v2' } },
    ],
  };
  const split = (v1: number, v2: number) => ({
    hosts: ['echo'],
    http: [
      {
        route: [
          { destination: { host: 'echo', subset: 'v1' }, weight: v1 },
          { destination: { host: 'echo', subset: 'v2' }, weight: v2 },
        ],
      },
    ],
  });

  it('splits 90/10 across subsets within statistical tolerance over 2,000 calls, and moves when the weights change', async () => {
    await apply('DestinationRule', 'destinationrules', 'echo', subsets);
    await apply('VirtualService', 'virtualservices', 'echo', split(90, 10));
    const c = client();
    // Wait for the split to arrive (v1 and v2 both answer before it, 50/50).
    await eventually('the 90/10 split to apply', async () => {
      const seen = await versionsOf(c, 200);
      return (seen.get('v2') ?? 0) < 45 ? true : undefined;
    });
    const { versions, codes } = await outcomes(c, 2_000);
    expect(codes.size).toBe(0);
    // 10% of 2,000 is 200 with a standard deviation of about 13.4: +-60 is more than 4 of them.
    expect(versions.get('v2')).toBeGreaterThan(140);
    expect(versions.get('v2')).toBeLessThan(260);
    expect((versions.get('v1') ?? 0) + (versions.get('v2') ?? 0)).toBe(2_000);

    await apply('VirtualService', 'virtualservices', 'echo', split(20, 80));
    await eventually('the 20/80 split to apply', async () => {
      const seen = await versionsOf(c, 200);
      return (seen.get('v2') ?? 0) > 130 ? true : undefined;
    });
    const moved = await versionsOf(c, 1_000);
    expect(moved.get('v2')).toBeGreaterThan(740);
    expect(moved.get('v2')).toBeLessThan(860);
  });

  it('hears from each client what it sent to each subset (LRS load reports), call for call', async () => {
    await apply('DestinationRule', 'destinationrules', 'echo', subsets);
    await apply('VirtualService', 'virtualservices', 'echo', split(90, 10));
    const probe = client();
    await eventually('the 90/10 split to apply', async () => {
      const seen = await versionsOf(probe, 200);
      return (seen.get('v2') ?? 0) < 45 ? true : undefined;
    });
    // A new client gets the split from its first call: every call it makes goes to a subset's cluster.
    const reporter = client(undefined, { app: 'reporter', version: 'v7' });
    const { versions, codes } = await outcomes(reporter, 500);
    expect(codes.size).toBe(0);
    const cluster = (subset: string) => `outbound|8080|${subset}|${host}`;
    const reported = await eventually('every call in the load reports', async () => {
      const edges = xds.loads.edges().filter((edge) => edge.source.labels['app'] === 'reporter');
      return edges.reduce((sum, edge) => sum + edge.requests, 0) === 500 ? edges : undefined;
    });
    // Each call to the v2 subset's cluster reached a v2 pod, so the reports match the replies exactly.
    expect(Object.fromEntries(reported.map((edge) => [edge.cluster, edge.requests]))).toEqual({
      [cluster('v1')]: versions.get('v1'),
      [cluster('v2')]: versions.get('v2'),
    });
    expect(reported.every((edge) => edge.errors === 0 && edge.source.namespace === ns && edge.source.labels['version'] === 'v7')).toBe(
      true,
    );
  });

  it('sends only calls carrying the matching header to v2', async () => {
    await apply('VirtualService', 'virtualservices', 'echo', {
      hosts: ['echo'],
      http: [
        { match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [{ destination: { host: 'echo', subset: 'v2' } }] },
        { route: [{ destination: { host: 'echo', subset: 'v1' } }] },
      ],
    });
    const c = client();
    const jason = new grpc.Metadata();
    jason.set('end-user', 'jason');
    // Both sides of the match: plain calls alone could all reach v1 by chance under the previous test's split.
    await eventually('the header route to apply', async () => {
      const plain = await versionsOf(c, 20);
      const matched = (await outcomes(c, 20, {}, jason)).versions;
      return plain.size === 1 && plain.get('v1') === 20 && matched.size === 1 && matched.get('v2') === 20 ? true : undefined;
    });
    expect((await outcomes(c, 100, {}, jason)).versions).toEqual(new Map([['v2', 100]]));
    expect((await outcomes(c, 100)).versions).toEqual(new Map([['v1', 100]]));
  });

  it('aborts about half of calls with the configured status, and delays calls by the configured time', async () => {
    await apply('VirtualService', 'virtualservices', 'echo', {
      hosts: ['echo'],
      http: [
        {
          match: [{ headers: { 'x-fault': { exact: 'delay' } } }],
          fault: { delay: { fixedDelay: '400ms', percentage: { value: 100 } } },
          route: [{ destination: { host: 'echo', subset: 'v1' } }],
        },
        { fault: { abort: { httpStatus: 503, percentage: { value: 50 } } }, route: [{ destination: { host: 'echo', subset: 'v1' } }] },
      ],
    });
    const c = client();
    await eventually('the abort fault to apply', async () => ((await outcomes(c, 20)).codes.size > 0 ? true : undefined));
    const { versions, codes } = await outcomes(c, 400);
    // HTTP 503 is gRPC UNAVAILABLE; 50% of 400 is 200, standard deviation 10.
    expect([...codes.keys()]).toEqual([grpc.status.UNAVAILABLE]);
    expect(codes.get(grpc.status.UNAVAILABLE)).toBeGreaterThan(150);
    expect(codes.get(grpc.status.UNAVAILABLE)).toBeLessThan(250);
    expect((versions.get('v1') ?? 0) + (codes.get(grpc.status.UNAVAILABLE) ?? 0)).toBe(400);

    const delayed = new grpc.Metadata();
    delayed.set('x-fault', 'delay');
    const started = Date.now();
    await echo(c, {}, delayed);
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
  });

  it('retries a flaky backend into successes, and a timeout cuts a slow call', async () => {
    await deploy('echo-flaky', { version: 'flaky' }, 1, { FAIL_EVERY: '2' });
    await apply('DestinationRule', 'destinationrules', 'echo', {
      ...subsets,
      subsets: [...subsets.subsets, { name: 'flaky', labels: { version: 'flaky' } }],
    });
    const flakyRoute = (retries: object) => ({
      hosts: ['echo'],
      http: [{ route: [{ destination: { host: 'echo', subset: 'flaky' } }], timeout: '300ms', retries }],
    });
    await apply('VirtualService', 'virtualservices', 'echo', flakyRoute({ attempts: 0 }));
    const c = client();
    await eventually('the flaky backend without retries', async () => {
      const { versions, codes } = await outcomes(c, 20);
      return versions.get('flaky') === 10 && codes.get(grpc.status.UNAVAILABLE) === 10 ? true : undefined;
    });
    await apply('VirtualService', 'virtualservices', 'echo', flakyRoute({ attempts: 3, retryOn: 'unavailable' }));
    await eventually('retries to turn every call into a success', async () => {
      const { versions } = await outcomes(c, 40);
      return versions.get('flaky') === 40 ? true : undefined;
    });
    const slow = await echo(c, { sleepMs: 2_000 }, undefined, 10_000).catch((error: grpc.ServiceError) => error);
    expect((slow as grpc.ServiceError).code).toBe(grpc.status.DEADLINE_EXCEEDED);
  });

  it('ejects a failing pod with outlier detection, so calls stop failing', async () => {
    await deploy('echo-broken', { version: 'v1' }, 1, { FAIL_EVERY: '1' });
    await apply('DestinationRule', 'destinationrules', 'echo', subsets);
    // No retries: Istio's default policy would retry UNAVAILABLE on another pod and hide the broken one.
    await apply('VirtualService', 'virtualservices', 'echo', {
      hosts: ['echo'],
      http: [{ route: [{ destination: { host: 'echo', subset: 'v1' } }], retries: { attempts: 0 } }],
    });
    const c = client();
    await eventually('the broken pod to be called', async () => ((await outcomes(c, 20)).codes.size > 0 ? true : undefined));
    await apply('DestinationRule', 'destinationrules', 'echo', {
      ...subsets,
      trafficPolicy: { outlierDetection: { consecutive5xxErrors: 3, interval: '1s', baseEjectionTime: '5m', maxEjectionPercent: 100 } },
    });
    await eventually('the broken pod to be ejected', async () => {
      const { versions, codes } = await outcomes(c, 50);
      return codes.size === 0 && versions.get('v1') === 50 ? true : undefined;
    });
  });

  it('reaches a server outside Kubernetes through a ServiceEntry', async () => {
    const outside = new grpc.Server();
    outside.addService(echoService, {
      Echo: (_call: unknown, callback: grpc.sendUnaryData<EchoReply>) => callback(null, { pod: 'legacy-vm', message: 'hi' }),
    });
    const outsidePort = await new Promise<number>((resolve, reject) =>
      outside.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    await apply('ServiceEntry', 'serviceentries', 'legacy', {
      hosts: ['legacy.example.internal'],
      location: 'MESH_EXTERNAL',
      resolution: 'STATIC',
      ports: [{ number: 7070, name: 'grpc', protocol: 'GRPC' }],
      endpoints: [{ address: '127.0.0.1', ports: { grpc: outsidePort } }],
    });
    try {
      const c = client('xds:///legacy.example.internal:7070');
      const reply = await eventually('the ServiceEntry host to answer', async () => echo(c).catch(() => undefined));
      expect(reply.pod).toBe('legacy-vm');
    } finally {
      outside.forceShutdown();
    }
  });

  it('shrinks what a sidecar receives to the hosts its Sidecar resource names', async () => {
    await createNamespace(kc, 'elsewhere');
    await kc.makeApiClient(CoreV1Api).createNamespacedService({
      namespace: 'elsewhere',
      body: { metadata: { name: 'ledger' }, spec: { ports: [{ name: 'grpc', port: 8080 }] } },
    });
    const clusterNames = async (): Promise<string[]> => {
      const Ads = grpc.makeGenericClientConstructor(aggregatedDiscoveryService(), 'ADS');
      const raw = new Ads(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
      const stream = (
        raw as unknown as Record<string, () => grpc.ClientDuplexStream<object, { type_url: string; resources: Array<{ value: Buffer }> }>>
      )['StreamAggregatedResources']?.();
      if (!stream) throw new Error('no ADS stream');
      try {
        const response = await new Promise<{ resources: Array<{ value: Buffer }> }>((resolve, reject) => {
          stream.on('data', resolve);
          stream.on('error', reject);
          stream.write({
            node: { id: `sidecar~10.244.9.99~envoy-${Date.now()}.${ns}~${ns}.svc.cluster.local` },
            type_url: typeUrls.cluster,
          });
        });
        return response.resources.map((r) => Buffer.from(r.value).toString('latin1'));
      } finally {
        stream.cancel();
        raw.close();
      }
    };
    await eventually('the other namespace to be visible', async () =>
      (await clusterNames()).some((c) => c.includes('ledger.elsewhere.svc.cluster.local')) ? true : undefined,
    );
    const before = (await clusterNames()).length;
    await apply('Sidecar', 'sidecars', 'default', { egress: [{ hosts: ['./*', 'istio-system/*'] }] });
    const after = await eventually('the Sidecar resource to scope the proxy', async () => {
      const names = await clusterNames();
      return names.some((c) => c.includes('ledger.elsewhere')) ? undefined : names;
    });
    expect(after.length).toBeLessThan(before);
    expect(after.some((c) => c.includes(host))).toBe(true);
    await remove('sidecars', 'default');
  });

  it('reports on each resource whether it was accepted, and why not', async () => {
    const accepted = async (plural: string, name: string) => {
      const object = (await custom.getNamespacedCustomObject({
        group: 'networking.istio.io',
        version: 'v1',
        namespace: ns,
        plural,
        name,
      })) as {
        status?: { conditions?: Array<{ type: string; status: string; reason: string; message: string }> };
      };
      return object.status?.conditions?.find((c) => c.type === 'Accepted');
    };
    await apply('DestinationRule', 'destinationrules', 'echo', subsets);
    await apply('VirtualService', 'virtualservices', 'echo', {
      hosts: ['echo'],
      http: [{ route: [{ destination: { host: 'echo', subset: 'v7' } }] }],
    });
    const refused = await eventually('the missing subset to be reported', async () => {
      const condition = await accepted('virtualservices', 'echo');
      return condition?.status === 'False' ? condition : undefined;
    });
    expect(refused.message).toContain('subset "v7"');
    await apply('VirtualService', 'virtualservices', 'echo', split(50, 50));
    await eventually('the fixed rule to be accepted', async () =>
      (await accepted('virtualservices', 'echo'))?.status === 'True' ? true : undefined,
    );
    expect((await accepted('destinationrules', 'echo'))?.status).toBe('True');

    // A Gateway and a VirtualService bound only to it: applied to gateway proxies (the VirtualService is
    // Accepted), while the Gateway whose selector no workload matches says so (Istio's IST0101), through the
    // real status subresource.
    await apply('Gateway', 'gateways', 'edge', {
      selector: { istio: 'ingressgateway' },
      servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }],
    });
    await apply('VirtualService', 'virtualservices', 'edge', {
      hosts: ['echo'],
      gateways: ['edge'],
      http: [{ route: [{ destination: { host: 'echo' } }] }],
    });
    await eventually('the gateway-bound VirtualService to be accepted', async () =>
      (await accepted('virtualservices', 'edge'))?.status === 'True' ? true : undefined,
    );
    const gateway = await eventually('the Gateway without workloads to be reported', async () => {
      const condition = await accepted('gateways', 'edge');
      return condition?.status === 'False' ? condition : undefined;
    });
    expect(gateway.message).toContain('Referenced selector not found');
    await remove('virtualservices', 'edge');
    await remove('gateways', 'edge');
  });
});
