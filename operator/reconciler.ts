// Level-based reconcile of one MeshInstallation: read the world, synthesize the
// desired objects, server-side apply them, prune the rest, write status.
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type KubernetesObject, type V1Deployment } from '@kubernetes/client-node';
import { labels, meshFinalizer, operatorFieldManager, trustBundle } from '../api/labels.js';
import { meshInstallationApi, type MeshInstallation } from '../api/mesh-installation.js';
import { controlPlaneManifests } from '../cdk8s/control-plane-chart.js';
import { desiredGateways } from '../cdk8s/gateway-chart.js';
import { controlPlaneNames } from '../cdk8s/names.js';
import { apiMessage, isNotFound } from '../kube/client.js';
import { ObjectClient, refKey, refOf } from '../kube/objects.js';
import type { Logger } from '../lib/logger.js';
import { checkCaSecret } from '../lib/cacerts.js';
import { endWithError, SpanStatusCode, tracer, type Span } from '../lib/tracing.js';
import { computeStatus, statusEqual, type DeploymentObservation, type GatewayObservation, type ReconcileOutcome } from './conditions.js';
import { isWebhookKind, managedKinds } from './managed-kinds.js';

const { group, version, plural } = meshInstallationApi;

export interface ReconcileResult {
  /** Set while something is still converging (a Deployment rolling out, webhooks going away). */
  requeueAfterMs?: number;
}

export class InstallationReconciler {
  private readonly objects: ObjectClient;
  private readonly custom: CustomObjectsApi;
  private readonly core: CoreV1Api;

  constructor(
    config: KubeConfig,
    private readonly operatorVersion: string,
    private readonly log: Logger,
    /** OTEL_* exporter settings handed on to weftd (see lib/tracing.ts exporterEnv). */
    private readonly tracingEnv: Record<string, string> = {},
  ) {
    this.objects = new ObjectClient(config, operatorFieldManager);
    this.custom = config.makeApiClient(CustomObjectsApi);
    this.core = config.makeApiClient(CoreV1Api);
  }

  /** One trace per reconcile: the installation's name and the outcome (`weft.outcome`, the Ready reason). */
  async reconcile(name: string): Promise<ReconcileResult> {
    return tracer().startActiveSpan('operator.reconcile', { attributes: { 'weft.installation': name } }, async (span) => {
      try {
        const result = await this.reconcileOnce(name, span);
        if (result.requeueAfterMs !== undefined) span.setAttribute('weft.requeue_after_ms', result.requeueAfterMs);
        span.end();
        return result;
      } catch (error) {
        span.setAttribute('weft.outcome', 'error');
        endWithError(span, error);
        throw error;
      }
    });
  }

