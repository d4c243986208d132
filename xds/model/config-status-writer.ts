// Writes each Istio object's verdict (networking.istio.io and security.istio.io)
// to its status subresource, only when it changes, one write at a time. Thin:
// the verdicts come from traffic/config-analysis. Gateway API objects' statuses
// (computed whole by gatewayapi/, conditions with their transition times) go the same way.
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../../lib/logger.js';
import { statusOf, type ConfigVerdict } from '../traffic/config-analysis.js';
import { istioKinds, type IstioObject } from './mesh-model-of.js';
import type { GatewayApiStatus } from './gateway-api-source.js';

/** The object as last seen, by API group (Istio's `Gateway` and the Gateway API's share a kind), kind, namespace and name. */
type StatusOf = (
  group: string,
  kind: string,
  namespace: string,
  name: string,
) => (IstioObject & { status?: Record<string, unknown> }) | undefined;

const comparable = (status: Record<string, unknown> | undefined) =>
  JSON.stringify(status ?? {}, (key, value: unknown) => (key === 'lastTransitionTime' ? undefined : value));

export class ConfigStatusWriter {
  private readonly api: CustomObjectsApi;
  private pending: ConfigVerdict[] = [];
  private pendingGatewayApi: GatewayApiStatus[] = [];
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

  /** The latest Gateway API statuses (gatewayapi/gateway-api-config.ts); older pending ones are replaced. */
  publishGatewayApi(statuses: GatewayApiStatus[]): void {
    this.pendingGatewayApi = statuses;
    if (!this.running) void this.drain();
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.pending.length > 0 || this.pendingGatewayApi.length > 0) {
        const verdicts = this.pending;
        this.pending = [];
        for (const verdict of verdicts) {
          if (this.pending.length > 0) break;
          await this.write(verdict);
        }
        const statuses = this.pendingGatewayApi;
        this.pendingGatewayApi = [];
        for (const status of statuses) {
          if (this.pendingGatewayApi.length > 0) break;
          await this.writeGatewayApi(status);
        }
      }
    } finally {
      this.running = false;
    }
  }

  /** One Gateway API object's status, when it differs from the object's (transition times aside). */
  private async writeGatewayApi(next: GatewayApiStatus): Promise<void> {
    const object = this.current('gateway.networking.k8s.io', next.kind, next.namespace ?? '', next.name);
    if (!object || comparable(next.status) === comparable(object.status)) return;
    const target = { group: 'gateway.networking.k8s.io', version: next.version, plural: next.plural, name: next.name };
    const body = [{ op: 'add', path: '/status', value: next.status }];
    try {
      if (next.namespace) await this.api.patchNamespacedCustomObjectStatus({ ...target, namespace: next.namespace, body });
      else await this.api.patchClusterCustomObjectStatus({ ...target, body });
    } catch (error) {
      // The object may be gone or changed meanwhile; the next rebuild writes again.
      this.log.warn(
        { kind: next.kind, namespace: next.namespace, name: next.name, error: error instanceof Error ? error.message : String(error) },
        'could not write the status of a Gateway API object',
      );
    }
  }

  private async write(verdict: ConfigVerdict): Promise<void> {
    const kind = istioKinds.find((k) => k.kind === verdict.kind);
    if (!kind) return;
    const object = this.current(kind.group, verdict.kind, verdict.namespace, verdict.name);
    if (!object) return;
    const next = statusOf(verdict, object.status, new Date().toISOString());
    if (comparable(next) === comparable(object.status)) return;
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
