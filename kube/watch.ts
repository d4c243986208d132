// A watch that never silently ends: the client's watch stops on errors and at
// server timeouts, so it is restarted with backoff until stopped.
import { Watch, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from '../lib/logger.js';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export function watchForever<T extends KubernetesObject>(
  config: KubeConfig,
  path: string,
  query: Record<string, string>,
  onEvent: (type: WatchEventType, object: T) => void,
  log: Logger,
): () => void {
  const watch = new Watch(config);
  let stopped = false;
  let failures = 0;
  let controller: AbortController | undefined;
  let timer: NodeJS.Timeout | undefined;

  const restart = (error: unknown): void => {
    if (stopped) return;
    failures = error ? failures + 1 : 0;
    const delay = error ? Math.min(200 * 2 ** failures, 30_000) : 0;
    if (error)
      log.warn({ path, retryInMs: delay, error: error instanceof Error ? error.message : String(error) }, 'watch ended; restarting');
    timer = setTimeout(() => void start(), delay);
    timer.unref();
  };
  const start = async (): Promise<void> => {
    try {
      controller = await watch.watch(path, query, (type, object: T) => onEvent(type as WatchEventType, object), restart);
      failures = 0;
    } catch (error) {
      restart(error ?? new Error('watch failed to start'));
    }
  };
  void start();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    controller?.abort();
  };
}
