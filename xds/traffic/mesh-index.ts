// Lookups the per-proxy views share, built once per model (not once per proxy):
// services by host and by namespace, VirtualServices and DestinationRules by the
// hosts they name (exact names in a map, wildcard patterns in a short list).
// Istio's PushContext builds the same indexes; here they are the only mesh-wide
// work a change costs, and it is linear in the objects, not in proxies x services.
import type { ConfigObject, DestinationRuleSpec, IstioConfig, VirtualServiceSpec } from '../model/istio-config.js';
import { byAge, emptyIstioConfig } from '../model/istio-config.js';
import { serviceHost, type MeshModel, type MeshService } from '../model/mesh-model.js';
import { resolveHost } from './host-names.js';

export interface IndexedRule<Spec> {
  rule: ConfigObject<Spec>;
  /** Position in the oldest-first order: ties between rules go to the older. */
  order: number;
}

export interface IndexedVirtualService extends IndexedRule<VirtualServiceSpec> {
  hosts: string[];
}

export interface IndexedDestinationRule extends IndexedRule<DestinationRuleSpec> {
  host: string;
}

/** Rules by the hosts they name: `exact` by name, `wildcard` for `*` and `*.suffix` patterns. */
class HostIndex<T extends IndexedRule<unknown>> {
  readonly exact = new Map<string, T[]>();
  readonly wildcard: T[] = [];

  add(host: string, entry: T): void {
    if (host === '*' || host.startsWith('*.')) {
      if (this.wildcard.at(-1) !== entry) this.wildcard.push(entry);
      return;
    }
    const list = this.exact.get(host) ?? [];
    if (list.at(-1) !== entry) list.push(entry);
    this.exact.set(host, list);
  }

  /** Every rule that may name `host`, oldest first. */
  candidates(host: string): T[] {
    const exact = this.exact.get(host) ?? [];
    if (this.wildcard.length === 0) return exact;
    return [...new Set([...exact, ...this.wildcard])].sort((a, b) => a.order - b.order);
  }
}

export class MeshIndex {
  readonly config: IstioConfig;
  readonly rootNamespace: string;
  /** Services by hostname, in model order (a hostname may be served by several, e.g. ServiceEntries in two namespaces). */
  readonly byHost = new Map<string, MeshService[]>();
  readonly byNamespace = new Map<string, MeshService[]>();
  readonly virtualServices = new HostIndex<IndexedVirtualService>();
  readonly destinationRules = new HostIndex<IndexedDestinationRule>();

  private constructor(readonly model: MeshModel) {
    this.config = model.istio ?? emptyIstioConfig();
    this.rootNamespace = model.rootNamespace ?? 'istio-system';
    for (const service of model.services) {
      const host = serviceHost(service, model.clusterDomain);
      this.byHost.set(host, [...(this.byHost.get(host) ?? []), service]);
      this.byNamespace.set(service.namespace, [...(this.byNamespace.get(service.namespace) ?? []), service]);
    }
    [...this.config.virtualServices].sort(byAge).forEach((rule, order) => {
      const entry = { rule, order, hosts: (rule.spec.hosts ?? []).map((host) => resolveHost(host, rule.namespace, model.clusterDomain)) };
      for (const host of entry.hosts) this.virtualServices.add(host, entry);
    });
    [...this.config.destinationRules].sort(byAge).forEach((rule, order) => {
      const entry = { rule, order, host: resolveHost(rule.spec.host, rule.namespace, model.clusterDomain) };
      this.destinationRules.add(entry.host, entry);
    });
  }

  private static readonly cache = new WeakMap<MeshModel, MeshIndex>();

  /** The index of a model, built on first use and kept as long as the model lives. */
  static of(model: MeshModel): MeshIndex {
    let index = MeshIndex.cache.get(model);
    if (!index) {
      index = new MeshIndex(model);
      MeshIndex.cache.set(model, index);
    }
    return index;
  }
}
