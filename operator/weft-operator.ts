// The operator's event loop, on @dot-i/k8s-operator: watches turn into work-queue
// keys (MeshInstallation names); the reconciler does the rest.
import k8sOperator from '@dot-i/k8s-operator';
import { labels } from '../api/labels.js';
import { meshInstallationApi } from '../api/mesh-installation.js';
import type { Logger } from '../lib/logger.js';
import { reconcileDuration, reconcileTotal } from '../lib/monitoring.js';
import type { InstallationReconciler } from './reconciler.js';
import { WorkQueue } from './work-queue.js';

const Operator = k8sOperator.default;
type ResourceEvent = k8sOperator.ResourceEvent;

export interface WeftOperatorOptions {
  /** Every installation is reconciled at least this often, whatever the watches say. */
  resyncSeconds: number;
}

export class WeftOperator extends Operator {
  private readonly queue: WorkQueue;
  private resync: NodeJS.Timeout | undefined;
  private readonly known = new Set<string>();

  constructor(
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

  protected async init(): Promise<void> {
    await this.watchResource(meshInstallationApi.group, meshInstallationApi.version, meshInstallationApi.plural, async (event) => {
      if (event.type === k8sOperator.ResourceEventType.Deleted) {
        this.known.delete(event.meta.name);
        return;
      }
      this.known.add(event.meta.name);
      this.queue.add(event.meta.name);
    });
    // Drift on what users are most likely to touch by hand is repaired at once; the rest on resync.
    const owned = async (event: ResourceEvent): Promise<void> => {
      const owner = event.object.metadata?.labels?.[labels.installation];
      if (owner) this.queue.add(owner);
    };
    await this.watchResource('admissionregistration.k8s.io', 'v1', 'mutatingwebhookconfigurations', owned);
    await this.watchResource('admissionregistration.k8s.io', 'v1', 'validatingwebhookconfigurations', owned);
    await this.watchResource('apps', 'v1', 'deployments', owned);
    this.resync = setInterval(() => {
      for (const name of this.known) this.queue.add(name);
    }, this.options.resyncSeconds * 1000);
    this.resync.unref();
  }

  async shutdown(): Promise<void> {
    if (this.resync) clearInterval(this.resync);
    this.queue.stop();
    await this.queue.idle();
  }
}
