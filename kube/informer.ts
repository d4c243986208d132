// List+watch caches that never lose a change: kept by a Reflector (kube/reflector.ts),
// which resumes each watch from the last resourceVersion seen and relists only on
// 410 Gone, reporting then exactly what differs (a deletion missed is reported as one).
import type { KubeConfig, KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from '../lib/logger.js';
import { clientWatchTransport, Reflector, type StoreEvent, type WatchTransport, type WatchTuning } from './reflector.js';

export interface Cache<T> {
  list(): ReadonlyArray<T>;
  /** One object by its key: `namespace/name`, or `name` when cluster-scoped (objectKey). */
  get(key: string): T | undefined;
  stop(): Promise<void>;
}

/** What changed in the cache: the new object, or for `delete` the last state known. */
export type InformerEvent<T> = StoreEvent<T>;

/**
 * Lists with `list` (which must return the collection at `path`, with its
 * resourceVersion) and watches `path`; resolves once the first list is cached.
 * `onChange` gets one event per change, including those found by a relist.
 */
export async function startInformer<T extends KubernetesObject>(
  config: KubeConfig,
  path: string,
  list: () => Promise<KubernetesListObject<T>>,
  onChange: (event: InformerEvent<T>) => void,
  log: Logger,
  options: { tuning?: WatchTuning; transport?: WatchTransport } = {},
): Promise<Cache<T>> {
  const reflector = new Reflector<T>({
    path,
    list,
    transport: options.transport ?? clientWatchTransport(config, options.tuning),
    onEvent: onChange,
    log,
    tuning: options.tuning,
  });
  await reflector.start();
  return { list: () => reflector.list(), get: (key) => reflector.get(key), stop: () => reflector.stop() };
}
