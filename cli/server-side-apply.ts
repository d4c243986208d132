// Server-side apply over raw HTTP, as `kubectl apply --server-side` does it. The
// typed client re-serializes objects through its models, which drops schema keys
// such as x-kubernetes-int-or-string from Istio's CRDs; raw JSON keeps them.
import type { ClusterConnection } from './cluster-connection.js';
import { ApiStatusError } from './kube-error-message.js';

export interface ApiObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string };
}

interface ApiResourceList {
  resources: Array<{ name: string; kind: string; namespaced: boolean }>;
}

export class ServerSideApply {
  private readonly discovery = new Map<string, ApiResourceList>();

  constructor(
    private readonly connection: ClusterConnection,
    private readonly fieldManager: string,
  ) {}

  /** Discovery of one group version, cached; after a CRD is Established its kind may take a moment to be served. */
  private async resourcePath(object: ApiObject): Promise<string> {
    const apiVersion = object.apiVersion ?? '';
    let list = this.discovery.get(apiVersion);
    if (!list) {
      const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
      const response = await this.connection.get(base);
      if (response.statusCode !== 200) throw ApiStatusError.from(response.statusCode, response.body);
      list = JSON.parse(response.body) as ApiResourceList;
      this.discovery.set(apiVersion, list);
    }
    const resource = list.resources.find((r) => r.kind === object.kind && !r.name.includes('/'));
    if (!resource) {
      this.discovery.delete(apiVersion);
      throw new ApiStatusError(404, `the API server does not serve ${object.kind} in ${apiVersion}`);
    }
    const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    const namespace = resource.namespaced ? `/namespaces/${encodeURIComponent(object.metadata?.namespace ?? 'default')}` : '';
    return `${base}${namespace}/${resource.name}`;
  }

  async apply<T extends ApiObject>(object: T): Promise<T> {
    const path = `${await this.resourcePath(object)}/${encodeURIComponent(object.metadata?.name ?? '')}`;
    const response = await this.connection.request('PATCH', `${path}?fieldManager=${encodeURIComponent(this.fieldManager)}&force=true`, {
      contentType: 'application/apply-patch+yaml',
      data: JSON.stringify(object),
    });
    if (response.statusCode !== 200 && response.statusCode !== 201) throw ApiStatusError.from(response.statusCode, response.body);
    return JSON.parse(response.body) as T;
  }

  /** The object as the API server has it, or undefined when absent. */
  async read<T extends ApiObject>(object: ApiObject): Promise<T | undefined> {
    const path = `${await this.resourcePath(object)}/${encodeURIComponent(object.metadata?.name ?? '')}`;
    const response = await this.connection.get(path);
    if (response.statusCode === 404) return undefined;
    if (response.statusCode !== 200) throw ApiStatusError.from(response.statusCode, response.body);
    return JSON.parse(response.body) as T;
  }
}
