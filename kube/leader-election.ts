// Leader election on a coordination.k8s.io Lease, as client-go does it: one holder
// at a time, renewed well inside its duration; a leader that cannot renew within the
// renew deadline stops leading before the Lease can expire and pass to a standby;
// a stopped leader hands over at once.
import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import type { Logger } from '../lib/logger.js';
import { isConflict, isNotFound } from './client.js';

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds?: number;
  /** A leader that has not renewed for this long stops leading; below the Lease duration (client-go's RenewDeadline). */
  renewDeadlineSeconds?: number;
  retryPeriodMs?: number;
}

/** client-go's defaults (LeaseDuration, RenewDeadline, RetryPeriod), as the operator uses them. */
export const leaderElectionDefaults = { leaseDurationSeconds: 15, renewDeadlineSeconds: 10, retryPeriodMs: 2_000 } as const;

export class LeaderElector {
  private readonly api: CoordinationV1Api;
  private stopped = false;
  private leading = false;
  private timer: NodeJS.Timeout | undefined;
  /** The last Lease write, which may outlive its tick's deadline: stop() waits for it briefly so a write that wins is handed back. */
  private lastAttempt: Promise<boolean> = Promise.resolve(false);

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

  /**
   * Calls onLead once leadership is won; onLost once a leader has not renewed within the renew
   * deadline (10 s by default), which is before the Lease (15 s) can expire and a standby take it:
   * two leaders never act at once. A renewal that hangs counts as failed at the deadline.
   */
  start(onLead: () => void, onLost: () => void): void {
    const renewDeadline = (this.options.renewDeadlineSeconds ?? leaderElectionDefaults.renewDeadlineSeconds) * 1000;
    const retryPeriod = this.options.retryPeriodMs ?? leaderElectionDefaults.retryPeriodMs;
    let lastRenew = 0;
    const tick = async (): Promise<void> => {
      if (this.stopped) return;
      // A leader's attempt may take what is left of its deadline; a standby's, one deadline.
      const allowed = this.leading ? Math.max(0, lastRenew + renewDeadline - Date.now()) : renewDeadline;
      let timeout: NodeJS.Timeout | undefined;
      const attempt = this.tryAcquireOrRenew();
      this.lastAttempt = attempt.catch(() => false);
      const held = await Promise.race([attempt, new Promise<boolean>((resolve) => (timeout = setTimeout(() => resolve(false), allowed)))])
        .catch((error: unknown) => {
          this.log.warn({ error: error instanceof Error ? error.message : String(error) }, 'lease update failed');
          return false;
        })
        .finally(() => clearTimeout(timeout));
      // stop() came while this attempt was in flight: it hands back what the attempt won.
      if (this.stopped) return;
      if (held) lastRenew = Date.now();
      if (held && !this.leading) {
        this.leading = true;
        this.log.info({ lease: this.options.name }, 'became leader');
        onLead();
      } else if (!held && this.leading && Date.now() - lastRenew >= renewDeadline) {
        this.leading = false;
        this.log.error({ lease: this.options.name, renewDeadlineMs: renewDeadline }, 'lost leadership: the Lease was not renewed in time');
        onLost();
        return;
      }
      if (!this.stopped) this.timer = setTimeout(() => void tick(), retryPeriod);
    };
    void tick();
  }

  /**
   * Stops renewing and hands the Lease back if this candidate holds it, so a standby takes over
   * without waiting for it to expire: a leader's, or a standby's whose write was on the wire when
   * stop() came (it never starts leading). Bounded: at most 2 s for that write, 2 s for the hand-back;
   * past them the Lease is left to expire.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.leading = false;
    await withDeadline(this.lastAttempt, 2_000);
    await withDeadline(this.release(), 2_000);
  }

  /** Hands the Lease back (no holder, 1 s duration) if this candidate holds it; errors are left to expiry. */
  private async release(): Promise<void> {
    const lease = await this.read().catch(() => undefined);
    if (lease?.spec?.holderIdentity === this.options.identity) {
      lease.spec.holderIdentity = undefined;
      lease.spec.leaseDurationSeconds = 1;
      // replace carries the resourceVersion read: a holder that came in between gets to keep it.
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
    const now = new V1MicroTime(Date.now());
    const { identity, name, namespace } = this.options;
    const leaseDurationSeconds = this.options.leaseDurationSeconds ?? leaderElectionDefaults.leaseDurationSeconds;
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

/** Waits for `promise` (its outcome ignored) or `ms`, whichever comes first. */
async function withDeadline(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise.catch(() => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
