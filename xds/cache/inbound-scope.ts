// The inbound config of one group of sidecars (same namespace and inbound
// selectors: see traffic/scope-signature): the virtual inbound listener and its
// clusters. Small, so it is derived whole, and only when its namespace's Services
// or security or telemetry policy (or the mesh-wide inputs) change.
import { encodeResource, typeUrls } from '../protos.js';
import { envoyInboundResources } from '../generate/envoy-sidecar-resources.js';
import { ProxyView } from '../traffic/proxy-view.js';
import type { ProxyScope } from '../traffic/proxy-scope.js';
import type { GenerationContext } from './generation-context.js';
import { includes, type ModelChange } from './model-change.js';
import { note, type ChangedNames } from './outbound-scope.js';
import { ResourceMap } from './resource-map.js';

export class InboundScope {
  readonly listeners = new ResourceMap();
  readonly clusters = new ResourceMap();
  connected = 0;

  constructor(
    readonly key: string,
    /** The member whose labels stand for the group. */
    public scope: ProxyScope,
  ) {}

  rebuild(ctx: GenerationContext, changed: ChangedNames = new Map()): ChangedNames {
    ctx.derivations.add('inbound');
    const resources = envoyInboundResources(new ProxyView(ctx.model, this.scope, ctx.index));
    const apply = (map: ResourceMap, typeUrl: string, objects: Record<string, Record<string, unknown>>) => {
      for (const name of [...map.names()]) if (!(name in objects) && map.delete(name)) note(changed, typeUrl, name);
      // Mostly one of a kind per group: encoded directly, not looked up by content.
      for (const [name, object] of Object.entries(objects)) {
        if (map.set({ name, resource: { type_url: typeUrl, value: encodeResource(typeUrl, object) } })) note(changed, typeUrl, name);
      }
    };
    apply(this.listeners, typeUrls.listener, resources.listeners);
    apply(this.clusters, typeUrls.cluster, resources.clusters);
    return changed;
  }

  apply(ctx: GenerationContext, change: ModelChange, changed: ChangedNames = new Map()): ChangedNames {
    if (change.everything || includes(change.inboundNamespaces, this.scope.namespace)) return this.rebuild(ctx, changed);
    return changed;
  }
}
