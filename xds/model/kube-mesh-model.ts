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
  type V1Pod,
} from '@kubernetes/client-node';
import { startInformer, type Cache, type InformerEvent } from '../../kube/informer.js';
import type { WatchTuning } from '../../kube/reflector.js';
import type { Logger } from '../../lib/logger.js';
import type { ProxyGroups } from '../cache/proxy-groups.js';
import { analyzeAll, type ConfigVerdict } from '../traffic/config-analysis.js';
import { ChangeTrace } from './change-trace.js';
import { ConfigStatusWriter, type PropagationSource } from './config-status-writer.js';
import { Debouncer } from './debouncer.js';
import type { Propagation } from './propagation.js';
import type { MeshDefaults, MeshModel } from './mesh-model.js';
import { JwksFetcher, jwksSources } from './jwks-fetcher.js';
import { istioConfigOf, istioKinds, meshModelOf, MeshModelMemo, type IstioObject } from './mesh-model-of.js';
import {
  ensureGatewayClasses,
  gatewayApiKinds,
  GeneratedObjects,
  servedGatewayApiKinds,
  withGatewayApi,
  type GatewayApiStatus,
} from './gateway-api-source.js';
import type { GatewayApiObjects } from '../../gatewayapi/gateway-api-config.js';

/** Cache keys of the Gateway API kinds (their plural `gateways` is also Istio's). */
const gatewayApiKey = (plural: string) => `gateway-api/${plural}`;

export class KubeMeshModel {
  private readonly caches = new Map<string, Cache<KubernetesObject>>();
  private readonly debouncer: Debouncer;
  private readonly endpointDebouncer: Debouncer;
  private readonly statusDebouncer: Debouncer;
  private readonly memo = new MeshModelMemo();
  private model: MeshModel | undefined;
  /** The rebuild running, and whether another must follow it (changes came in meanwhile). */
  private rebuilding: Promise<void> | undefined;
  private rebuildAgain = false;
  private readonly statusWriter: ConfigStatusWriter | undefined;
  private lastVerdicts: ReadonlyArray<ConfigVerdict> = [];
  private readonly changeTrace = new ChangeTrace();
  /** Each Istio object's generation and annotations as last seen (see statusOnly). */
  private readonly istioFingerprints = new Map<string, string>();
  private readonly jwks: JwksFetcher;
  private started = false;
  /** The Gateway API kinds whose CRDs the cluster has (watched), by plural. */
  private gatewayApiServed = new Set<string>();
  private readonly generatedGatewayApi = new GeneratedObjects();
  private gatewayApiStatuses: GatewayApiStatus[] = [];

  constructor(
    private readonly config: KubeConfig,
    private readonly groups: ProxyGroups,
    private readonly log: Logger,
    private readonly clusterDomain = 'cluster.local',
    /** Istio's root namespace: mesh-wide Sidecar and DestinationRule defaults live here. */
    private readonly rootNamespace = 'istio-system',
    /** Whether this instance reports each Istio object's verdict in its status (weftd does). */
    private readonly options: {
      writeStatus?: boolean;
      trustDomain?: string;
      meshConfig?: MeshDefaults;
      watch?: WatchTuning;
      /** Told of each model the proxies were given; with writeStatus, its `Reconciled` conditions are written too. */
      propagation?: Pick<Propagation, 'modelApplied'> & PropagationSource;
    } = {},
  ) {
    this.debouncer = new Debouncer(() => this.scheduleRebuild());
    // Endpoints take a fast path, as in istiod: a moved endpoint is pushed within milliseconds, not after 100 ms of quiet.
    this.endpointDebouncer = new Debouncer(() => this.scheduleRebuild(), 5, 100);
    // Statuses are not on the push path: they follow on a slower beat.
    this.statusDebouncer = new Debouncer(() => this.publishStatus(), 500, 5_000);
    // RequestAuthentication keys are fetched here and inlined (as istiod does); a fetch with news rebuilds.
    this.jwks = new JwksFetcher(log, () => {
      if (this.started) this.changeTrace.event({ kind: 'jwks', type: 'fetched' });
      this.debouncer.trigger();
    });
    if (options.writeStatus)
      this.statusWriter = new ConfigStatusWriter(
        config,
        (group, kind, namespace, name) => this.find(group, kind, namespace, name),
        log,
        options.propagation,
      );
  }