  private async reconcileOnce(name: string, span: Span): Promise<ReconcileResult> {
    const installation = await this.readInstallation(name);
    if (!installation) {
      span.setAttribute('weft.outcome', 'not-found');
      return {};
    }
    span.setAttribute('weft.generation', installation.metadata.generation ?? 0);
    const log = this.log.child({ installation: name, generation: installation.metadata.generation });

    if (installation.metadata.deletionTimestamp) {
      if (!installation.metadata.finalizers?.includes(meshFinalizer)) return {};
      const remaining = await this.uninstall(installation, log);
      span.setAttribute('weft.outcome', remaining > 0 ? 'uninstalling' : 'uninstalled');
      if (remaining > 0) return { requeueAfterMs: 500 };
      await this.setFinalizers(
        installation,
        (installation.metadata.finalizers ?? []).filter((f) => f !== meshFinalizer),
      );
      log.info({ step: 'uninstalled' }, 'control plane removed');
      return {};
    }
    if (!installation.metadata.finalizers?.includes(meshFinalizer)) {
      await this.setFinalizers(installation, [...(installation.metadata.finalizers ?? []), meshFinalizer]);
      log.debug({ step: 'finalizer' }, 'finalizer added');
      return this.reconcileOnce(name, span);
    }

    const outcome = await this.install(installation, log);
    const status = computeStatus(installation.metadata.generation ?? 0, outcome, installation.status, new Date());
    if (!statusEqual(installation.status, status)) {
      await this.custom.patchClusterCustomObjectStatus({
        group,
        version,
        plural,
        name,
        body: [{ op: 'add', path: '/status', value: status }],
      });
      const ready = status.conditions?.find((c) => c.type === 'Ready');
      log.info({ step: 'status', ready: ready?.status, reason: ready?.reason, message: ready?.message }, 'status updated');
    }
    const readyReason = status.conditions?.find((c) => c.type === 'Ready')?.reason;
    span.setAttribute('weft.outcome', outcome.kind === 'failed' ? outcome.reason : (readyReason ?? outcome.kind));
    if (outcome.kind === 'failed') span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.message });
    // Failures may be fixed outside anything watched (a Secret, another installation): look again soon.
    if (outcome.kind === 'failed') return { requeueAfterMs: 5_000 };
    const converging = status.conditions?.some((c) => c.type === 'Ready' && c.status !== 'True');
    return converging ? { requeueAfterMs: 2_000 } : {};
  }

  private async install(installation: MeshInstallation, log: Logger): Promise<ReconcileOutcome> {
    const conflict = await this.findConflict(installation);
    if (conflict) return { kind: 'failed', reason: 'NamespaceConflict', message: conflict };

    const { namespace, ca } = installation.spec;
    const existingNamespace = await this.core.readNamespace({ name: namespace }).catch((error: unknown) => {
      if (isNotFound(error)) return undefined;
      throw error;
    });
    // A namespace the user made (for example to hold cacerts) stays theirs: never labelled, never deleted.
    const ownsNamespace = !existingNamespace || existingNamespace.metadata?.labels?.[labels.installation] === installation.metadata.name;

    if (ca.mode === 'Plugged') {
      const secretName = ca.pluggedSecretName ?? 'cacerts';
      const secret = await this.core.readNamespacedSecret({ name: secretName, namespace }).catch((error: unknown) => {
        if (isNotFound(error)) return undefined;
        throw error;
      });
      const problem = secret
        ? checkCaSecret(secretName, secret.data)
        : `Secret ${secretName} not found in namespace ${namespace}; create it with Istio's cacerts keys or set ca.mode to SelfSigned`;
      if (problem) return { kind: 'failed', reason: 'InvalidCACerts', message: problem };
    }

    const gateways = desiredGateways(installation);
    const taken = await this.findGatewayConflict(installation, gateways);
    if (taken) return { kind: 'failed', reason: 'GatewayConflict', message: taken };

    const desired = controlPlaneManifests({ installation, operatorVersion: this.operatorVersion, tracingEnv: this.tracingEnv }).filter(
      (manifest) => ownsNamespace || manifest.kind !== 'Namespace',
    );
    for (const manifest of desired) {
      try {
        await this.objects.apply(manifest as KubernetesObject);
      } catch (error) {
        const message = `applying ${manifest.kind} ${manifest.metadata.name}: ${apiMessage(error)}`;
        log.warn({ step: 'apply', kind: manifest.kind, object: manifest.metadata.name, error: message }, 'apply failed');
        return { kind: 'failed', reason: 'ApplyFailed', message };
      }
    }
    log.debug({ step: 'apply', objects: desired.length }, 'applied');

    const desiredKeys = new Set(desired.map((manifest) => refKey(refOf(manifest as KubernetesObject))));
    const pruned = await this.deleteOwned(installation, (object) => !desiredKeys.has(refKey(refOf(object))));
    if (pruned > 0) log.info({ step: 'prune', objects: pruned }, 'pruned objects no longer desired');

    const names = controlPlaneNames(installation);
    const deployment = await this.objects.read<V1Deployment>({ apiVersion: 'apps/v1', kind: 'Deployment', name: names.weftd, namespace });
    const observed: GatewayObservation[] = [];
    for (const gateway of gateways) {
      const live = await this.objects.read<V1Deployment>({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        name: gateway.name,
        namespace: gateway.namespace,
      });
      observed.push({ kind: gateway.kind, name: gateway.name, namespace: gateway.namespace, deployment: live && observeDeployment(live) });
    }
    return { kind: 'applied', deployment: deployment && observeDeployment(deployment), gateways: observed };
  }

  /**
   * A gateway whose Deployment already exists and is not this installation's (another installation's,
   * or one Istio or a user made): server-side apply would silently take it over, so it is refused.
   */
  private async findGatewayConflict(
    installation: MeshInstallation,
    gateways: ReturnType<typeof desiredGateways>,
  ): Promise<string | undefined> {
    for (const gateway of gateways) {
      const live = await this.objects.read<V1Deployment>({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        name: gateway.name,
        namespace: gateway.namespace,
      });
      const owner = live?.metadata?.labels?.[labels.installation];
      if (live && owner !== installation.metadata.name) {
        const whose = owner ? `MeshInstallation '${owner}'` : `something else (no ${labels.installation} label)`;
        return `gateway ${gateway.name}: Deployment ${gateway.namespace}/${gateway.name} already exists and belongs to ${whose}; rename the gateway, or remove that Deployment`;
      }
    }
    return undefined;
  }

  /** Webhook configurations first; returns how many objects still exist. */
  private async uninstall(installation: MeshInstallation, log: Logger): Promise<number> {
    const webhooksLeft = await this.deleteOwned(installation, (object) => isWebhookKind(object.kind ?? ''), { webhooksOnly: true });
    if (webhooksLeft > 0) {
      log.info({ step: 'uninstall', webhooks: webhooksLeft }, 'deleting webhook configurations first');
      return webhooksLeft;
    }
    const left = await this.deleteOwned(installation, () => true);
    if (left > 0) {
      log.info({ step: 'uninstall', objects: left }, 'deleting control-plane objects');
      return left;
    }
    return this.deleteRuntimeState(installation, log);
  }

  /**
   * What weftd made at run time: its CA Secret (labelled with the installation) and,
   * once no installation is left, the trust bundle ConfigMaps it put in every namespace.
   */
  private async deleteRuntimeState(installation: MeshInstallation, log: Logger): Promise<number> {
    // A weftd still shutting down could write its state again: wait for its pods to be gone.
    const pods = await this.objects.list('v1', 'Pod', `${labels.installation}=${installation.metadata.name}`);
    if (pods.length > 0) return pods.length;
    const secrets = await this.objects.list('v1', 'Secret', `${labels.installation}=${installation.metadata.name}`);
    for (const secret of secrets) await this.objects.delete(refOf(secret));
    const remaining = (await this.custom.listClusterCustomObject({ group, version, plural })) as { items: MeshInstallation[] };
    if (remaining.items.some((other) => other.metadata.name !== installation.metadata.name)) return 0;
    const bundles = (await this.objects.list('v1', 'ConfigMap', `${labels.partOf}=weft`)).filter(
      (cm) => cm.metadata?.name === trustBundle.configMap,
    );
    for (const bundle of bundles) await this.objects.delete(refOf(bundle));
    if (secrets.length + bundles.length > 0)
      log.info({ step: 'uninstall', secrets: secrets.length, trustBundles: bundles.length }, 'removed runtime state');
    return 0;
  }

  /** Deletes objects labelled with this installation that match; returns how many were found. */
  private async deleteOwned(
    installation: MeshInstallation,
    matches: (object: KubernetesObject) => boolean,
    options: { webhooksOnly?: boolean } = {},
  ): Promise<number> {
    const selector = `${labels.installation}=${installation.metadata.name}`;
    let found = 0;
    for (const kind of managedKinds) {
      if (options.webhooksOnly && !isWebhookKind(kind.kind)) continue;
      const live = await this.objects.list(kind.apiVersion, kind.kind, selector);
      for (const object of live.filter(matches)) {
        found++;
        if (!object.metadata?.deletionTimestamp) await this.objects.delete(refOf(object));
      }
    }
    return found;
  }

  private async findConflict(installation: MeshInstallation): Promise<string | undefined> {
    const list = (await this.custom.listClusterCustomObject({ group, version, plural })) as { items: MeshInstallation[] };
    const rank = (mi: MeshInstallation) =>
      `${mi.metadata.creationTimestamp ? new Date(mi.metadata.creationTimestamp).toISOString() : ''}/${mi.metadata.name}`;
    const owner = list.items
      .filter((other) => other.spec.namespace === installation.spec.namespace && other.spec.revision === installation.spec.revision)
      .sort((a, b) => rank(a).localeCompare(rank(b)))[0];
    if (!owner || owner.metadata.name === installation.metadata.name) return undefined;
    const revision = installation.spec.revision ? ` with revision '${installation.spec.revision}'` : '';
    return `MeshInstallation '${owner.metadata.name}' already installs a control plane in namespace '${installation.spec.namespace}'${revision}; choose another namespace or revision, or delete one of them`;
  }

  private async readInstallation(name: string): Promise<MeshInstallation | undefined> {
    try {
      return (await this.custom.getClusterCustomObject({ group, version, plural, name })) as MeshInstallation;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  private async setFinalizers(installation: MeshInstallation, finalizers: string[]): Promise<void> {
    await this.custom.patchClusterCustomObject({
      group,
      version,
      plural,
      name: installation.metadata.name,
      // The test makes this a no-op against a newer object, which then gets its own reconcile.
      body: [
        { op: 'test', path: '/metadata/resourceVersion', value: installation.metadata.resourceVersion },
        { op: 'add', path: '/metadata/finalizers', value: finalizers },
      ],
    });
  }
}

function observeDeployment(deployment: V1Deployment): DeploymentObservation {
  return {
    name: deployment.metadata?.name ?? 'weftd',
    desiredReplicas: deployment.spec?.replicas ?? 1,
    readyReplicas: deployment.status?.readyReplicas ?? 0,
    updatedReplicas: deployment.status?.updatedReplicas ?? 0,
    availableReplicas: deployment.status?.availableReplicas ?? 0,
    replicas: deployment.status?.replicas ?? 0,
    observedLatest: (deployment.status?.observedGeneration ?? 0) >= (deployment.metadata?.generation ?? 0),
  };
}
