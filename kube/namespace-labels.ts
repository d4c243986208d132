// Namespace labels, kept current by a watch: admission requests do not carry them.
import { CoreV1Api, type KubeConfig, type V1Namespace } from '@kubernetes/client-node';
import type { Logger } from '../lib/logger.js';
import { watchForever } from './watch.js';

export class NamespaceLabels {
  private readonly labels = new Map<string, Record<string, string>>();
  private stop: (() => void) | undefined;

  constructor(
    private readonly config: KubeConfig,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    const list = await this.config.makeApiClient(CoreV1Api).listNamespace();
    for (const ns of list.items) if (ns.metadata?.name) this.labels.set(ns.metadata.name, ns.metadata.labels ?? {});
    this.stop = watchForever<V1Namespace>(
      this.config,
      '/api/v1/namespaces',
      {},
      (type, ns) => {
        const name = ns.metadata?.name;
        if (!name) return;
        if (type === 'DELETED') this.labels.delete(name);
        else if (type === 'ADDED' || type === 'MODIFIED') this.labels.set(name, ns.metadata?.labels ?? {});
      },
      this.log,
    );
  }

  get(namespace: string): Record<string, string> {
    return this.labels.get(namespace) ?? {};
  }

  close(): void {
    this.stop?.();
  }
}
