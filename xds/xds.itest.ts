// Real traffic through Weft's xDS: @grpc/grpc-js-xds clients resolve
// xds:///<service>:<port> from our ADS server and reach echo workloads bound to
// pod IPs in the sandbox; scaling and deletion change where calls go.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { ensureClusterBinaries } from '../testing/cluster/binaries.js';
import * as grpc from '@grpc/grpc-js';
import * as grpcXds from '@grpc/grpc-js-xds';
import { AppsV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { componentLogger } from '../lib/logger.js';
import type { PodProcessRunner } from '../testing/cluster/pod-processes.js';
import { describeWithCluster } from '../testing/jest/local-cluster-fixture.js';
import { createNamespace, eventually } from '../testing/jest/kube-helpers.js';
import { echoService, type EchoReply } from '../testing/workloads/echo.js';
import { aggregatedDiscoveryService, typeUrls } from './protos.js';
import type { AdsServer } from './server/ads-server.js';
import { echoDeployment, startEchoRunner, startXdsHarness, type XdsHarness } from '../testing/jest/xds-harness.js';
import { TokenAuthenticator } from '../ca/server/token-authenticator.js';

grpcXds.register();
const log = componentLogger('xds-test');
const target = 'xds:///echo.traffic.svc.cluster.local:8080';

describeWithCluster('xDS for proxyless gRPC', (cluster) => {
  let kc: KubeConfig;
  let xds: XdsHarness;
  let ads: AdsServer;
  let port: number;
  let runner: PodProcessRunner;
  const EchoClient = grpc.makeGenericClientConstructor(echoService, 'Echo');
  // Every channel this file opens, closed in afterAll even when a test fails: an open xDS
  // channel holds its ADS stream, which would keep jest from exiting.
  const channels: grpc.Client[] = [];

  beforeAll(async () => {
    kc = cluster().kubeConfig();
    xds = await startXdsHarness(kc, log);
    ({ ads, port } = xds);
    runner = startEchoRunner(kc, cluster());
    await createNamespace(kc, 'traffic');
    await kc.makeApiClient(CoreV1Api).createNamespacedService({
      namespace: 'traffic',
      body: { metadata: { name: 'echo' }, spec: { selector: { app: 'echo' }, ports: [{ name: 'grpc', port: 8080, targetPort: 9090 }] } },
    });
    await kc.makeApiClient(AppsV1Api).createNamespacedDeployment({ namespace: 'traffic', body: echoDeployment('echo', {}, 2) });
  });

  afterAll(async () => {
    for (const c of channels) c.close();
    await runner?.stop();
    await xds?.stop();
  });

  function client(nodeId = 'sidecar~10.244.9.9~client-1.traffic~traffic.svc.cluster.local'): grpc.Client {
    const bootstrap = {
      xds_servers: [{ server_uri: `127.0.0.1:${port}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
      node: { id: nodeId, locality: {}, metadata: { GENERATOR: 'grpc', NAMESPACE: 'traffic' } },
    };
    const c = new EchoClient(target, grpc.credentials.createInsecure(), {
      'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config': JSON.stringify(bootstrap),
    });
    channels.push(c);
    return c;
  }

  const echo = (c: grpc.Client) =>
    new Promise<EchoReply>((resolve, reject) =>
      (c as unknown as Record<string, (r: object, o: object, cb: (e: Error | null, v: EchoReply) => void) => void>)['Echo']?.(
        { message: 'hi' },
        { deadline: Date.now() + 5_000 },
        (e, v) => (e ? reject(e) : resolve(v)),
      ),
    );

  async function podsAnswering(c: grpc.Client, calls: number): Promise<Set<string>> {
    const seen = new Set<string>();
    for (let i = 0; i < calls; i++) seen.add((await echo(c)).pod);
    return seen;
  }

  const runningPods = async () =>
    (await kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: 'traffic', labelSelector: 'app=echo' })).items
      .filter((p) => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp)
      .map((p) => p.metadata?.name as string)
      .sort();

  it('routes xds:/// calls to every ready endpoint of the Service', async () => {
    const c = client();
    const pods = await eventually('two echo pods running', async () => ((await runningPods()).length === 2 ? runningPods() : undefined));
    const seen = await eventually('calls to reach both pods', async () => {
      const answering = await podsAnswering(c, 20).catch(() => undefined);
      return answering && answering.size === 2 ? answering : undefined;
    });
    expect([...seen].sort()).toEqual(pods);
    c.close();
  });

  it('spreads calls to a new pod within seconds of a scale-up, and stops calling a deleted pod', async () => {
    const c = client('sidecar~10.244.9.10~client-2.traffic~traffic.svc.cluster.local');
    await kc
      .makeApiClient(AppsV1Api)
      .patchNamespacedDeploymentScale({ name: 'echo', namespace: 'traffic', body: [{ op: 'replace', path: '/spec/replicas', value: 3 }] });
    const three = await eventually('three echo pods running', async () => ((await runningPods()).length === 3 ? runningPods() : undefined));
    await eventually('calls to reach all three pods', async () => {
      const answering = await podsAnswering(c, 30).catch(() => undefined);
      return answering && answering.size === 3 ? answering : undefined;
    });

    const victim = three[0] as string;
    await kc.makeApiClient(CoreV1Api).deleteNamespacedPod({ name: victim, namespace: 'traffic' });
    // Once the deletion has been pushed, no call goes to the deleted pod, and none fails.
    await eventually('the deleted pod to leave the EndpointSlice', async () => {
      const answering = await podsAnswering(c, 10).catch(() => undefined);
      return answering && !answering.has(victim) ? answering : undefined;
    });
    const after = await podsAnswering(c, 30);
    expect(after.has(victim)).toBe(false);
    c.close();
  });

  it('tracks ACKs per proxy and type, and keeps a NACK visible with its error', async () => {
    const Ads = grpc.makeGenericClientConstructor(aggregatedDiscoveryService(), 'ADS');
    const raw = new Ads(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    channels.push(raw);
    const stream = (
      raw as unknown as Record<string, () => grpc.ClientDuplexStream<object, { nonce: string; version_info: string; type_url: string }>>
    )['StreamAggregatedResources']?.();
    if (!stream) throw new Error('no ADS stream');
    const responses: Array<{ nonce: string; version_info: string; type_url: string }> = [];
    stream.on('data', (r: { nonce: string; version_info: string; type_url: string }) => responses.push(r));
    stream.on('error', () => undefined);
    stream.write({
      node: { id: 'sidecar~10.244.9.11~nacker.traffic~traffic.svc.cluster.local' },
      type_url: typeUrls.cluster,
      resource_names: [],
    });
    const first = await eventually('a CDS response', async () => responses.find((r) => r.type_url === typeUrls.cluster));
    stream.write({
      type_url: typeUrls.cluster,
      version_info: '',
      response_nonce: first.nonce,
      error_detail: { code: 3, message: 'cluster rejected by test' },
    });
    // An unknown type gets an empty answer, and the stream stays up.
    stream.write({ type_url: 'type.googleapis.com/istio.networking.nds.v1.NameTable', resource_names: [] });
    await eventually('an empty answer for an unknown type', async () => responses.find((r) => r.type_url.endsWith('NameTable')));
    const status = await eventually('the NACK to be recorded', async () => {
      const proxy = ads.status().find((p) => p.nodeId.includes('nacker'));
      const cds = proxy?.types.find((t) => t.typeUrl === typeUrls.cluster);
      return cds?.state === 'nacked' ? cds : undefined;
    });
    expect(status).toMatchObject({ state: 'nacked', lastNackError: 'cluster rejected by test', versionSent: first.version_info });
    // A stale nonce is ignored. The server handles a stream's requests in order, so once it has
    // answered a later request (LDS), it has handled the stale one.
    stream.write({ type_url: typeUrls.cluster, version_info: first.version_info, response_nonce: 'stale-nonce' });
    stream.write({ type_url: typeUrls.listener, resource_names: [] });
    await eventually('the LDS answer that follows the stale nonce', async () => responses.find((r) => r.type_url === typeUrls.listener));
    expect(
      ads
        .status()
        .find((p) => p.nodeId.includes('nacker'))
        ?.types.find((t) => t.typeUrl === typeUrls.cluster),
    ).toMatchObject({ state: 'nacked', lastNackError: 'cluster rejected by test' });
    stream.end();
    raw.close();

    // A gRPC client that was served answered every type it was sent with an ACK of that version.
    const c = client('sidecar~10.244.9.13~acker.traffic~traffic.svc.cluster.local');
    try {
      await eventually('a call through the acking client', async () => echo(c).catch(() => undefined));
      const acker = await eventually('the client to answer every response it was sent', async () => {
        const proxy = ads.status().find((p) => p.nodeId.includes('acker'));
        return proxy && proxy.types.length > 0 && proxy.types.every((t) => t.state !== 'pending') ? proxy : undefined;
      });
      expect(acker.types.map((t) => t.typeUrl).sort()).toEqual(
        [typeUrls.listener, typeUrls.route, typeUrls.cluster, typeUrls.endpoint].sort(),
      );
      for (const t of acker.types)
        expect({ type: t.typeUrl, state: t.state, acked: t.versionAcked }).toEqual({
          type: t.typeUrl,
          state: 'acked',
          acked: t.versionSent,
        });
    } finally {
      c.close();
    }
  });

  it('authenticates proxies by ServiceAccount token where asked to (15012)', async () => {
    const authenticator = new TokenAuthenticator(kc, ['istio-ca']);
    const secured = new grpc.Server();
    secured.addService(
      aggregatedDiscoveryService(),
      ads.implementation((authorization) => authenticator.authenticate(authorization)),
    );
    const securedPort = await new Promise<number>((resolve, reject) =>
      secured.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    const Ads = grpc.makeGenericClientConstructor(aggregatedDiscoveryService(), 'ADS');
    const open = async (token?: string) => {
      const raw = new Ads(`127.0.0.1:${securedPort}`, grpc.credentials.createInsecure());
      try {
        return await new Promise<{ error?: grpc.ServiceError; response?: unknown }>((resolve) => {
          const metadata = new grpc.Metadata();
          if (token) metadata.set('authorization', `Bearer ${token}`);
          const stream = (raw as unknown as Record<string, (m: grpc.Metadata) => grpc.ClientDuplexStream<object, unknown>>)[
            'StreamAggregatedResources'
          ]?.(metadata);
          stream?.on('data', (response) => {
            resolve({ response });
            stream.cancel();
          });
          stream?.on('error', (error: grpc.ServiceError) => resolve({ error }));
          stream?.write({ node: { id: 'sidecar~10.244.9.12~secure.traffic~traffic.svc.cluster.local' }, type_url: typeUrls.cluster });
        });
      } finally {
        raw.close();
      }
    };
    try {
      const anonymous = await open();
      expect(anonymous.error?.code).toBe(grpc.status.UNAUTHENTICATED);
      await kc.makeApiClient(CoreV1Api).createNamespacedServiceAccount({ namespace: 'traffic', body: { metadata: { name: 'secure' } } });
      const token = (
        await kc
          .makeApiClient(CoreV1Api)
          .createNamespacedServiceAccountToken({ name: 'secure', namespace: 'traffic', body: { spec: { audiences: ['istio-ca'] } } })
      ).status?.token;
      const authenticated = await open(token);
      expect(authenticated.error).toBeUndefined();
      expect(authenticated.response).toBeDefined();
    } finally {
      secured.forceShutdown();
    }
  });

  it("serves Delta xDS to Istio's own adsc client: additions, endpoint updates and removals", async () => {
    const { istioClient } = await ensureClusterBinaries(undefined, { allowBuild: false });
    const child = spawn(istioClient, ['delta-xds', `--xds-address=127.0.0.1:${port}`, '--namespace=traffic', '--ip=10.244.9.20'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const events: Array<{ type: string; event?: string; name?: string; addresses?: string[] }> = [];
    // Istio's logger writes to stdout too: JSON lines are events, the rest is its log.
    const clientLog: string[] = [];
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line.startsWith('{')) events.push(JSON.parse(line));
      else clientLog.push(line);
    });
    createInterface({ input: child.stderr }).on('line', (line) => clientLog.push(line));
    try {
      const echoCluster = 'outbound|8080||echo.traffic.svc.cluster.local';
      await eventually('the delta client to sync', async () => (events.some((e) => e.type === 'synced') ? true : undefined));
      expect(events).toContainEqual({ type: 'cluster', event: 'add', name: echoCluster });
      const pods = await runningPods();
      const endpointsOf = async (count: number) =>
        eventually(`${count} endpoints of echo over delta`, async () => {
          const last = events.filter((e) => e.type === 'endpoint' && e.name === echoCluster).at(-1);
          return last?.addresses?.length === count ? last : undefined;
        });
      await endpointsOf(pods.length);

      await kc.makeApiClient(AppsV1Api).patchNamespacedDeploymentScale({
        name: 'echo',
        namespace: 'traffic',
        body: [{ op: 'replace', path: '/spec/replicas', value: 1 }],
      });
      await endpointsOf(1);

      await kc.makeApiClient(CoreV1Api).createNamespacedService({
        namespace: 'traffic',
        body: { metadata: { name: 'extra' }, spec: { selector: { app: 'none' }, ports: [{ name: 'grpc', port: 7070 }] } },
      });
      await eventually('the new cluster over delta', async () =>
        events.some((e) => e.type === 'cluster' && e.event === 'add' && e.name === 'outbound|7070||extra.traffic.svc.cluster.local')
          ? true
          : undefined,
      );
      await kc.makeApiClient(CoreV1Api).deleteNamespacedService({ name: 'extra', namespace: 'traffic' });
      await eventually('the removed cluster over delta', async () =>
        events.some((e) => e.type === 'cluster' && e.event === 'delete' && e.name === 'outbound|7070||extra.traffic.svc.cluster.local')
          ? true
          : undefined,
      );
      const cds = await eventually(`the delta stream's CDS ACK`, async () => {
        const delta = ads.status().find((p) => p.nodeId.includes('delta-client'));
        const state = delta?.types.find((t) => t.typeUrl === typeUrls.cluster);
        return state?.state === 'acked' ? state : undefined;
      });
      expect(cds).toMatchObject({ subscribed: 'wildcard', state: 'acked' });
    } catch (error) {
      throw new Error(
        `${(error as Error).message}\nxDS status: ${JSON.stringify(ads.status())}\nadsc log:\n${clientLog.slice(-15).join('\n')}`,
        { cause: error },
      );
    } finally {
      child.stdin.end();
      child.kill();
    }
  });

  it('gives an xDS-enabled gRPC server (XdsServer) its inbound listener, and clients reach it through its Service', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    await core.createNamespacedService({
      namespace: 'traffic',
      body: {
        metadata: { name: 'xdssrv' },
        spec: { selector: { app: 'xdssrv' }, ports: [{ name: 'grpc', port: 9443, targetPort: 9443 }] },
      },
    });
    await core.createNamespacedPod({
      namespace: 'traffic',
      body: {
        metadata: { name: 'xdssrv', labels: { app: 'xdssrv' } },
        spec: { containers: [{ name: 'srv', image: 'registry.example/xds-server:1', ports: [{ name: 'grpc', containerPort: 9443 }] }] },
      },
    });
    const podIp = await eventually(
      'the xdssrv pod IP',
      async () => (await core.readNamespacedPod({ name: 'xdssrv', namespace: 'traffic' })).status?.podIP,
    );
    const bootstrap = {
      xds_servers: [{ server_uri: `127.0.0.1:${port}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
      node: { id: `sidecar~${podIp}~xdssrv.traffic~traffic.svc.cluster.local`, locality: {}, metadata: { GENERATOR: 'grpc' } },
      server_listener_resource_name_template: 'xds.istio.io/grpc/lds/inbound/%s',
    };
    const xdsServer = new grpcXds.XdsServer({ 'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config': JSON.stringify(bootstrap) });
    xdsServer.addService(echoService, {
      Echo: (call: grpc.ServerUnaryCall<{ message: string }, EchoReply>, callback: grpc.sendUnaryData<EchoReply>) =>
        callback(null, { pod: 'xdssrv', message: call.request.message }),
    });
    await new Promise<void>((resolve, reject) =>
      xdsServer.bindAsync(`${podIp}:9443`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())),
    );
    const c = new EchoClient('xds:///xdssrv.traffic.svc.cluster.local:9443', grpc.credentials.createInsecure(), {
      'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config': JSON.stringify({
        ...bootstrap,
        node: { id: 'sidecar~10.244.9.30~caller.traffic~traffic.svc.cluster.local', locality: {}, metadata: { GENERATOR: 'grpc' } },
      }),
    });
    try {
      const reply = await eventually('a call served by the XdsServer', async () => echo(c).catch(() => undefined));
      expect(reply).toEqual({ pod: 'xdssrv', message: 'hi' });
      const server = ads.status().find((p) => p.nodeId.includes('xdssrv.traffic'));
      expect(server?.types.find((t) => t.typeUrl === typeUrls.listener)?.subscribed).toEqual([
        `xds.istio.io/grpc/lds/inbound/${podIp}:9443`,
      ]);
    } finally {
      c.close();
      xdsServer.forceShutdown();
    }
  });
});
