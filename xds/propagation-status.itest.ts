// Istio's `Reconciled` condition against a real API server: a VirtualService applied with
// kubectl's API, ADS clients on loopback that ACK (or NACK) what weftd's xDS server pushes,
// and the condition read back from the object's status: "1/1 proxies up to date." once the
// ACKing proxy has the config, the NACKing proxy named while it rejects it, and the count
// following proxies that leave and generations that change.
import * as grpc from '@grpc/grpc-js';
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { componentLogger } from '../lib/logger.js';
import { describeWithCluster } from '../testing/jest/local-cluster-fixture.js';
import { createNamespace, eventually } from '../testing/jest/kube-helpers.js';
import { installIstioCrds, startXdsHarness, type XdsHarness } from '../testing/jest/xds-harness.js';
import { Propagation } from './model/propagation.js';
import { aggregatedDiscoveryService, typeUrls } from './protos.js';

const log = componentLogger('propagation-status-test');
const ns = 'propagation';

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
  observedGeneration?: number;
}

describeWithCluster('Reconciled condition on Istio objects', (cluster) => {
  let kc: KubeConfig;
  let custom: CustomObjectsApi;
  let xds: XdsHarness;
  const closers: Array<() => void> = [];

  beforeAll(async () => {
    kc = cluster().kubeConfig();
    custom = kc.makeApiClient(CustomObjectsApi);
    await installIstioCrds(cluster());
    const propagation = new Propagation();
    xds = await startXdsHarness(kc, log, { writeStatus: true, trustDomain: 'cluster.local', propagation });
    xds.ads.observeSync(propagation);
    await createNamespace(kc, ns);
    await kc.makeApiClient(CoreV1Api).createNamespacedService({
      namespace: ns,
      body: { metadata: { name: 'reviews' }, spec: { selector: { app: 'reviews' }, ports: [{ name: 'grpc', port: 9090 }] } },
    });
  });

  afterAll(async () => {
    for (const close of closers) close();
    await xds?.stop();
  });

  /** A proxy of `ns` subscribing to clusters and listeners, answering every push with an ACK, or a NACK saying `nack`. */
  function proxy(pod: string, nack?: string): () => void {
    const Ads = grpc.makeGenericClientConstructor(aggregatedDiscoveryService(), 'ADS');
    const client = new Ads(`127.0.0.1:${xds.port}`, grpc.credentials.createInsecure());
    const stream = (
      client as unknown as Record<string, () => grpc.ClientDuplexStream<object, { nonce: string; version_info: string; type_url: string }>>
    )['StreamAggregatedResources']?.();
    if (!stream) throw new Error('no ADS stream');
    stream.on('error', () => undefined);
    stream.on('data', (response: { nonce: string; version_info: string; type_url: string }) =>
      stream.write({
        type_url: response.type_url,
        response_nonce: response.nonce,
        ...(nack ? { error_detail: { code: 3, message: nack } } : { version_info: response.version_info }),
      }),
    );
    stream.write({ node: { id: `sidecar~10.244.7.1~${pod}.${ns}~${ns}.svc.cluster.local` }, type_url: typeUrls.cluster });
    stream.write({ type_url: typeUrls.listener });
    const close = () => {
      stream.cancel();
      client.close();
    };
    closers.push(close);
    return close;
  }

  const virtualService = (timeout: string) => ({
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'reviews', namespace: ns },
    spec: { hosts: ['reviews'], http: [{ timeout, route: [{ destination: { host: 'reviews' } }] }] },
  });
  const target = { group: 'networking.istio.io', version: 'v1', namespace: ns, plural: 'virtualservices', name: 'reviews' };
  /** The VirtualService's Reconciled condition once it says `message` (the whole condition, transition time aside). */
  const reconciled = (message: string | RegExp) =>
    eventually(`the Reconciled condition to say ${String(message)}`, async () => {
      const object = (await custom.getNamespacedCustomObject(target)) as { status?: { conditions?: Condition[] } };
      const condition = object.status?.conditions?.find((c) => c.type === 'Reconciled');
      const matches = typeof message === 'string' ? condition?.message === message : message.test(condition?.message ?? '');
      return matches ? condition : undefined;
    });

  it('says how many proxies the VirtualService applies to are up to date, and which one rejects it', async () => {
    await custom.createNamespacedCustomObject({ ...target, body: virtualService('5s') });
    proxy('web-1');
    expect(await reconciled('1/1 proxies up to date.')).toMatchObject({ status: 'True', reason: 'Reconciled', observedGeneration: 1 });

    // A proxy that rejects everything it is sent: counted, never up to date, and named with its error.
    const leave = proxy('web-2', 'rejected by the test proxy');
    expect(
      await reconciled(/^1\/2 proxies up to date\. Last NACK: web-2\.propagation rejected (Cluster|Listener): rejected by the test proxy$/),
    ).toMatchObject({
      status: 'False',
      reason: 'Rejected',
    });
    leave();
    expect(await reconciled('1/1 proxies up to date.')).toMatchObject({ status: 'True', observedGeneration: 1 });

    // A new generation is counted from the model holding it. (weftd writes the status meanwhile: a 409 Conflict is read again.)
    await eventually('the VirtualService to be replaced', async () => {
      const current = (await custom.getNamespacedCustomObject(target)) as { metadata: { resourceVersion: string } };
      const body = virtualService('7s');
      try {
        await custom.replaceNamespacedCustomObject({
          ...target,
          body: { ...body, metadata: { ...body.metadata, resourceVersion: current.metadata.resourceVersion } },
        });
        return true;
      } catch (error) {
        if ((error as { code?: number }).code === 409) return undefined;
        throw error;
      }
    });
    await eventually('generation 2 to be reconciled', async () => {
      const condition = await reconciled('1/1 proxies up to date.');
      return condition.observedGeneration === 2 ? condition : undefined;
    });
    // The verdict is still there beside it.
    const object = (await custom.getNamespacedCustomObject(target)) as { status?: { conditions?: Condition[] } };
    expect(object.status?.conditions?.find((c) => c.type === 'Accepted')).toMatchObject({ status: 'True' });
  });
});
