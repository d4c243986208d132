// Leader election on a coordination.k8s.io Lease, as client-go does it: one holder
// at a time, renewed well inside its duration; a stopped leader hands over at once.
import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import type { Logger } from '../lib/logger.js';
import { isConflict, isNotFound } from './client.js';

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds?: number;
  retryPeriodMs?: number;
}

export class LeaderElector {
  private readonly api: CoordinationV1Api;
  private stopped = false;
  private leading = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    config: KubeConfig,
    private readonly options: LeaderElectionOptions,
    private readonly log: Logger,
  ) {
    this.api = config.makeApiClient(CoordinationV1Api);
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** Calls onLead once leadership is won; onLost if it is lost while running. */
  start(onLead: () => void, onLost: () => void): void {
    const duration = (this.options.leaseDurationSeconds ?? 15) * 1000;
    let lastRenew = 0;
    const tick = async (): Promise<void> => {
      if (this.stopped) return;
      const held = await this.tryAcquireOrRenew().catch((error: unknown) => {
        this.log.warn({ error: error instanceof Error ? error.message : String(error) }, 'lease update failed');
        return false;
      });
      if (held) lastRenew = Date.now();
      if (held && !this.leading) {
        this.leading = true;
        this.log.info({ lease: this.options.name }, 'became leader');
        onLead();
      } else if (!held && this.leading && Date.now() - lastRenew > duration) {
        this.leading = false;
        this.log.error({ lease: this.options.name }, 'lost leadership');
        onLost();
        return;
      }
      if (!this.stopped) this.timer = setTimeout(() => void tick(), this.options.retryPeriodMs ?? 2_000);
    };
    void tick();
  }

  /** Stops renewing and, when leading, releases the lease so a standby takes over without waiting. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (!this.leading) return;
    this.leading = false;
    const lease = await this.read();
    if (lease?.spec?.holderIdentity === this.options.identity) {
      lease.spec.holderIdentity = undefined;
      lease.spec.leaseDurationSeconds = 1;
      await this.api
        .replaceNamespacedLease({ name: this.options.name, namespace: this.options.namespace, body: lease })
        .catch(() => undefined);
    }
  }

  private async read(): Promise<V1Lease | undefined> {
    try {
      return await this.api.readNamespacedLease({ name: this.options.name, namespace: this.options.namespace });
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = new V1MicroTime();
    const { identity, name, namespace } = this.options;
    const leaseDurationSeconds = this.options.leaseDurationSeconds ?? 15;
    const lease = await this.read();
    if (!lease) {
      try {
        await this.api.createNamespacedLease({
          namespace,
          body: {
            metadata: { name, namespace },
            spec: { holderIdentity: identity, leaseDurationSeconds, acquireTime: now, renewTime: now, leaseTransitions: 0 },
          },
        });
        return true;
      } catch (error) {
        if (isConflict(error)) return false;
        throw error;
      }
    }
    const spec = lease.spec ?? {};
    const renewed = spec.renewTime ? new Date(spec.renewTime).getTime() : 0;
    const expired = renewed + (spec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000 < Date.now();
    const mine = spec.holderIdentity === identity;
    if (!mine && spec.holderIdentity && !expired) return false;
    lease.spec = {
      ...spec,
      holderIdentity: identity,
      leaseDurationSeconds,
      renewTime: now,
      ...(mine ? {} : { acquireTime: now, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 }),
    };
    try {
      // replace carries resourceVersion: a concurrent writer makes this a 409, not a split brain.
      await this.api.replaceNamespacedLease({ name, namespace, body: lease });
      return true;
    } catch (error) {
      if (isConflict(error)) return false;
      throw error;
    }
  }
}