  private find(
    group: string,
    kind: string,
    namespace: string,
    name: string,
  ): (IstioObject & { status?: Record<string, unknown> }) | undefined {
    // Istio's Gateway and the Gateway API's have one kind name: the group tells them apart.
    const gatewayApiKind = group === 'gateway.networking.k8s.io' ? gatewayApiKinds.find((k) => k.kind === kind) : undefined;
    if (gatewayApiKind) {
      const key = gatewayApiKind.namespaced ? `${namespace}/${name}` : name;
      return this.caches.get(gatewayApiKey(gatewayApiKind.plural))?.get(key) as
        (IstioObject & { status?: Record<string, unknown> }) | undefined;
    }
    const plural = istioKinds.find((k) => k.kind === kind && k.group === group)?.plural ?? '';
    return this.list<IstioObject & { status?: Record<string, unknown> }>(plural).find(
      (o) => o.metadata?.namespace === namespace && o.metadata?.name === name,
    );
  }

  async start(): Promise<void> {
    const core = this.config.makeApiClient(CoreV1Api);
    const discovery = this.config.makeApiClient(DiscoveryV1Api);
    const custom = this.config.makeApiClient(CustomObjectsApi);
    const changed = (kind: string, event: InformerEvent<KubernetesObject>) => {
      if (this.statusOnly(kind, event)) return;
      if (this.started)
        this.changeTrace.event({
          kind,
          type: event.type,
          namespace: event.object.metadata?.namespace,
          name: event.object.metadata?.name,
        });
      if (endpointKinds.has(kind)) this.endpointDebouncer.trigger();
      else this.debouncer.trigger();
    };
    const watch = async <T extends KubernetesObject>(key: string, path: string, list: () => Promise<KubernetesListObject<T>>) => {
      const cache = await startInformer<T>(this.config, path, list, (event) => changed(key, event), this.log, {
        tuning: this.options.watch,
      });
      this.caches.set(key, cache as Cache<KubernetesObject>);
    };
    // The Gateway API is optional: only the kinds whose CRDs are installed are watched.
    this.gatewayApiServed = await servedGatewayApiKinds(this.config, this.log);
    if (this.options.writeStatus && this.gatewayApiServed.has('gatewayclasses')) await ensureGatewayClasses(this.config, this.log);
    await Promise.all([
      ...gatewayApiKinds
        .filter(({ plural }) => this.gatewayApiServed.has(plural))
        .map(({ plural, version }) =>
          watch(
            gatewayApiKey(plural),
            `/apis/gateway.networking.k8s.io/${version}/${plural}`,
            () =>
              custom.listClusterCustomObject({ group: 'gateway.networking.k8s.io', version, plural }) as Promise<
                KubernetesListObject<KubernetesObject>
              >,
          ),
        ),
      // Namespaces for the Gateway API's allowedRoutes selectors.
      watch('namespaces', '/api/v1/namespaces', () => core.listNamespace()),
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
    await this.changeTrace.generate(() => this.rebuild());
  }

  /**
   * Whether an event is an Istio object's update that changed neither its generation (its spec) nor
   * its annotations: what mesh-model-of.ts reads of it. weftd's own status writes (verdicts, the
   * `Reconciled` condition once a second) come back so; they must not rebuild the model and analyze
   * the whole mesh again.
   */
  private statusOnly(kind: string, event: InformerEvent<KubernetesObject>): boolean {
    if (!istioPlurals.has(kind)) return false;
    const key = `${kind}/${event.object.metadata?.namespace ?? ''}/${event.object.metadata?.name ?? ''}`;
    if (event.type === 'delete') {
      this.istioFingerprints.delete(key);
      return false;
    }
    const fingerprint = `${event.object.metadata?.generation ?? ''} ${JSON.stringify(event.object.metadata?.annotations ?? {})}`;
    const before = this.istioFingerprints.get(key);
    this.istioFingerprints.set(key, fingerprint);
    return event.type === 'update' && before === fingerprint;
  }

  /** The model the proxies' config now comes from (undefined until the first sync). */
  current(): MeshModel | undefined {
    return this.model;
  }

  /** The verdicts last written to the Istio objects' statuses (empty before the first status pass). */
  verdicts(): ReadonlyArray<ConfigVerdict> {
    return this.lastVerdicts;
  }

  /** A Pod as the watch last saw it (undefined before the first list, or when not seen): the CA's token checks read it. */
  pod(namespace: string, name: string): V1Pod | undefined {
    return this.caches.get('pods')?.get(`${namespace}/${name}`) as V1Pod | undefined;
  }

  /**
   * Whether the model reflects the cluster: every informer has listed (Services, EndpointSlices,
   * Pods, each Istio kind; `pending` names those still listing, by plural) and the first model was
   * built from them, as istiod's readiness waits for its informers' HasSynced. weftd is not ready before.
   */
  syncStatus(): { synced: boolean; pending: string[] } {
    const pending = [
      'services',
      'slices',
      'pods',
      'namespaces',
      ...istioKinds.map(({ plural }) => plural),
      ...[...this.gatewayApiServed].map(gatewayApiKey),
    ].filter((key) => !this.caches.has(key));
    return { synced: pending.length === 0 && this.model !== undefined, pending };
  }

  async stop(): Promise<void> {
    this.debouncer.stop();
    this.endpointDebouncer.stop();
    this.statusDebouncer.stop();
    this.statusWriter?.stop();
    this.jwks.stop();
    this.changeTrace.stop();
    await Promise.all([...this.caches.values()].map((cache) => cache.stop()));
  }

  private list<T>(key: string): ReadonlyArray<T> {
    return (this.caches.get(key)?.list() ?? []) as unknown as ReadonlyArray<T>;
  }

  /** Runs a rebuild now, or right after the one running (one at a time; changes meanwhile are folded into the next). */
  private scheduleRebuild(): void {
    if (this.rebuilding) {
      this.rebuildAgain = true;
      return;
    }
    this.rebuilding = this.changeTrace
      .generate(() => this.rebuild())
      .finally(() => {
        this.rebuilding = undefined;
        if (this.rebuildAgain) {
          this.rebuildAgain = false;
          this.scheduleRebuild();
        }
      });
  }

  private async rebuild(): Promise<void> {
    if (!this.started) return;
    const userIstio = istioConfigOf(Object.fromEntries(istioKinds.map(({ plural }) => [plural, this.list<IstioObject>(plural)])));
    // Gateway API objects join as the Istio Gateways and VirtualServices istiod would generate for them.
    const gatewayApiObjects = Object.fromEntries(
      gatewayApiKinds.map(({ plural, field }) => [field, this.list(gatewayApiKey(plural))]),
    ) as unknown as GatewayApiObjects;
    const { istio, statuses } = withGatewayApi(
      userIstio,
      gatewayApiObjects,
      this.list('services'),
      this.list('namespaces'),
      this.clusterDomain,
      this.generatedGatewayApi,
      new Date().toISOString(),
    );
    this.generatedGatewayApi.endRound();
    this.gatewayApiStatuses = statuses;
    this.jwks.want(jwksSources(istio.requestAuthentications));
    const model = meshModelOf(
      this.list('services'),
      this.list('slices'),
      this.clusterDomain,
      this.list('pods'),
      istio,
      this.rootNamespace,
      this.options.trustDomain,
      this.memo,
    );
    this.memo.endRound();
    model.jwks = this.jwks.current();
    if (this.options.meshConfig) model.meshConfig = this.options.meshConfig;
    this.model = model;
    let changed: string[];
    try {
      // Yields between proxy groups, so the gRPC server, the CA and health checks answer during a large change.
      changed = await this.groups.updateAsync(model);
      // The proxies were told of this model (ProxyGroups announced it): propagation counts from it.
      this.options.propagation?.modelApplied(model);
    } catch (error) {
      // A bug or an input validation missed must not take weftd down: proxies keep their last config.
      this.log.error(
        { error: error instanceof Error ? error.message : String(error) },
        'xDS generation failed; proxies keep their last config',
      );
      changed = [];
    }
    if (this.statusWriter) this.statusDebouncer.trigger();
    if (changed.length > 0)
      this.log.debug({ types: changed.map((t) => t.split('.').pop()), services: model.services.length }, 'xDS config changed');
  }

  /** Each Istio object's verdict on its status, from the latest model (whole-mesh analysis, off the push path). */
  private publishStatus(): void {
    const model = this.model;
    // Until every JWKS has been tried once, a missing one is not yet a failure: the fetch's rebuild publishes.
    if (!model || !this.statusWriter || !this.jwks.settled()) return;
    const verdicts = analyzeAll(model, this.jwks.errors());
    this.lastVerdicts = verdicts;
    this.statusWriter.publish(verdicts);
    this.statusWriter.publishGatewayApi(this.gatewayApiStatuses);
  }
}

/** The cache keys of Istio's kinds (their plurals). */
const istioPlurals = new Set<string>(istioKinds.map(({ plural }) => plural));

/** Kinds whose changes move endpoints only: they take the fast path. */
const endpointKinds = new Set(['slices', 'pods']);
