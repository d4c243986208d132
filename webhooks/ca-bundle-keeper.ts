// Keeps the caBundle of weftd's webhook configurations equal to the CA's trust
// bundle. weftd owns only that field (server-side apply, its own field manager),
// so the operator's applies never remove it and the two never fight.
import { KubernetesObjectApi, PatchStrategy, type KubeConfig, type V1MutatingWebhookConfiguration } from '@kubernetes/client-node';
import { isNotFound } from '../kube/client.js';
import { watchForever } from '../kube/watch.js';
import type { Logger } from '../lib/logger.js';
import type { WebhookConfigurationView } from './webhook-readiness.js';

const kinds = ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration'] as const;
const paths = {
  MutatingWebhookConfiguration: 'mutatingwebhookconfigurations',
  ValidatingWebhookConfiguration: 'validatingwebhookconfigurations',
} as const;

export class CaBundleKeeper {
  private readonly api: KubernetesObjectApi;
  private stops: Array<() => void> = [];

  constructor(
    private readonly config: KubeConfig,
    private readonly names: { mutating: string; validating: string },
    private caBundle: string,
    private readonly log: Logger,
  ) {
    this.api = KubernetesObjectApi.makeApiClient(config);
  }

  start(): void {
    for (const kind of kinds) {
      const name = kind === 'MutatingWebhookConfiguration' ? this.names.mutating : this.names.validating;
      this.stops.push(
        watchForever<V1MutatingWebhookConfiguration>(
          this.config,
          `/apis/admissionregistration.k8s.io/v1/${paths[kind]}`,
          { fieldSelector: `metadata.name=${name}` },
          (type, object) => {
            if (type === 'DELETED') return;
            const encoded = Buffer.from(this.caBundle).toString('base64');
            if ((object.webhooks ?? []).some((hook) => hook.clientConfig.caBundle !== encoded)) void this.apply(kind, name);
          },
          this.log,
        ),
      );
    }
  }

  async setBundle(caBundle: string): Promise<void> {
    this.caBundle = caBundle;
    await Promise.all([
      this.apply('MutatingWebhookConfiguration', this.names.mutating),
      this.apply('ValidatingWebhookConfiguration', this.names.validating),
    ]);
  }

  /**
   * Both webhook configurations as the API server stores them now (a GET each, not a cache): what
   * the API server will use to call weftd. Throws when the API server cannot be read.
   */
  async readBack(): Promise<WebhookConfigurationView[]> {
    return Promise.all(
      kinds.map(async (kind) => {
        const name = kind === 'MutatingWebhookConfiguration' ? this.names.mutating : this.names.validating;
        try {
          const current = (await this.api.read({
            apiVersion: 'admissionregistration.k8s.io/v1',
            kind,
            metadata: { name },
          })) as V1MutatingWebhookConfiguration;
          const webhooks = (current.webhooks ?? []).map((hook) => ({
            name: hook.name,
            ...(hook.clientConfig.caBundle ? { caBundle: hook.clientConfig.caBundle } : {}),
          }));
          return { kind, name, found: true, webhooks };
        } catch (error) {
          if (isNotFound(error)) return { kind, name, found: false, webhooks: [] };
          throw error;
        }
      }),
    );
  }

  /** Applies the caBundle again where a configuration read back differs from it (an apply that failed, a field overwritten). */
  async repair(views: WebhookConfigurationView[]): Promise<void> {
    const encoded = Buffer.from(this.caBundle).toString('base64');
    await Promise.all(
      views
        .filter((view) => view.found && view.webhooks.some((hook) => hook.caBundle !== encoded))
        .map((view) => this.apply(view.kind, view.name)),
    );
  }

  stop(): void {
    for (const stop of this.stops) stop();
    this.stops = [];
  }

  private async apply(kind: (typeof kinds)[number], name: string): Promise<void> {
    try {
      const current = (await this.api.read({
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind,
        metadata: { name },
      })) as V1MutatingWebhookConfiguration;
      const caBundle = Buffer.from(this.caBundle).toString('base64');
      await this.api.patch(
        {
          apiVersion: 'admissionregistration.k8s.io/v1',
          kind,
          metadata: { name },
          webhooks: (current.webhooks ?? []).map((hook) => ({ name: hook.name, clientConfig: { caBundle } })),
        } as V1MutatingWebhookConfiguration,
        undefined,
        undefined,
        'weftd',
        true,
        PatchStrategy.ServerSideApply,
      );
      this.log.info({ kind, name }, 'caBundle set');
    } catch (error) {
      if (isNotFound(error)) return;
      this.log.warn(
        { kind, name, error: error instanceof Error ? error.message : String(error) },
        'could not set caBundle; will retry on the next change',
      );
    }
  }
}
