// Puts the trust bundle in every namespace as the ConfigMap Istio's agent mounts
// (istio-ca-root-cert, key root-cert.pem): created for new namespaces, repaired
// when edited or deleted, updated when the bundle changes.
import { CoreV1Api, type KubeConfig, type V1ConfigMap, type V1Namespace } from '@kubernetes/client-node';
import { trustBundle } from '../api/labels.js';
import { isConflict, isNotFound } from '../kube/client.js';
import type { WatchTuning } from '../kube/reflector.js';
import { watchForever } from '../kube/watch.js';
import type { Logger } from '../lib/logger.js';

export const trustBundleConfigMap = trustBundle.configMap;
export const trustBundleKey = trustBundle.key;

export class TrustBundleDistributor {
  private readonly core: CoreV1Api;
  private stops: Array<() => void> = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly config: KubeConfig,
    private bundle: string,
    private readonly log: Logger,
    private readonly resyncMs = 60_000,
    private readonly watchTuning?: WatchTuning,
  ) {
    this.core = config.makeApiClient(CoreV1Api);
  }

  start(): void {
    void this.syncAll();
    this.stops.push(
      watchForever<V1Namespace>(
        this.config,
        '/api/v1/namespaces',
        {},
        (type, ns) => {
          if (type === 'ADDED' && ns.metadata?.name) void this.syncNamespace(ns.metadata.name);
        },
        this.log,
        { tuning: this.watchTuning },
      ),
      watchForever<V1ConfigMap>(
        this.config,
        '/api/v1/configmaps',
        { fieldSelector: `metadata.name=${trustBundleConfigMap}` },
        (type, cm) => {
          const namespace = cm.metadata?.namespace;
          if (!namespace) return;
          // ADDED too: a ConfigMap someone else created with other content is repaired like an edited one.
          if (type === 'DELETED' || !this.holdsBundle(cm)) void this.syncNamespace(namespace);
        },
        this.log,
        { tuning: this.watchTuning },
      ),
    );
    this.timer = setInterval(() => void this.syncAll(), this.resyncMs);
    this.timer.unref();
  }

  stop(): void {
    for (const stop of this.stops) stop();
    this.stops = [];
    if (this.timer) clearInterval(this.timer);
  }

  /** A new bundle (rotation): every namespace is updated. */
  async setBundle(bundle: string): Promise<void> {
    this.bundle = bundle;
    await this.syncAll();
  }

  async syncAll(): Promise<void> {
    try {
      const namespaces = await this.core.listNamespace();
      for (const ns of namespaces.items) {
        if (ns.metadata?.name && ns.status?.phase !== 'Terminating') await this.syncNamespace(ns.metadata.name);
      }
    } catch (error) {
      this.log.warn({ error: error instanceof Error ? error.message : String(error) }, 'trust bundle sync failed; will retry');
    }
  }

  /** Whether the ConfigMap holds exactly the current bundle (and nothing else). */
  private holdsBundle(cm: V1ConfigMap): boolean {
    return cm.data?.[trustBundleKey] === this.bundle && Object.keys(cm.data ?? {}).length === 1;
  }

  async syncNamespace(namespace: string): Promise<void> {
    const body: V1ConfigMap = {
      metadata: { name: trustBundleConfigMap, namespace, labels: { 'istio.io/config': 'true', 'app.kubernetes.io/part-of': 'weft' } },
      data: { [trustBundleKey]: this.bundle },
    };
    try {
      const existing = await this.core.readNamespacedConfigMap({ name: trustBundleConfigMap, namespace }).catch((error: unknown) => {
        if (isNotFound(error)) return undefined;
        throw error;
      });
      if (!existing) {
        await this.core.createNamespacedConfigMap({ namespace, body });
        this.log.info({ namespace }, 'trust bundle created');
      } else if (!this.holdsBundle(existing)) {
        body.metadata = { ...body.metadata, resourceVersion: existing.metadata?.resourceVersion };
        await this.core.replaceNamespacedConfigMap({ name: trustBundleConfigMap, namespace, body });
        this.log.info({ namespace }, 'trust bundle repaired');
      }
    } catch (error) {
      // A namespace being deleted refuses new objects; a conflict means someone else just wrote: the watch brings us back.
      if (isConflict(error) || isNotFound(error)) return;
      const message = error instanceof Error ? error.message : String(error);
      if (!message.includes('being terminated')) this.log.warn({ namespace, error: message }, 'trust bundle sync failed');
    }
  }
}
