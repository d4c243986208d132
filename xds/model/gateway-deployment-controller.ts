// The Gateway API's automated deployment, the I/O side of cdk8s/gateway-api-deployment.ts, as istiod's
// deployment controller (pilot/pkg/config/kube/gatewaycommon/deploymentcontroller.go): level-based, one
// key per Gateway, reconciled on any change of the Gateway, its class, or what was made for it (found by
// the `gateway.istio.io/managed` label). Deletion is Kubernetes' garbage collector's (owner references).
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { gatewayDeployment, gatewayDeploymentKeys, type GatewayDeploymentContext } from '../../cdk8s/gateway-api-deployment.js';
import { gatewayNameLabel } from '../../gatewayapi/gateway-api-input.js';
import { gatewayApiGroup, type Gateway, type GatewayClass } from '../../gatewayapi/gateway-api-types.js';
import { controllerOfClass } from '../../gatewayapi/gateways.js';
import { apiMessage, isConflict, isNotFound } from '../../kube/client.js';
import { startInformer, type Cache } from '../../kube/informer.js';
import { ObjectClient, refOf } from '../../kube/objects.js';
import { clientWatchTransport, Reflector, type StoreEvent } from '../../kube/reflector.js';
import type { Logger } from '../../lib/logger.js';

/** weftd's server-side apply field manager for what it deploys for Gateways (Istio's is `istio.io/gateway-controller`). */
export const gatewayDeploymentFieldManager = 'weft-gateway-controller';

const managedKinds = [
  { kind: 'ServiceAccount', path: '/api/v1/serviceaccounts' },
  { kind: 'Deployment', path: '/apis/apps/v1/deployments' },
  { kind: 'Service', path: '/api/v1/services' },
] as const;

/** Retry delays after a failed reconcile: 500 ms doubling to 60 s, as client-go's rate-limited queue. */
const retryDelayMs = (failures: number) => Math.min(60_000, 500 * 2 ** Math.max(0, failures - 1));

/** What a managed object's change must look like to matter: not its status (a Deployment's rollout, a Service's load balancer). */
const shape = (object: KubernetesObject & { spec?: unknown }) =>
  JSON.stringify([object.metadata?.labels, object.metadata?.annotations, object.metadata?.ownerReferences, object.spec]);

