// The weft CLI as users run it (`node dist/cmd/weft.js ...`, a real subprocess with
// only a kubeconfig) against a real cluster: `weft install --wait` brings up the
// operator and two weftd replicas (run as processes bound to their pod IPs), then
// proxyless gRPC clients connect to weftd and the CLI reads weftd through the API
// server's pod proxy.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as grpcXds from '@grpc/grpc-js-xds';
import { AppsV1Api, CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { typeUrls, aggregatedDiscoveryService } from '../xds/protos.js';
import { freePort } from '../testing/cluster/free-port.js';
import { PodProcessRunner, weftImageRule } from '../testing/cluster/pod-processes.js';
import { describeWithCluster } from '../testing/jest/local-cluster-fixture.js';
import { createNamespace, eventually } from '../testing/jest/kube-helpers.js';
import { echoDeployment } from '../testing/jest/xds-harness.js';
import { echoService, type EchoReply } from '../testing/workloads/echo.js';

grpcXds.register();

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

describeWithCluster('weft CLI', (cluster) => {
  let kc: KubeConfig;
  let runner: PodProcessRunner;
  const clients: grpc.Client[] = [];
  const EchoClient = grpc.makeGenericClientConstructor(echoService, 'Echo');

  /** The CLI exactly as `./weft` runs it: the built executable, in its own process. */
  const weft = (args: string[], kubeconfig = cluster().kubeconfigPath): Promise<Run> =>
    new Promise((resolve) => {
      execFile(
        process.execPath,
        [join(process.cwd(), 'dist', 'cmd', 'weft.js'), ...args],
        { env: { ...process.env, KUBECONFIG: kubeconfig }, timeout: 200_000 },
        (error, stdout, stderr) => resolve({ status: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr }),
      );
    });
  const weftOk = async (args: string[]): Promise<string> => {
    const run = await weft(args);
    if (run.status !== 0) throw new Error(`weft ${args.join(' ')} exited ${run.status}: ${run.stderr}${run.stdout}`);
    return run.stdout;
  };
  const row = (table: string, name: string) => table.split('\n').find((line) => line.startsWith(`${name} `));

  const weftdPodIps = async () =>
    (await kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: 'weft-system', labelSelector: 'app.kubernetes.io/name=weftd' })).items
      .filter((pod) => pod.status?.phase === 'Running' && pod.status.podIP && !pod.metadata?.deletionTimestamp)
      .map((pod) => pod.status?.podIP as string)
      .sort();

  beforeAll(async () => {
    kc = cluster().kubeConfig();
    runner = new PodProcessRunner(kc, {
      server: cluster().server,
      caFile: cluster().pki.caFile,
      workDir: join(cluster().workDir, 'pods'),
      rules: [
        weftImageRule(process.cwd()),
        {
          matches: (image) => image.startsWith('registry.example/echo'),
          command: () => [process.execPath, join(process.cwd(), 'dist', 'testing', 'workloads', 'echo-workload.js')],
        },
      ],
    });
    runner.start();
  });

  afterAll(async () => {
    for (const client of clients) client.close();
    await runner?.stop();
  });

  it('says so clearly when no control plane is installed, or no API server answers', async () => {
    const none = await weft(['proxy-status']);
    expect(none).toMatchObject({ status: 1, stdout: '' });
    expect(none.stderr).toBe('weft: no MeshInstallation found; run `weft install`\n');

    const port = await freePort();
    const bad = join(cluster().workDir, 'unreachable.kubeconfig');
    writeFileSync(
      bad,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'gone', cluster: { server: `https://127.0.0.1:${port}`, 'insecure-skip-tls-verify': true } }],
        users: [{ name: 'me', user: { token: 'x' } }],
        contexts: [{ name: 'gone', context: { cluster: 'gone', user: 'me' } }],
        'current-context': 'gone',
      }),
    );
    for (const command of [['status'], ['proxy-status'], ['proxy-config', 'routes', 'client-1.traffic']]) {
      const unreachable = await weft(command, bad);
      expect(unreachable.status).toBe(1);
      expect(unreachable.stderr).toBe(
        `weft: cannot reach the Kubernetes API at https://127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}; check your kubeconfig/context\n`,
      );
    }
  });

  it('installs Weft (install.yaml and a MeshInstallation, server-side applied) and waits until the mesh is Ready', async () => {
    const run = await weft(['install', '--profile', 'minimal', '--set', 'controlPlane.replicas=2', '--wait', '--timeout', '150s']);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('CustomResourceDefinitions applied and established');
    expect(run.stdout).toContain('MeshInstallation default: Ready=True');
    expect(run.stdout).toMatch(/weftd: pod weft-system\/weftd-\S+ serving \(\/ready\)/);
    expect(run.stdout).toContain('✔ the mesh is Ready (MeshInstallation default, control plane in weft-system)');
  }, 200_000);

  it('weft status shows the installation Ready, with each component healthy', async () => {
    const table = await weftOk(['status']);
    expect(row(table, 'default')).toMatch(/^default\s+minimal\s+weft-system\s+default\s+True\s+/);
    expect(table).toMatch(/deployment\/weft-operator\s+weft-operator\s+2\/2\s+ok/);
    expect(table).toMatch(/deployment\/weftd\s+weft-system\s+2\/2\s+ok/);
    expect(table.match(/pod\/weftd-\S+ \/ready\s+weft-system\s+yes\s+ready/g)).toHaveLength(2);
    expect(table).toContain('Mesh: Ready');
    const data = JSON.parse(await weftOk(['status', '-o', 'json']));
    expect(data).toMatchObject({
      ready: true,
      installations: [{ name: 'default', spec: { profile: 'minimal', namespace: 'weft-system' } }],
    });
  });

  it('weft proxy-status lists a proxyless gRPC client SYNCED, and a NACKing proxy as NACK with its error', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    await createNamespace(kc, 'traffic');
    await core.createNamespacedService({
      namespace: 'traffic',
      body: { metadata: { name: 'echo' }, spec: { selector: { app: 'echo' }, ports: [{ name: 'grpc', port: 8080, targetPort: 9090 }] } },
    });
    await kc.makeApiClient(AppsV1Api).createNamespacedDeployment({ namespace: 'traffic', body: echoDeployment('echo', {}, 1) });
    const weftds = await eventually('two weftd pods', async () => {
      const ips = await weftdPodIps();
      return ips.length === 2 ? ips : undefined;
    });

    // A proxyless gRPC client (node metadata GENERATOR=grpc, as Istio's grpc-agent sets) on the first weftd.
    const bootstrap = {
      xds_servers: [{ server_uri: `${weftds[0]}:15010`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
      node: { id: 'sidecar~10.244.9.9~client-1.traffic~traffic.svc.cluster.local', locality: {}, metadata: { GENERATOR: 'grpc' } },
    };
    const client = new EchoClient('xds:///echo.traffic.svc.cluster.local:8080', grpc.credentials.createInsecure(), {
      'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config': JSON.stringify(bootstrap),
    });
    clients.push(client);
    await eventually(
      'a call through xDS to the echo pod',
      () =>
        new Promise<EchoReply | undefined>((resolve) =>
          (client as unknown as Record<string, (r: object, o: object, cb: (e: Error | null, v: EchoReply) => void) => void>)['Echo']?.(
            { message: 'hi' },
            { deadline: Date.now() + 3_000 },
            (e, v) => resolve(e ? undefined : v),
          ),
        ),
    );

    // A proxy on the second weftd that rejects the clusters it is sent.
    const Ads = grpc.makeGenericClientConstructor(aggregatedDiscoveryService(), 'ADS');
    const raw = new Ads(`${weftds[1]}:15010`, grpc.credentials.createInsecure());
    clients.push(raw);
    const stream = (
      raw as unknown as Record<string, () => grpc.ClientDuplexStream<object, { nonce: string; version_info: string; type_url: string }>>
    )['StreamAggregatedResources']?.();
    if (!stream) throw new Error('no ADS stream');
    const responses: Array<{ nonce: string; type_url: string }> = [];
    stream.on('data', (r: { nonce: string; type_url: string }) => responses.push(r));
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

    const table = await eventually('client-1 SYNCED and nacker NACK in weft proxy-status', async () => {
      const output = await weftOk(['proxy-status']);
      const synced = row(output, 'client-1')?.match(/^client-1\s+traffic\s+SYNCED\s+SYNCED\s+SYNCED\s+SYNCED\s+weftd-/);
      const nacked = row(output, 'nacker')?.match(/^nacker\s+traffic\s+NACK\s+NOT SENT\s+NOT SENT\s+NOT SENT\s+weftd-/);
      return synced && nacked ? output : undefined;
    });
    expect(table.split('\n')[0]).toMatch(/^NAME\s+NAMESPACE\s+CDS\s+LDS\s+EDS\s+RDS\s+WEFTD\s+VERSION$/);
    // The two proxies are on different weftd replicas; the CLI asked both.
    expect(row(table, 'client-1')?.split(/\s+/)[6]).not.toBe(row(table, 'nacker')?.split(/\s+/)[6]);

    const detail = await weftOk(['proxy-status', 'nacker.traffic']);
    expect(detail).toContain('Node ID:   sidecar~10.244.9.11~nacker.traffic~traffic.svc.cluster.local');
    expect(detail).toMatch(/CDS\s+NACK\s+\S+\s+-\s+\*\s+cluster rejected by test/);
    const json = JSON.parse(await weftOk(['proxy-status', 'nacker', '-n', 'traffic', '-o', 'json']));
    expect(json).toMatchObject({ name: 'nacker.traffic', sync: { CDS: 'NACK' } });
    expect(json.types).toContainEqual(expect.objectContaining({ type: 'CDS', status: 'NACK', lastNackError: 'cluster rejected by test' }));
    expect((await weftOk(['proxy-status', '-o', 'name'])).split('\n')).toEqual(
      expect.arrayContaining(['client-1.traffic', 'nacker.traffic']),
    );

    const missing = await weft(['proxy-status', 'ghost.traffic']);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/^weft: no proxy ghost.traffic is connected to weftd; connected proxies: .*client-1.traffic/);
    stream.end();
  });

  it('weft proxy-config shows what weftd sent a proxy: routes, clusters, listeners, endpoints', async () => {
    const routes = await weftOk(['proxy-config', 'routes', 'client-1.traffic']);
    expect(routes.split('\n')[0]).toMatch(/^NAME\s+VHOST NAME\s+DOMAINS\s+MATCH\s+DESTINATION$/);
    expect(routes).toMatch(
      /echo\.traffic\.svc\.cluster\.local:8080\s+echo\.traffic\.svc\.cluster\.local:8080\s+echo\.traffic\.svc\.cluster\.local \+\d+ more\s+\/\*\s+outbound\|8080\|\|echo\.traffic\.svc\.cluster\.local/,
    );
    const clusters = await weftOk(['proxy-config', 'clusters', 'client-1', '--namespace', 'traffic']);
    expect(clusters).toMatch(/echo\.traffic\.svc\.cluster\.local\s+8080\s+-\s+OUTBOUND\s+EDS/);
    const listeners = await weftOk(['proxy-config', 'listeners', 'client-1.traffic']);
    expect(listeners).toMatch(/echo\.traffic\.svc\.cluster\.local:8080\s+-\s+-\s+ALL\s+Route: echo\.traffic\.svc\.cluster\.local:8080/);
    const echoIp = (await kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: 'traffic', labelSelector: 'app=echo' })).items[0]
      ?.status?.podIP;
    const endpoints = await weftOk(['proxy-config', 'endpoints', 'client-1.traffic']);
    expect(endpoints).toMatch(
      new RegExp(`${echoIp?.replace(/\./g, '\\.')}:9090\\s+HEALTHY\\s+outbound\\|8080\\|\\|echo\\.traffic\\.svc\\.cluster\\.local`),
    );
    const raw = JSON.parse(await weftOk(['proxy-config', 'routes', 'client-1.traffic', '-o', 'json']));
    expect(raw).toEqual([expect.objectContaining({ name: 'echo.traffic.svc.cluster.local:8080' })]);
    const all = await weftOk(['proxy-config', 'all', 'client-1.traffic', '-o', 'yaml']);
    expect(all).toContain('"@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager');
    expect(all).not.toContain('PRIVATE KEY');
  });

  it('weft proxy-status and proxy-config show a gateway proxy (router) and the Istio Gateway config weftd sent it', async () => {
    const custom = kc.makeApiClient(CustomObjectsApi);
    const create = (plural: string, body: object) =>
      custom.createNamespacedCustomObject({ group: 'networking.istio.io', version: 'v1', namespace: 'traffic', plural, body });
    await create('gateways', {
      apiVersion: 'networking.istio.io/v1',
      kind: 'Gateway',
      metadata: { name: 'edge' },
      spec: {
        selector: { istio: 'ingressgateway' },
        servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['echo.example.com'] }],
      },
    });
    await create('virtualservices', {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'edge' },
      spec: {
        hosts: ['echo.example.com'],
        gateways: ['edge'],
        http: [{ route: [{ destination: { host: 'echo', port: { number: 8080 } } }] }],
      },
    });
    const [weftd] = await weftdPodIps();
    // A gateway proxy as pilot-agent's router mode identifies itself, ACKing what it is sent.
    const Ads = grpc.makeGenericClientConstructor(aggregatedDiscoveryService(), 'ADS');
    const raw = new Ads(`${weftd}:15010`, grpc.credentials.createInsecure());
    clients.push(raw);
    type Response = { nonce: string; version_info: string; type_url: string };
    const stream = (raw as unknown as Record<string, () => grpc.ClientDuplexStream<object, Response>>)['StreamAggregatedResources']?.();
    if (!stream) throw new Error('no ADS stream');
    stream.on('data', (r: Response) => {
      stream.write({
        type_url: r.type_url,
        version_info: r.version_info,
        response_nonce: r.nonce,
        ...(r.type_url === typeUrls.route ? { resource_names: ['http.80'] } : {}),
      });
    });
    stream.on('error', () => undefined);
    stream.write({
      node: {
        id: 'router~10.244.9.12~gw-1.traffic~traffic.svc.cluster.local',
        // google.protobuf.Struct as protobufjs encodes it (camelCase value fields).
        metadata: {
          fields: {
            NAMESPACE: { stringValue: 'traffic' },
            LABELS: { structValue: { fields: { istio: { stringValue: 'ingressgateway' } } } },
          },
        },
      },
      type_url: typeUrls.cluster,
      resource_names: [],
    });
    stream.write({ type_url: typeUrls.listener, resource_names: [] });
    stream.write({ type_url: typeUrls.route, resource_names: ['http.80'] });

    await eventually('gw-1 SYNCED for CDS, LDS and RDS in weft proxy-status', async () => {
      const output = await weftOk(['proxy-status']);
      return row(output, 'gw-1')?.match(/^gw-1\s+traffic\s+SYNCED\s+SYNCED\s+NOT SENT\s+SYNCED\s+weftd-/) ? output : undefined;
    });
    const listeners = await weftOk(['proxy-config', 'listeners', 'gw-1.traffic']);
    expect(listeners).toMatch(/0\.0\.0\.0\s+80\s+ALL\s+Route: http\.80/);
    const routes = await weftOk(['proxy-config', 'routes', 'gw-1.traffic']);
    expect(routes).toMatch(
      /http\.80\s+echo\.example\.com:80\s+echo\.example\.com\s+\/\*\s+outbound\|8080\|\|echo\.traffic\.svc\.cluster\.local/,
    );
    stream.end();
  });
});
