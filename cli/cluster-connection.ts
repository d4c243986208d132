// The CLI's one connection to a cluster: the kubeconfig (with --kubeconfig and
// --context as kubectl takes them), typed API clients, raw GETs through the API
// server (for its pod proxy), and errors that say what to check.
import { existsSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { reuseConnections } from '../kube/connection-pool.js';
import { CliError } from './cli-error.js';
import { describeKubeError } from './kube-error-message.js';

export interface ConnectionOptions {
  kubeconfig?: string;
  context?: string;
}

export interface RawResponse {
  statusCode: number;
  body: string;
}

export class ClusterConnection {
  private constructor(
    readonly config: KubeConfig,
    readonly server: string,
    private readonly hint: string,
  ) {}

  static open(options: ConnectionOptions = {}): ClusterConnection {
    const config = new KubeConfig();
    let hint = '';
    try {
      if (options.kubeconfig) config.loadFromFile(options.kubeconfig);
      else config.loadFromDefault();
    } catch (error) {
      const source = options.kubeconfig ?? process.env['KUBECONFIG'] ?? join(homedir(), '.kube', 'config');
      throw new CliError(`cannot read the kubeconfig ${source}: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (!options.kubeconfig && !process.env['KUBECONFIG'] && !existsSync(join(homedir(), '.kube', 'config'))) {
      // Inside a pod the ServiceAccount is the configuration, as with kubectl; elsewhere there is nothing to use.
      if (!process.env['KUBERNETES_SERVICE_HOST']) {
        throw new CliError(
          'no kubeconfig found: KUBECONFIG is unset and ~/.kube/config does not exist; pass --kubeconfig or set KUBECONFIG' +
            " (for make demo's local cluster, run the command inside its sandbox: ./weft dev shell -- ./weft ...)",
        );
      }
      hint = " (running in-cluster with the pod's ServiceAccount)";
    }
    if (options.context) {
      if (!config.getContextObject(options.context)) {
        const known = config.getContexts().map((c) => c.name);
        throw new CliError(`context ${options.context} is not in your kubeconfig (it has: ${known.join(', ') || 'none'})`);
      }
      config.setCurrentContext(options.context);
    }
    const cluster = config.getCurrentCluster();
    if (!cluster) throw new CliError('your kubeconfig has no current context; pick one with --context or `kubectl config use-context`');
    return new ClusterConnection(reuseConnections(config), cluster.server, hint);
  }

  /** The current context's namespace, as kubectl defaults to it. */
  get defaultNamespace(): string {
    return this.config.getContextObject(this.config.getCurrentContext())?.namespace ?? 'default';
  }

  /** Runs one API call; a failure becomes a CliError naming what was being done. */
  async call<T>(doing: string, request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (error) {
      throw this.explain(error, doing);
    }
  }

  explain(error: unknown, doing: string): CliError {
    if (error instanceof CliError) return error;
    return new CliError(describeKubeError(error, this.server, doing, this.hint), { cause: error });
  }

  /**
   * GET on the API server at `path` (with its query), answered whatever the status; throws only when unreachable.
   * `accept` asks for another representation (e.g. `PartialObjectMetadata`: an object's metadata only).
   */
  async get(path: string, timeoutMs = 15_000, accept?: string): Promise<RawResponse> {
    return this.request('GET', path, undefined, timeoutMs, accept);
  }

  /** One raw request to the API server, authenticated as the kubeconfig says. */
  async request(
    method: string,
    path: string,
    body?: { contentType: string; data: string },
    timeoutMs = 15_000,
    accept = 'application/json, */*;q=0.8',
  ): Promise<RawResponse> {
    const url = new URL(this.server.replace(/\/+$/, '') + path);
    const headers: Record<string, string> = { accept };
    if (body) headers['content-type'] = body.contentType;
    const options: https.RequestOptions = { method, headers };
    await this.config.applyToHTTPSOptions(options);
    const transport = url.protocol === 'http:' ? http : https;
    return new Promise<RawResponse>((resolve, reject) => {
      const request = transport.request(url, options, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ statusCode: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        response.on('error', reject);
      });
      request.setTimeout(timeoutMs, () =>
        request.destroy(Object.assign(new Error(`no answer within ${timeoutMs / 1000} s`), { code: 'ETIMEDOUT' })),
      );
      request.on('error', reject);
      request.end(body?.data);
    });
  }
}
