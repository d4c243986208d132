// A watch that never misses a change: the collection is listed once, then watched
// from the list's resourceVersion and resumed from the last one seen whenever a
// watch ends (kube/reflector.ts). Callers get ADDED for what exists at the start,
// then every change; after a 410 Gone relist, exactly the differences.
import * as http from 'node:http';
import * as https from 'node:https';
import type { KubeConfig, KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from '../lib/logger.js';
import { clientWatchTransport, Reflector, type WatchTransport, type WatchTuning } from './reflector.js';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

const eventTypes = { add: 'ADDED', update: 'MODIFIED', delete: 'DELETED' } as const;

/**
 * Watches the collection at `path` (for example `/api/v1/configmaps`) with `query`'s
 * selectors until the returned function is called. `onEvent` gets ADDED for each
 * object listed at the start, then each change, in order; a deletion while no
 * watch was open still arrives as DELETED (with the last state known). Failures
 * are retried with backoff (one warning per run of failures); routine watch ends
 * are logged at debug.
 */
export function watchForever<T extends KubernetesObject>(
  config: KubeConfig,
  path: string,
  query: Record<string, string>,
  onEvent: (type: WatchEventType, object: T) => void,
  log: Logger,
  options: { tuning?: WatchTuning; transport?: WatchTransport } = {},
): () => void {
  const reflector = new Reflector<T>({
    path,
    query,
    list: () => listCollection<T>(config, path, query),
    transport: options.transport ?? clientWatchTransport(config, options.tuning),
    onEvent: (event) => onEvent(eventTypes[event.type], event.object),
    log,
    tuning: options.tuning,
  });
  void reflector.start();
  return () => void reflector.stop();
}

/**
 * GET of a collection (`path` with `query`'s selectors), authenticated as the
 * kubeconfig says. Throws an Error with `statusCode` and the API server's message
 * when the answer is not 200.
 */
export async function listCollection<T extends KubernetesObject>(
  config: KubeConfig,
  path: string,
  query: Record<string, string> = {},
  timeoutMs = 30_000,
): Promise<KubernetesListObject<T>> {
  const cluster = config.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const url = new URL(cluster.server.replace(/\/+$/, '') + path);
  for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
  const options: https.RequestOptions = { method: 'GET', headers: { accept: 'application/json' } };
  await config.applyToHTTPSOptions(options);
  const transport = url.protocol === 'http:' ? http : https;
  const { statusCode, body } = await new Promise<{ statusCode: number; body: string }>((resolve, reject) => {
    const request = transport.request(url, options, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ statusCode: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      response.on('error', reject);
    });
    request.setTimeout(timeoutMs, () => request.destroy(new Error(`list ${path}: no answer within ${timeoutMs / 1000} s`)));
    request.on('error', reject);
    request.end();
  });
  if (statusCode !== 200) {
    let message = body.slice(0, 200);
    try {
      message = (JSON.parse(body) as { message?: string }).message ?? message;
    } catch {
      // not a Status: keep the start of the body
    }
    throw Object.assign(new Error(`list ${path}: ${statusCode} ${message}`), { statusCode });
  }
  return JSON.parse(body) as KubernetesListObject<T>;
}
