// Control-plane traces over real OTLP/HTTP: a Service created on the real apiserver
// reaches a connected @grpc/grpc-js-xds client, and the trace of that change (watch
// event, debounce, generation, the push and its ACK) arrives at a collector stand-in
// on loopback that decodes the OTLP JSON body.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import * as grpcXds from '@grpc/grpc-js-xds';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { componentLogger } from '../lib/logger.js';
import { startTracing, type Tracing } from '../lib/tracing.js';
import { describeWithCluster } from '../testing/jest/local-cluster-fixture.js';
import { createNamespace, eventually } from '../testing/jest/kube-helpers.js';
import { echoService } from '../testing/workloads/echo.js';
import { ProxyGroups } from './cache/proxy-groups.js';
import { KubeMeshModel } from './model/kube-mesh-model.js';
import { aggregatedDiscoveryService, typeUrls } from './protos.js';
import { AdsServer } from './server/ads-server.js';

grpcXds.register();
const log = componentLogger('tracing-test');
const ns = 'traced';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  status?: { code?: number; message?: string };
  attributes?: Array<{ key: string; value: { stringValue?: string; intValue?: number | string; boolValue?: boolean } }>;
}
interface OtlpRequest {
  resourceSpans?: Array<{
    resource?: { attributes?: OtlpSpan['attributes'] };
    scopeSpans?: Array<{ spans?: OtlpSpan[] }>;
  }>;
}

const attribute = (span: OtlpSpan, key: string) => {
  const value = span.attributes?.find((a) => a.key === key)?.value;
  return value?.stringValue ?? value?.intValue ?? value?.boolValue;
};

/** The collector stand-in: OTLP/HTTP JSON on /v1/traces, every span kept with its service name. */
function startCollector(): Promise<{ server: Server; spans: Array<OtlpSpan & { service: string }> }> {
  const spans: Array<OtlpSpan & { service: string }> = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces' || !String(req.headers['content-type']).includes('json')) {
        res.statusCode = 415;
        res.end();
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpRequest;
      for (const resourceSpans of body.resourceSpans ?? []) {
        const service = resourceSpans.resource?.attributes?.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
        for (const scope of resourceSpans.scopeSpans ?? []) for (const span of scope.spans ?? []) spans.push({ ...span, service });
      }
      res.setHeader('content-type', 'application/json');
      res.end('{}');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, spans })));
}

describeWithCluster('control-plane traces over OTLP', (cluster) => {
  let kc: KubeConfig;
  let collector: Awaited<ReturnType<typeof startCollector>>;
  let tracing: Tracing;
  let model: KubeMeshModel;
  let ads: AdsServer;
  let server: grpc.Server;
  let client: grpc.Client | undefined;

  beforeAll(async () => {
    collector = await startCollector();
    process.env['OTEL_EXPORTER_OTLP_ENDPOINT'] = `http://127.0.0.1:${(collector.server.address() as AddressInfo).port}`;
    tracing = startTracing('weftd');
    kc = cluster().kubeConfig();
    const groups = new ProxyGroups();
    model = new KubeMeshModel(kc, groups, log);
    await model.start();
    ads = new AdsServer(groups, log);
    server = new grpc.Server();
    server.addService(aggregatedDiscoveryService(), ads.implementation());
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    await createNamespace(kc, ns);
    const bootstrap = {
      xds_servers: [{ server_uri: `127.0.0.1:${port}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
      node: { id: `sidecar~10.244.9.9~client.${ns}~${ns}.svc.cluster.local`, locality: {}, metadata: { GENERATOR: 'grpc', NAMESPACE: ns } },
    };
    const Client = grpc.makeGenericClientConstructor(echoService, 'Echo');
    client = new Client(`xds:///echo.${ns}.svc.cluster.local:8080`, grpc.credentials.createInsecure(), {
      'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config': JSON.stringify(bootstrap),
    });
    // Resolving the target makes the client subscribe to its listener, before the Service exists.
    client.getChannel().getConnectivityState(true);
    await eventually('the client subscribed to its listener', async () =>
      ads.status().some((p) => p.types.some((t) => t.typeUrl === typeUrls.listener)) ? true : undefined,
    );
  });

  afterAll(async () => {
    client?.close();
    server?.forceShutdown();
    ads?.close();
    await model?.stop();
    await tracing?.shutdown();
    delete process.env['OTEL_EXPORTER_OTLP_ENDPOINT'];
    collector?.server.close();
  });

  it('exports the trace of a Service change, from its watch event to the client ACK of the listener it got', async () => {
    await kc.makeApiClient(CoreV1Api).createNamespacedService({
      namespace: ns,
      body: { metadata: { name: 'echo' }, spec: { selector: { app: 'echo' }, ports: [{ name: 'grpc', port: 8080, targetPort: 9090 }] } },
    });
    const trace = await eventually('the Service change traced to the client ACK', async () => {
      await tracing.flush();
      const spans = collector.spans;
      const push = spans.find(
        (s) =>
          s.name === 'xds.push' && attribute(s, 'xds.type') === 'Listener' && s.status?.code === 1 && attribute(s, 'xds.resources') !== 0,
      );
      if (!push) return undefined;
      const inTrace = spans.filter((s) => s.traceId === push.traceId);
      const byId = new Map(inTrace.map((s) => [s.spanId, s]));
      // Walk up from the push to the root: generate, debounce, the first watch event.
      const chain: string[] = [];
      for (let s: (typeof spans)[number] | undefined = push; s; s = s.parentSpanId ? byId.get(s.parentSpanId) : undefined)
        chain.push(s.name);
      return chain.at(-1)?.startsWith('xds.event') ? { push, chain, inTrace } : undefined;
    });
    expect(trace.chain.slice(0, 3)).toEqual(['xds.push', 'xds.generate', 'xds.debounce']);
    const root = trace.inTrace.find((s) => s.name === trace.chain.at(-1));
    expect(root?.parentSpanId ?? '').toBe('');
    // The Service's own event is part of this change (first, or joined while debouncing).
    expect(trace.inTrace.some((s) => s.name === 'xds.event services' && attribute(s, 'k8s.object.name') === 'echo')).toBe(true);
    expect(attribute(trace.push, 'xds.proxy')).toBe(`sidecar~10.244.9.9~client.${ns}~${ns}.svc.cluster.local`);
    expect(trace.push.service).toBe('weftd');
  });
});
