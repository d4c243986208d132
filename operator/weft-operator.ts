// The operator's event loop, on @dot-i/k8s-operator's lifecycle: watches (kube/watch.ts)
// turn into work-queue keys (MeshInstallation names); the reconciler does the rest.
import k8sOperator from '@dot-i/k8s-operator';
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { labels } from '../api/labels.js';
import { meshInstallationApi } from '../api/mesh-installation.js';
import { watchForever } from '../kube/watch.js';
import type { Logger } from '../lib/logger.js';
import { reconcileDuration, reconcileTotal } from '../lib/monitoring.js';
import type { InstallationReconciler } from './reconciler.js';
import { WorkQueue } from './work-queue.js';

const Operator = k8sOperator.default;

export interface WeftOperatorOptions {
  /** Every installation is reconciled at least this often, whatever the watches say. */
  resyncSeconds: number;
}

export class WeftOperator extends Operator {
  private readonly queue: WorkQueue;
  private resync: NodeJS.Timeout | undefined;
  private readonly known = new Set<string>();
  private readonly stopWatches: Array<() => void> = [];

  constructor(
    /** Our client-node's config (the library bundles another client-node version for its own). */
    private readonly config: KubeConfig,
    private readonly reconciler: InstallationReconciler,
    private readonly log: Logger,
    private readonly options: WeftOperatorOptions,
  ) {
    super({
      debug: (message) => log.debug(message),
      info: (message) => log.info(message),
      warn: (message) => log.warn(message),
      error: (message) => log.error(message),
    });
    this.queue = new WorkQueue(
      async (name) => {
        const stopTimer = reconcileDuration.startTimer();
        try {
          const result = await this.reconciler.reconcile(name);
          reconcileTotal.inc({ result: 'success' });
          return result;
        } catch (error) {
          reconcileTotal.inc({ result: 'error' });
          throw error;
        } finally {
          stopTimer();
        }
      },
      (name, error, retryInMs) =>
        this.log.warn(
          { installation: name, retryInMs, error: error instanceof Error ? error.message : String(error) },
          'reconcile failed; will retry',
        ),
    );
  }

  /**
   * Watches through kube/watch.ts rather than the library's `watchResource`, which exits the
   * process on any watch error (an API server restart) and replays every object on each
   * restart: a Reflector resumes from the last resourceVersion and retries with backoff.
   */
  protected async init(): Promise<void> {
    const log = this.log.child({ component: 'operator-watch' });
    const { group, version, plural } = meshInstallationApi;
    this.stopWatches.push(
      watchForever<KubernetesObject>(
        this.config,
        `/apis/${group}/${version}/${plural}`,
        {},
        (type, object) => {
          const name = object.metadata?.name;
          if (!name) return;
          if (type === 'DELETED') {
            this.known.delete(name);
            return;
          }
          this.known.add(name);
          this.queue.add(name);
        },
        log,
      ),
    );
    // Drift on what users are most likely to touch by hand is repaired at once; the rest on resync.
    // Only objects an installation owns carry its label: the selector keeps the rest off the wire.
    const owned = (_type: string, object: KubernetesObject): void => {
      const owner = object.metadata?.labels?.[labels.installation];
      if (owner) this.queue.add(owner);
    };
    for (const path of [
      '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations',
      '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations',
      '/apis/apps/v1/deployments',
    ]) {
      this.stopWatches.push(watchForever<KubernetesObject>(this.config, path, { labelSelector: labels.installation }, owned, log));
    }
    this.resync = setInterval(() => {
      for (const name of this.known) this.queue.add(name);
    }, this.options.resyncSeconds * 1000);
    this.resync.unref();
  }

  override stop(): void {
    for (const stop of this.stopWatches.splice(0)) stop();
    super.stop();
  }

  async shutdown(): Promise<void> {
    this.stop();
    if (this.resync) clearInterval(this.resync);
    this.queue.stop();
    await this.queue.idle();
  }
}
