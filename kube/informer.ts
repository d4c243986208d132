// List-then-watch caches that keep going: the client's informer stops on most
// errors, so it is restarted with backoff (it relists, so nothing is missed).
import { makeInformer, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from '../lib/logger.js';

export interface Cache<T> {
  list(): ReadonlyArray<T>;
  stop(): Promise<void>;
}

/** What changed; absent after a restart's relist (anything may have). */
export interface InformerEvent<T> {
  type: 'add' | 'update' | 'delete';
  object: T;
}

export async function startInformer<T extends KubernetesObject>(
  config: KubeConfig,
  path: string,
  list: () => Promise<KubernetesListObject<T>>,
  onChange: (event?: InformerEvent<T>) => void,
  log: Logger,
): Promise<Cache<T>> {
  const informer = makeInformer<T>(config, path, list);
  let stopped = false;
  let failures = 0;
  for (const type of ['add', 'update', 'delete'] as const) informer.on(type, (object: T) => onChange({ type, object }));
  informer.on('connect', () => {
    failures = 0;
  });
  informer.on('error', (error: unknown) => {
    if (stopped) return;
    failures++;
    const delay = Math.min(200 * 2 ** failures, 30_000);
    log.warn({ path, retryInMs: delay, error: error instanceof Error ? error.message : String(error) }, 'informer stopped; restarting');
    setTimeout(() => {
      if (!stopped)
        void informer.start().then(
          () => onChange(),
          () => undefined,
        );
    }, delay).unref();
  });
  await informer.start();
  return {
    list: () => informer.list(),
    stop: async () => {
      stopped = true;
      await informer.stop();
    },
  };
}
