// Writes each Istio object's verdict (networking.istio.io and security.istio.io)
// to its status subresource, only when it changes, one write at a time. Thin:
// the verdicts come from traffic/config-analysis.
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../../lib/logger.js';
import { statusOf, type ConfigVerdict } from '../traffic/config-analysis.js';
import { istioKinds, type IstioObject } from './mesh-model-of.js';

type StatusOf = (kind: string, namespace: string, name: string) => (IstioObject & { status?: Record<string, unknown> }) | undefined;

const comparable = (status: Record<string, unknown> | undefined) =>
  JSON.stringify(status ?? {}, (key, value: unknown) => (key === 'lastTransitionTime' ? undefined : value));

export class ConfigStatusWriter {
  private readonly api: CustomObjectsApi;
  private pending: ConfigVerdict[] = [];
  private running = false;

  constructor(
    config: KubeConfig,
    private readonly current: StatusOf,
    private readonly log: Logger,
  ) {
    this.api = config.makeApiClient(CustomObjectsApi);
  }

  /** The latest verdicts; older pending ones are replaced. */
  publish(verdicts: ConfigVerdict[]): void {
    this.pending = verdicts;
    if (!this.running) void this.drain();
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.pending.length > 0) {
        const verdicts = this.pending;
        this.pending = [];
        for (const verdict of verdicts) {
          if (this.pending.length > 0) break;
          await this.write(verdict);
        }
      }
    } finally {
      this.running = false;
    }
  }

  private async write(verdict: ConfigVerdict): Promise<void> {
    const object = this.current(verdict.kind, verdict.namespace, verdict.name);
    if (!object) return;
    const next = statusOf(verdict, object.status, new Date().toISOString());
    if (comparable(next) === comparable(object.status)) return;
    const kind = istioKinds.find((k) => k.kind === verdict.kind);
    if (!kind) return;
    try {
      await this.api.patchNamespacedCustomObjectStatus({
        group: kind.group,
        version: 'v1',
        namespace: verdict.namespace,
        plural: kind.plural,
        name: verdict.name,
        body: [{ op: 'add', path: '/status', value: next }],
      });
    } catch (error) {
      // The object may be gone or changed meanwhile; the next rebuild writes again.
      this.log.warn(
        {
          kind: verdict.kind,
          namespace: verdict.namespace,
          name: verdict.name,
          error: error instanceof Error ? error.message : String(error),
        },
        'could not write the status of an Istio object',
      );
    }
  }
}
