// Server-side apply, list by label, delete: the verbs a level-based reconciler needs.
import { KubernetesObjectApi, PatchStrategy, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { isNotFound } from './client.js';

export interface ObjectRef {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
}

export function refOf(object: KubernetesObject): ObjectRef {
  return {
    apiVersion: object.apiVersion ?? '',
    kind: object.kind ?? '',
    name: object.metadata?.name ?? '',
    ...(object.metadata?.namespace ? { namespace: object.metadata.namespace } : {}),
  };
}

export function refKey(ref: ObjectRef): string {
  return `${ref.apiVersion}/${ref.kind}/${ref.namespace ?? ''}/${ref.name}`;
}

export class ObjectClient {
  private readonly api: KubernetesObjectApi;

  constructor(
    config: KubeConfig,
    private readonly fieldManager: string,
  ) {
    this.api = KubernetesObjectApi.makeApiClient(config);
  }

  /** Server-side apply: this field manager owns exactly the fields in `object`. */
  async apply<T extends KubernetesObject>(object: T, options: { dryRun?: boolean } = {}): Promise<T> {
    return this.api.patch(object, undefined, options.dryRun ? 'All' : undefined, this.fieldManager, true, PatchStrategy.ServerSideApply);
  }

  async read<T extends KubernetesObject>(ref: ObjectRef): Promise<T | undefined> {
    try {
      return (await this.api.read({
        apiVersion: ref.apiVersion,
        kind: ref.kind,
        metadata: { name: ref.name, namespace: ref.namespace },
      })) as T;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async list<T extends KubernetesObject>(apiVersion: string, kind: string, labelSelector: string, namespace?: string): Promise<T[]> {
    const list = await this.api.list<T>(apiVersion, kind, namespace, undefined, undefined, undefined, undefined, labelSelector);
    // List items carry no apiVersion/kind; put them back so they can be deleted or compared.
    return list.items.map((item) => ({ ...item, apiVersion, kind }));
  }

  /** Deletes with background propagation; an absent object is fine. Returns whether it existed. */
  async delete(ref: ObjectRef): Promise<boolean> {
    try {
      await this.api.delete(
        { apiVersion: ref.apiVersion, kind: ref.kind, metadata: { name: ref.name, namespace: ref.namespace } },
        undefined,
        undefined,
        undefined,
        undefined,
        'Background',
      );
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }
}
