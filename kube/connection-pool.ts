// One pool of API server connections per KubeConfig, instead of one per call.
import { createHash } from 'node:crypto';
import type { Agent as HttpsAgent } from 'node:https';
import type { Cluster, KubeConfig } from '@kubernetes/client-node';

interface Closable {
  close?: () => Promise<void>;
}

type CreateDispatcher = (cluster: Cluster | null, agentOptions: HttpsAgent['options']) => Closable | undefined;

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
 * each call, so a rotated certificate gets a new pool and the oldest beyond `maxPools` is closed
 * once its calls finish). Returns `config`. Throws if client-node no longer has `createDispatcher`
 * (`connection-pool.test.ts` fails first).
 */
export function reuseConnections(config: KubeConfig): KubeConfig {
  if (pooled.has(config)) return config;
  const internal = config as unknown as { createDispatcher?: CreateDispatcher };
  const create = internal.createDispatcher?.bind(config);
  if (!create) throw new Error('@kubernetes/client-node has no KubeConfig.createDispatcher: update kube/connection-pool.ts');
  pooled.add(config);
  const pools = new Map<string, Closable | undefined>();
  internal.createDispatcher = (cluster, agentOptions) => {
    const key = poolKey(cluster, agentOptions);
    if (pools.has(key)) return pools.get(key);
    const dispatcher = create(cluster, agentOptions);
    pools.set(key, dispatcher);
    if (pools.size > maxPools) {
      const [oldest] = pools;
      if (oldest) {
        pools.delete(oldest[0]);
        void oldest[1]?.close?.().catch(() => undefined);
      }
    }
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
