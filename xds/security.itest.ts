// Zero trust with real traffic: xDS-enabled gRPC servers and clients in the sandbox
// get Istio mTLS from Weft's xDS, with workload certificates signed by Weft's CA
// code; PeerAuthentication decides whether plaintext is still accepted.
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { selfSignedRootOfTrust, type RootOfTrust } from '../ca/root-of-trust.js';
import { componentLogger } from '../lib/logger.js';
import { describeWithCluster } from '../testing/jest/local-cluster-fixture.js';
import { createNamespace, eventually } from '../testing/jest/kube-helpers.js';
import { writeSpiffeIdentity } from '../testing/jest/spiffe-identity.js';
import { installIstioCrds, startXdsHarness, type XdsHarness } from '../testing/jest/xds-harness.js';
import { echoService, type EchoReply } from '../testing/workloads/echo.js';
import { typeUrls } from './protos.js';

const log = componentLogger('security-test');
const ns = 'secure';
const EchoClient = grpc.makeGenericClientConstructor(echoService, 'Echo');
type GrpcXds = typeof import('@grpc/grpc-js-xds');

describeWithCluster('Istio mTLS through Weft xDS', (cluster) => {
  let kc: KubeConfig;
  let grpcXds: GrpcXds;
  let xds: XdsHarness;
  let port: number;
  let custom: CustomObjectsApi;
  let root: RootOfTrust;
  let serverIp: string;
  let xdsServer: grpc.Server | undefined;
  const clients: grpc.Client[] = [];

  beforeAll(async () => {
    // grpc-js-xds reads its RBAC switch when loaded.
    process.env['GRPC_XDS_EXPERIMENTAL_RBAC'] = 'true';
    grpcXds = await import('@grpc/grpc-js-xds');
    grpcXds.register();
    kc = cluster().kubeConfig();
    custom = kc.makeApiClient(CustomObjectsApi);
    await installIstioCrds(cluster());
    xds = await startXdsHarness(kc, log, { trustDomain: 'cluster.local' });
    port = xds.port;
    root = selfSignedRootOfTrust('cluster.local', new Date());

    await createNamespace(kc, ns);
    const core = kc.makeApiClient(CoreV1Api);
    for (const sa of ['echo', 'client', 'intruder'])
      await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: sa } } });
    await core.createNamespacedService({
      namespace: ns,
      body: { metadata: { name: 'echo' }, spec: { selector: { app: 'echo' }, ports: [{ name: 'grpc', port: 9443, targetPort: 9443 }] } },
    });
    // A pod no process runner claims: the test itself serves its IP with an XdsServer.
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'echo', labels: { app: 'echo' } },
        spec: {
          serviceAccountName: 'echo',
          containers: [{ name: 'echo', image: 'registry.example/xds-echo:1', ports: [{ name: 'grpc', containerPort: 9443 }] }],
        },
      },
    });
    serverIp = await eventually(
      'the echo pod IP',
      async () => (await core.readNamespacedPod({ name: 'echo', namespace: ns })).status?.podIP,
    );
    xdsServer = await startXdsServer();
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    xdsServer?.forceShutdown();
    await xds?.stop();
  });

  /**
   * An identity from a CA, on disk as Istio's agent writes it for gRPC: `ca` signs the certificate;
   * `trust` is the root the workload verifies its peers with.
   */
  const identity = (serviceAccount: string, ca: RootOfTrust = root, trust: RootOfTrust = ca) =>
    writeSpiffeIdentity(join(cluster().workDir, 'certs'), { namespace: ns, serviceAccount, ca, trust }).certificateProviders;

  const bootstrap = (nodeId: string, labels: Record<string, string>, serviceAccount: string, ca?: RootOfTrust, trust?: RootOfTrust) => ({
    xds_servers: [{ server_uri: `127.0.0.1:${port}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: { id: nodeId, locality: {}, metadata: { GENERATOR: 'grpc', NAMESPACE: ns, LABELS: labels } },
    server_listener_resource_name_template: 'xds.istio.io/grpc/lds/inbound/%s',
    certificate_providers: identity(serviceAccount, ca, trust),
  });

  async function startXdsServer(): Promise<grpc.Server> {
    const options = {
      'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config': JSON.stringify(
        bootstrap(`sidecar~${serverIp}~echo.${ns}~${ns}.svc.cluster.local`, { app: 'echo' }, 'echo'),
      ),
    };
    const xds = new grpcXds.XdsServer(options);
    xds.addService(echoService, {
      Echo: (
        call: grpc.ServerUnaryCall<{ message: string }, EchoReply & { peer?: string }>,
        callback: grpc.sendUnaryData<EchoReply & { peer?: string }>,
      ) => {
        // The caller's SPIFFE ID, from its certificate (absent over plaintext).
        const san = call.getAuthContext().sslPeerCertificate?.subjectaltname ?? '';
        const peer = /URI:(spiffe:\/\/[^,\s]+)/.exec(san)?.[1];
        callback(null, { pod: 'echo', message: call.request.message, ...(peer ? { peer } : {}) });
      },
    });
    await new Promise<void>((resolve, reject) =>
      xds.bindAsync(`${serverIp}:9443`, new grpcXds.XdsServerCredentials(grpc.ServerCredentials.createInsecure()), (e) =>
        e ? reject(e) : resolve(),
      ),
    );
    return xds as unknown as grpc.Server;
  }

  /** mtls: the client uses xDS credentials (mTLS where the control plane says so); else plain insecure credentials. */
  function client(serviceAccount: string, mtls: boolean, ca?: RootOfTrust, trust?: RootOfTrust): grpc.Client {
    const id = `sidecar~10.244.9.${clients.length + 40}~${serviceAccount}-${clients.length}.${ns}~${ns}.svc.cluster.local`;
    const c = new EchoClient(
      `xds:///echo.${ns}.svc.cluster.local:9443`,
      mtls ? new grpcXds.XdsChannelCredentials(grpc.credentials.createInsecure()) : grpc.credentials.createInsecure(),
      {
        'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config': JSON.stringify(
          bootstrap(id, { app: serviceAccount }, serviceAccount, ca, trust),
        ),
      },
    );
    clients.push(c);
    return c;
  }

  const echo = (c: grpc.Client) =>
    new Promise<EchoReply & { peer?: string }>((resolve, reject) =>
      (
        c as unknown as Record<
          string,
          (r: object, o: object, cb: (e: grpc.ServiceError | null, v: EchoReply & { peer?: string }) => void) => void
        >
      )['Echo']?.({ message: 'hi' }, { deadline: Date.now() + 3_000 }, (e, v) => (e ? reject(e) : resolve(v))),
    );
  const outcome = (c: grpc.Client) =>
    echo(c).then(
      (reply) => ({ reply }),
      (error: grpc.ServiceError) => ({ error }),
    );

  const peerAuthentication = (mode: string) =>
    custom.createNamespacedCustomObject({
      group: 'security.istio.io',
      version: 'v1',
      namespace: ns,
      plural: 'peerauthentications',
      body: {
        apiVersion: 'security.istio.io/v1',
        kind: 'PeerAuthentication',
        metadata: { name: 'default', namespace: ns },
        spec: { mtls: { mode } },
      },
    });
  const removePeerAuthentication = () =>
    custom.deleteNamespacedCustomObject({
      group: 'security.istio.io',
      version: 'v1',
      namespace: ns,
      plural: 'peerauthentications',
      name: 'default',
    });

  it('under PERMISSIVE, plaintext and xDS-credential clients both succeed', async () => {
    const plain = await eventually(
      'a plaintext call',
      async () => await outcome(client('client', false)).then((o) => ('reply' in o ? o.reply : undefined)),
    );
    expect(plain.pod).toBe('echo');
    const secured = await eventually(
      'a call with xDS credentials',
      async () => await outcome(client('client', true)).then((o) => ('reply' in o ? o.reply : undefined)),
    );
    expect(secured.pod).toBe('echo');
  });

  it('under STRICT, refuses plaintext, serves mTLS, and the server sees the caller SPIFFE ID', async () => {
    await peerAuthentication('STRICT');
    const plain = client('client', false);
    const refused = await eventually('plaintext to be refused', async () => {
      const result = await outcome(plain);
      return 'error' in result ? result.error : undefined;
    });
    expect(refused.code).toBe(grpc.status.UNAVAILABLE);
    const secured = client('client', true);
    const reply = await eventually('an mTLS call', async () => {
      const result = await outcome(secured);
      return 'reply' in result && result.reply.peer ? result.reply : undefined;
    });
    expect(reply.peer).toBe(`spiffe://cluster.local/ns/${ns}/sa/client`);
    // Stays refused: not a transient failure.
    expect('error' in (await outcome(plain))).toBe(true);
  });

  it('refuses a client whose certificate comes from a different root, and serves one from the mesh root', async () => {
    // Both trust the mesh root (so both can verify the server) and claim the same identity; only the
    // stranger's certificate is signed by another root, so only the server's check tells them apart.
    const foreignRoot = selfSignedRootOfTrust('cluster.local', new Date());
    const strangerNode = `~client-${clients.length}.${ns}~`;
    const stranger = client('client', true, foreignRoot, root);
    const member = client('client', true);
    const served = await eventually('the mesh-root client to be served over mTLS', async () => {
      const result = await outcome(member);
      return 'reply' in result && result.reply.peer ? result.reply : undefined;
    });
    expect(served.peer).toBe(`spiffe://cluster.local/ns/${ns}/sa/client`);
    // A channel subscribes on its first call; once the stranger has ACKed its endpoints it holds
    // the same config as the member, and its calls are refused by the handshake, not by a missing route.
    await outcome(stranger);
    await eventually('the stranger to ACK its clusters and endpoints', async () => {
      const types = xds.ads.status().find((p) => p.nodeId.includes(strangerNode))?.types ?? [];
      const acked = (typeUrl: string) => types.some((t) => t.typeUrl === typeUrl && t.state === 'acked');
      return acked(typeUrls.cluster) && acked(typeUrls.endpoint) ? true : undefined;
    });
    // The server ends the handshake: the call fails to connect (not to resolve, not a deadline);
    // grpc-js does not pass the TLS alert on, so the details name the connection only.
    for (const result of await Promise.all([0, 1, 2].map(() => outcome(stranger)))) {
      expect('error' in result && { code: result.error.code, details: result.error.details }).toEqual({
        code: grpc.status.UNAVAILABLE,
        details: expect.stringContaining('No connection established'),
      });
    }
  });

  const authorizationPolicy = (name: string, spec: object) =>
    custom.createNamespacedCustomObject({
      group: 'security.istio.io',
      version: 'v1',
      namespace: ns,
      plural: 'authorizationpolicies',
      body: { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name, namespace: ns }, spec },
    });
  const removeAuthorizationPolicy = (name: string) =>
    custom.deleteNamespacedCustomObject({
      group: 'security.istio.io',
      version: 'v1',
      namespace: ns,
      plural: 'authorizationpolicies',
      name,
    });
  const code = async (c: grpc.Client) => {
    const result = await outcome(c);
    return 'error' in result ? result.error.code : grpc.status.OK;
  };

  it('admits only the service account an ALLOW policy names, and DENY beats ALLOW', async () => {
    await authorizationPolicy('allow-client', {
      selector: { matchLabels: { app: 'echo' } },
      action: 'ALLOW',
      rules: [
        {
          from: [{ source: { principals: [`cluster.local/ns/${ns}/sa/client`] } }],
          to: [{ operation: { methods: ['POST'], paths: ['/weft.testing.Echo/*'] } }],
        },
      ],
    });
    const allowed = client('client', true);
    const intruder = client('intruder', true);
    await eventually('the intruder to be denied', async () =>
      (await code(intruder)) === grpc.status.PERMISSION_DENIED ? true : undefined,
    );
    expect(await code(allowed)).toBe(grpc.status.OK);

    // A path the ALLOW rule does not name is denied to everyone.
    await removeAuthorizationPolicy('allow-client');
    await authorizationPolicy('allow-client', {
      selector: { matchLabels: { app: 'echo' } },
      rules: [
        {
          from: [{ source: { principals: [`cluster.local/ns/${ns}/sa/client`] } }],
          to: [{ operation: { paths: ['/weft.testing.Other/*'] } }],
        },
      ],
    });
    await eventually('an unnamed path to be denied', async () =>
      (await code(allowed)) === grpc.status.PERMISSION_DENIED ? true : undefined,
    );

    await removeAuthorizationPolicy('allow-client');
    await authorizationPolicy('allow-client', {
      selector: { matchLabels: { app: 'echo' } },
      rules: [{ from: [{ source: { namespaces: [ns] } }] }],
    });
    await eventually('the namespace rule to admit both', async () =>
      (await code(allowed)) === grpc.status.OK && (await code(intruder)) === grpc.status.OK ? true : undefined,
    );
    await authorizationPolicy('deny-intruder', {
      action: 'DENY',
      rules: [{ from: [{ source: { principals: [`cluster.local/ns/${ns}/sa/intruder`] } }] }],
    });
    await eventually('DENY to beat ALLOW', async () => ((await code(intruder)) === grpc.status.PERMISSION_DENIED ? true : undefined));
    expect(await code(allowed)).toBe(grpc.status.OK);
    await removeAuthorizationPolicy('deny-intruder');
    await removeAuthorizationPolicy('allow-client');
    await removePeerAuthentication();
  });
});
