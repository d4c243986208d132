// One pool of API server connections per KubeConfig, instead of one per call.
import { createHash } from 'node:crypto';
import type { Agent as HttpsAgent } from 'node:https';
import type { Cluster, KubeConfig } from '@kubernetes/client-node';

type CreateDispatcher = (cluster: Cluster | null, agentOptions: HttpsAgent['options']) => unknown;

/** Distinct TLS settings kept pooled at once (a rotated client certificate makes a new one). */
const maxPools = 4;
const pooled = new WeakSet<KubeConfig>();

/**
 * Makes every API call made through `config`'s generated clients (`makeApiClient`) share one
 * connection pool per API server and TLS setting. client-node 2.0 builds a new undici Agent for
 * each call (`KubeConfig.applySecurityAuthentication` → `createDispatcher`), so every call opened,
 * and left open, a TLS connection of its own: a storm of 1,000 proxies on 15012 cost the API server
 * 1,000 TLS handshakes for their TokenReviews, and weftd a SecureContext each (its CPU profile:
 * `SecureContext`, `TLSSocket._start`). client-go keeps one transport per configuration
 * (`k8s.io/client-go/transport/cache.go`); this does the same.
 *
 * The pool is keyed by the server, proxy and every TLS option's bytes (files are read again on
 * each call, so a rotated certificate gets a new pool; beyond `maxPools` the least recently used is
 * dropped and its idle connections time out). Bearer tokens and other credentials sent as headers are
 * not part of the key: the API server authenticates each request. Returns `config`. Throws if client-node no longer has `createDispatcher`
 * (`connection-pool.test.ts` fails first).
 */
export function reuseConnections(config: KubeConfig): KubeConfig {
  if (pooled.has(config)) return config;
  const internal = config as unknown as { createDispatcher?: CreateDispatcher };
  const create = internal.createDispatcher?.bind(config);
  if (!create) throw new Error('@kubernetes/client-node has no KubeConfig.createDispatcher: update kube/connection-pool.ts');
  pooled.add(config);
  const pools = new Map<string, unknown>();
  internal.createDispatcher = (cluster, agentOptions) => {
    const key = poolKey(cluster, agentOptions);
    const kept = pools.get(key);
    pools.delete(key);
    // Least recently used last to go. An evicted pool is dropped, not closed: a call may hold it between
    // choosing it and sending; its idle sockets end with undici's keep-alive timeout, as the per-call Agents did.
    const dispatcher = kept ?? create(cluster, agentOptions);
    pools.set(key, dispatcher);
    const [oldest] = pools.keys();
    if (pools.size > maxPools && oldest !== undefined) pools.delete(oldest);
    return dispatcher;
  };
  return config;
}

function poolKey(cluster: Cluster | null, options: HttpsAgent['options']): string {
  const hash = createHash('sha256');
  hash.update(`${cluster?.server ?? ''}\0${cluster?.proxyUrl ?? ''}\0`);
  for (const name of ['ca', 'cert', 'key', 'pfx', 'passphrase', 'rejectUnauthorized', 'servername'] as const) {
    const value: unknown = options[name];
    hash.update(`${name}=`);
    for (const part of Array.isArray(value) ? value : [value]) {
      if (Buffer.isBuffer(part)) hash.update(part);
      else hash.update(String(part));
      hash.update('\0');
    }
  }
  return hash.digest('base64');
}
