// Informers on Services, EndpointSlices, Pods and Istio's networking config,
// turned into the MeshModel the generators read; changes are debounced and the
// proxies' snapshots regenerated.
import {
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { startInformer, type Cache, type InformerEvent } from '../../kube/informer.js';
import type { Logger } from '../../lib/logger.js';
import type { ProxyGroups } from '../cache/proxy-groups.js';
import { analyzeNetworking, analyzeSecurity, rejectedVerdicts } from '../traffic/config-analysis.js';
import { ChangeTrace } from './change-trace.js';
import { ConfigStatusWriter } from './config-status-writer.js';
import { Debouncer } from './debouncer.js';
import type { MeshDefaults } from './mesh-model.js';
import { JwksFetcher, jwksSources } from './jwks-fetcher.js';
import { istioConfigOf, istioKinds, meshModelOf, type IstioObject } from './mesh-model-of.js';

export class KubeMeshModel {
  private readonly caches = new Map<string, Cache<KubernetesObject>>();
  private readonly debouncer: Debouncer;
  private readonly statusWriter: ConfigStatusWriter | undefined;
  private readonly changeTrace = new ChangeTrace();
  private readonly jwks: JwksFetcher;
  private started = false;

  constructor(
    private readonly config: KubeConfig,
    private readonly groups: ProxyGroups,
    private readonly log: Logger,
    private readonly clusterDomain = 'cluster.local',
    /** Istio's root namespace: mesh-wide Sidecar and DestinationRule defaults live here. */
    private readonly rootNamespace = 'istio-system',
    /** Whether this instance reports each Istio object's verdict in its status (weftd does). */
    private readonly options: { writeStatus?: boolean; trustDomain?: string; meshConfig?: MeshDefaults } = {},
  ) {
    this.debouncer = new Debouncer(() => this.changeTrace.generate(() => this.rebuild()));
    // RequestAuthentication keys are fetched here and inlined (as istiod does); a fetch with news rebuilds.
    this.jwks = new JwksFetcher(log, () => {
      if (this.started) this.changeTrace.event({ kind: 'jwks', type: 'fetched' });
      this.debouncer.trigger();
    });
    if (options.writeStatus)
      this.statusWriter = new ConfigStatusWriter(config, (kind, namespace, name) => this.find(kind, namespace, name), log);
  }

  private find(kind: string, namespace: string, name: string): (IstioObject & { status?: Record<string, unknown> }) | undefined {
    const plural = istioKinds.find((k) => k.kind === kind)?.plural ?? '';
    return this.list<IstioObject & { status?: Record<string, unknown> }>(plural).find(
      (o) => o.metadata?.namespace === namespace && o.metadata?.name === name,
    );
  }

  async start(): Promise<void> {
    const core = this.config.makeApiClient(CoreV1Api);
    const discovery = this.config.makeApiClient(DiscoveryV1Api);
    const custom = this.config.makeApiClient(CustomObjectsApi);
    const changed = (kind: string, event?: InformerEvent<KubernetesObject>) => {
      if (this.started)
        this.changeTrace.event({
          kind,
          type: event?.type ?? 'relist',
          namespace: event?.object.metadata?.namespace,
          name: event?.object.metadata?.name,
        });
      this.debouncer.trigger();
    };
    const watch = async <T extends KubernetesObject>(key: string, path: string, list: () => Promise<KubernetesListObject<T>>) => {
      const cache = await startInformer<T>(this.config, path, list, (event) => changed(key, event), this.log);
      this.caches.set(key, cache as Cache<KubernetesObject>);
    };
    await Promise.all([
      watch('services', '/api/v1/services', () => core.listServiceForAllNamespaces()),
      watch('slices', '/apis/discovery.k8s.io/v1/endpointslices', () => discovery.listEndpointSliceForAllNamespaces()),
      // Pods for their labels (subsets, auto mTLS); their IPs come from EndpointSlices.
      watch('pods', '/api/v1/pods', () => core.listPodForAllNamespaces()),
      ...istioKinds.map(({ group, plural }) =>
        watch(
          plural,
          `/apis/${group}/v1/${plural}`,
          () => custom.listClusterCustomObject({ group, version: 'v1', plural }) as Promise<KubernetesListObject<KubernetesObject>>,
        ),
      ),
    ]);
    this.started = true;
    this.changeTrace.generate(() => this.rebuild());
  }

  async stop(): Promise<void> {
    this.debouncer.stop();
    this.jwks.stop();
    this.changeTrace.stop();
    await Promise.all([...this.caches.values()].map((cache) => cache.stop()));
  }

  private list<T>(key: string): ReadonlyArray<T> {
    return (this.caches.get(key)?.list() ?? []) as unknown as ReadonlyArray<T>;
  }

  private rebuild(): void {
    if (!this.started) return;
    const istio = istioConfigOf(Object.fromEntries(istioKinds.map(({ plural }) => [plural, this.list<IstioObject>(plural)])));
    this.jwks.want(jwksSources(istio.requestAuthentications));
    const model = meshModelOf(
      this.list('services'),
      this.list('slices'),
      this.clusterDomain,
      this.list('pods'),
      istio,
      this.rootNamespace,
      this.options.trustDomain,
    );
    model.jwks = this.jwks.current();
    if (this.options.meshConfig) model.meshConfig = this.options.meshConfig;
    let changed: string[];
    try {
      changed = this.groups.update(model);
    } catch (error) {
      // A bug or an input validation missed must not take weftd down: proxies keep their last config.
      this.log.error(
        { error: error instanceof Error ? error.message : String(error) },
        'xDS generation failed; proxies keep their last config',
      );
      changed = [];
    }
    // Until every JWKS has been tried once, a missing one is not yet a failure: the fetch's rebuild publishes.
    if (this.jwks.settled())
      this.statusWriter?.publish([...rejectedVerdicts(model), ...analyzeNetworking(model), ...analyzeSecurity(model, this.jwks.errors())]);
    if (changed.length > 0)
      this.log.debug({ types: changed.map((t) => t.split('.').pop()), services: model.services.length }, 'xDS config changed');
  }
}