export class GatewayDeploymentController {
  private readonly objects: ObjectClient;
  private gateways: Cache<Gateway> | undefined;
  private classes: Cache<GatewayClass> | undefined;
  private readonly reflectors: Array<Reflector<KubernetesObject>> = [];
  private readonly seen = new Map<string, string>();
  private readonly queued = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Set<NodeJS.Timeout>();
  /** The last problem logged per Gateway, so a Gateway that stays wrong is reported once. */
  private readonly reported = new Map<string, string>();
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly config: KubeConfig,
    /** The proxy, CA address and revision, from weftd's injector config; the controller comes from each Gateway's class. */
    private readonly context: Omit<GatewayDeploymentContext, 'controller'>,
    private readonly log: Logger,
  ) {
    this.objects = new ObjectClient(config, gatewayDeploymentFieldManager);
  }

  /**
   * Starts the watches (Gateways, GatewayClasses, and the managed ServiceAccounts, Deployments and Services) and
   * reconciles every Gateway. Without the Gateway API's CRDs it does nothing (returns false) until weftd restarts.
   */
  async start(): Promise<boolean> {
    const custom = this.config.makeApiClient(CustomObjectsApi);
    try {
      await custom.listClusterCustomObject({ group: gatewayApiGroup, version: 'v1', plural: 'gateways', limit: 1 });
    } catch (error) {
      if (!isNotFound(error)) throw error;
      this.log.info('Gateway API CRDs not installed: no gateway deployments');
      return false;
    }
    const core = this.config.makeApiClient(CoreV1Api);
    const apps = this.config.makeApiClient(AppsV1Api);
    const list = (plural: string) => () =>
      custom.listClusterCustomObject({ group: gatewayApiGroup, version: 'v1', plural }) as Promise<KubernetesListObject<never>>;
    this.classes = await startInformer<GatewayClass & KubernetesObject>(
      this.config,
      `/apis/${gatewayApiGroup}/v1/gatewayclasses`,
      list('gatewayclasses'),
      (event) => this.enqueueClass(event.object.metadata?.name),
      this.log,
    );
    this.gateways = await startInformer<Gateway & KubernetesObject>(
      this.config,
      `/apis/${gatewayApiGroup}/v1/gateways`,
      list('gateways'),
      (event) => this.enqueue(`${event.object.metadata?.namespace}/${event.object.metadata?.name}`),
      this.log,
    );
    // Only what a Gateway controller made (the label), so a user's own Deployments are never even cached.
    const labelSelector = gatewayDeploymentKeys.managed;
    const listers: Record<(typeof managedKinds)[number]['kind'], () => Promise<KubernetesListObject<KubernetesObject>>> = {
      ServiceAccount: () => core.listServiceAccountForAllNamespaces({ labelSelector }),
      Deployment: () => apps.listDeploymentForAllNamespaces({ labelSelector }),
      Service: () => core.listServiceForAllNamespaces({ labelSelector }),
    };
    for (const { kind, path } of managedKinds) {
      const reflector = new Reflector<KubernetesObject>({
        path,
        query: { labelSelector },
        list: listers[kind],
        transport: clientWatchTransport(this.config),
        onEvent: (event) => this.managedChanged(kind, event),
        log: this.log,
      });
      await reflector.start();
      this.reflectors.push(reflector);
    }
    for (const gateway of this.gateways.list()) this.enqueue(`${gateway.metadata?.namespace}/${gateway.metadata?.name}`);
    return true;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    await Promise.all([this.gateways?.stop(), this.classes?.stop(), ...this.reflectors.map((r) => r.stop())]);
    await this.running;
  }

  private managedChanged(kind: string, event: StoreEvent<KubernetesObject>): void {
    const { metadata } = event.object;
    const key = `${kind}/${metadata?.namespace}/${metadata?.name}`;
    if (event.type === 'delete') this.seen.delete(key);
    else {
      const now = shape(event.object);
      if (this.seen.get(key) === now) return;
      this.seen.set(key, now);
    }
    const gateway = metadata?.labels?.[gatewayNameLabel];
    if (gateway) this.enqueue(`${metadata?.namespace}/${gateway}`);
  }

  private enqueueClass(className: string | undefined): void {
    for (const gateway of this.gateways?.list() ?? [])
      if (gateway.spec?.gatewayClassName === className) this.enqueue(`${gateway.metadata?.namespace}/${gateway.metadata?.name}`);
  }

  private enqueue(key: string): void {
    if (this.stopped) return;
    this.queued.add(key);
    this.running ??= this.drain().finally(() => (this.running = undefined));
  }

  /** One reconcile at a time, each Gateway once per burst of events. */
  private async drain(): Promise<void> {
    while (this.queued.size > 0 && !this.stopped) {
      const key = this.queued.values().next().value as string;
      this.queued.delete(key);
      try {
        await this.reconcile(key);
        this.failures.delete(key);
      } catch (error) {
        const failures = (this.failures.get(key) ?? 0) + 1;
        this.failures.set(key, failures);
        const delay = retryDelayMs(failures);
        // A conflict is an object changed since it was read (a Deployment's status during a rollout): routine, retried quietly.
        this.log[isConflict(error) ? 'debug' : 'warn'](
          { gateway: key, failures, retryInMs: delay, error: apiMessage(error) },
          'gateway deployment failed; retrying',
        );
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          this.enqueue(key);
        }, delay);
        this.timers.add(timer);
      }
    }
  }

  private report(key: string, problem: string | undefined, level: 'info' | 'warn', message: string): void {
    if (problem === undefined) {
      this.reported.delete(key);
      return;
    }
    if (this.reported.get(key) === problem) return;
    this.reported.set(key, problem);
    this.log[level]({ gateway: key, problem }, message);
  }

  /** Applies what the Gateway needs, leaving alone any object of that name a Gateway controller did not make. */
  private async reconcile(key: string): Promise<void> {
    const gateway = this.gateways?.get(key);
    // A deleted Gateway: its objects go with it through their owner reference.
    if (!gateway) return this.report(key, undefined, 'info', '');
    const controller = controllerOfClass(gateway.spec?.gatewayClassName, this.classes?.list() ?? []);
    if (!controller) return;
    const result = gatewayDeployment(gateway, { ...this.context, controller });
    if ('skipped' in result) return this.report(key, result.skipped, 'info', 'gateway not deployed by Weft');
    // Not retried: the Gateway's next change is.
    if ('error' in result) return this.report(key, result.error, 'warn', 'cannot deploy gateway');
    const unmanaged: string[] = [];
    for (const object of result.objects) {
      const existing = await this.objects.read(refOf(object));
      if (existing && !existing.metadata?.labels?.[gatewayDeploymentKeys.managed]) {
        // Istio's canManage: a same-named object without the label is the user's manual deployment.
        unmanaged.push(`${object.kind} ${object.metadata.name}`);
        continue;
      }
      // The resourceVersion read makes the apply fail (409) if the object changed since, so the check above holds.
      const applied = existing?.metadata?.resourceVersion
        ? { ...object, metadata: { ...object.metadata, resourceVersion: existing.metadata.resourceVersion } }
        : object;
      await this.objects.apply(applied);
    }
    this.report(
      key,
      unmanaged.length > 0
        ? `not managed by a Gateway controller (no ${gatewayDeploymentKeys.managed} label): ${unmanaged.join(', ')}`
        : undefined,
      'info',
      'gateway objects left to their owner',
    );
    this.log.debug({ gateway: key, deployment: result.deploymentName }, 'gateway deployed');
  }
}
