// The one place Weft builds Kubernetes clients.
import { ApiException, KubeConfig } from '@kubernetes/client-node';
import { reuseConnections } from './connection-pool.js';

/** KUBECONFIG when set, else the in-cluster ServiceAccount, as every Kubernetes client does. */
export function loadKubeConfig(): KubeConfig {
  const config = new KubeConfig();
  config.loadFromDefault();
  return reuseConnections(config);
}

export function statusCode(error: unknown): number | undefined {
  if (error instanceof ApiException) return error.code;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

export const isNotFound = (error: unknown): boolean => statusCode(error) === 404;
export const isConflict = (error: unknown): boolean => statusCode(error) === 409;

/** The apiserver's own message (it names the offending field), without the client's wrapping. */
export function apiMessage(error: unknown): string {
  if (error instanceof ApiException) {
    const body = error.body as unknown;
    try {
      const parsed = (typeof body === 'string' ? JSON.parse(body) : body) as { message?: string };
      if (parsed?.message) return parsed.message;
    } catch {
      // fall through to the error's own message
    }
  }
  return error instanceof Error ? error.message : String(error);
}
