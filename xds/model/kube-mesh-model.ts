// Services and EndpointSlices from informers, turned into the MeshModel the
// generators read; changes are debounced and pushed into the snapshot cache.
import { CoreV1Api, DiscoveryV1Api, type KubeConfig, type V1EndpointSlice, type V1Pod, type V1Service } from '@kubernetes/client-node';
import { startInformer, type Cache } from '../../kube/informer.js';
import type { Logger } from '../../lib/logger.js';
import type { ProxyGroups } from '../cache/proxy-groups.js';
import { Debouncer } from './debouncer.js';
import type { MeshModel, MeshService } from './mesh-model.js';

export function meshModelOf(
  services: ReadonlyArray<V1Service>,
  slices: ReadonlyArray<V1EndpointSlice>,
  clusterDomain: string,
  pods: ReadonlyArray<V1Pod> = [],
): MeshModel {
  const tlsModeByPod = new Map(
    pods.map((pod) => [`${pod.metadata?.namespace}/${pod.metadata?.name}`, pod.metadata?.labels?.['security.istio.io/tlsMode']]),
  );
  const slicesByService = new Map<string, V1EndpointSlice[]>();
  for (const slice of slices) {
    const owner = slice.metadata?.labels?.['kubernetes.io/service-name'];
    if (!owner) continue;
    const key = `${slice.metadata?.namespace}/${owner}`;
    slicesByService.set(key, [...(slicesByService.get(key) ?? []), slice]);
  }
  const meshServices: MeshService[] = services
    .filter((service) => service.metadata?.name && service.metadata.namespace && service.spec?.type !== 'ExternalName')
    .map((service) => {
      const key = `${service.metadata?.namespace}/${service.metadata?.name}`;
      const endpoints = (slicesByService.get(key) ?? []).flatMap((slice) => {
        const ports = Object.fromEntries(
          (slice.ports ?? []).filter((p) => p.port !== undefined).map((p) => [p.name ?? '', p.port as number]),
        );
        return (slice.endpoints ?? [])
          .filter((endpoint) => endpoint.conditions?.ready !== false && endpoint.conditions?.terminating !== true)
          .flatMap((endpoint) => {
            const ref =
              endpoint.targetRef?.kind === 'Pod'
                ? `${endpoint.targetRef.namespace ?? slice.metadata?.namespace}/${endpoint.targetRef.name}`
                : '';
            const tlsMode = tlsModeByPod.get(ref);
            return endpoint.addresses.map((address) => ({ address, ports, ...(tlsMode ? { tlsMode } : {}) }));
          });
      });
      return {
        name: service.metadata?.name as string,
        namespace: service.metadata?.namespace as string,
        ports: (service.spec?.ports ?? []).map((p) => ({ name: p.name ?? '', port: p.port, protocol: p.protocol ?? 'TCP' })),
        endpoints,
      };
    });
  return { clusterDomain, services: meshServices };
}

export class KubeMeshModel {
  private services: Cache<V1Service> | undefined;
  private slices: Cache<V1EndpointSlice> | undefined;
  private pods: Cache<V1Pod> | undefined;
  private readonly debouncer: Debouncer;

  constructor(
    private readonly config: KubeConfig,
    private readonly groups: ProxyGroups,
    private readonly log: Logger,
    private readonly clusterDomain = 'cluster.local',
  ) {
    this.debouncer = new Debouncer(() => this.rebuild());
  }

  async start(): Promise<void> {
    const core = this.config.makeApiClient(CoreV1Api);
    const discovery = this.config.makeApiClient(DiscoveryV1Api);
    const changed = () => this.debouncer.trigger();
    this.services = await startInformer(this.config, '/api/v1/services', () => core.listServiceForAllNamespaces(), changed, this.log);
    this.slices = await startInformer(
      this.config,
      '/apis/discovery.k8s.io/v1/endpointslices',
      () => discovery.listEndpointSliceForAllNamespaces(),
      changed,
      this.log,
    );
    // Pods only for their sidecar label (auto mTLS); their IPs come from EndpointSlices.
    this.pods = await startInformer(this.config, '/api/v1/pods', () => core.listPodForAllNamespaces(), changed, this.log);
    this.rebuild();
  }

  async stop(): Promise<void> {
    this.debouncer.stop();
    await this.services?.stop();
    await this.slices?.stop();
    await this.pods?.stop();
  }

  private rebuild(): void {
    if (!this.services || !this.slices) return;
    const model = meshModelOf(this.services.list(), this.slices.list(), this.clusterDomain, this.pods?.list() ?? []);
    const changed = this.groups.update(model);
    if (changed.length > 0)
      this.log.debug({ types: changed.map((t) => t.split('.').pop()), services: model.services.length }, 'xDS config changed');
  }
}
