// The Kubernetes Gateway API in weftd's model: the informers' objects to gatewayapi/'s conversion, whose
// Istio Gateways and VirtualServices join the mesh model beside the user's own (an unchanged generated
// object keeps its identity, so the incremental xDS derivation sees no change), and the statuses to write.
// Also the I/O istiod's class controller does: GatewayClasses `weft` and `istio` created when missing.
import { CustomObjectsApi, type KubeConfig, type V1Namespace, type V1Service } from '@kubernetes/client-node';
import { gatewayApiConfigOf, gatewayApiKinds, type GatewayApiObjects, type GatewayApiStatus } from '../../gatewayapi/gateway-api-config.js';
import { serviceInfoOf, type GeneratedObject } from '../../gatewayapi/gateway-api-input.js';
import { gatewayApiGroup } from '../../gatewayapi/gateway-api-types.js';
import { builtinGatewayClasses } from '../../gatewayapi/gateways.js';
import { isConflict, isNotFound } from '../../kube/client.js';
import type { Logger } from '../../lib/logger.js';
import type { ConfigObject, DestinationRuleSpec, GatewaySpec, IstioConfig, VirtualServiceSpec } from './istio-config.js';

export { gatewayApiKinds, serviceInfoOf, type GatewayApiStatus };

/** The previous round's generated objects, by kind/namespace/name: an equal one is returned again, as the same object. */
export class GeneratedObjects {
  private previous = new Map<string, { json: string; object: ConfigObject<unknown> }>();

  stable<Spec>(objects: ReadonlyArray<GeneratedObject<Spec>>): Array<ConfigObject<Spec>> {
    return objects.map((object) => {
      const key = `${object.kind}/${object.namespace}/${object.name}`;
      const json = JSON.stringify(object);
      const known = this.previous.get(key);
      if (known?.json === json) {
        this.next.set(key, known);
        return known.object as ConfigObject<Spec>;
      }
      const fresh = object as ConfigObject<Spec>;
      this.next.set(key, { json, object: fresh as ConfigObject<unknown> });
      return fresh;
    });
  }

  private next = new Map<string, { json: string; object: ConfigObject<unknown> }>();

  /** Call after each round: objects not generated this round are forgotten. */
  endRound(): void {
    this.previous = this.next;
    this.next = new Map();
  }
}

/**
 * The Istio config with the Gateway API's generated Gateways and VirtualServices added after the user's
 * (Istio orders by creation time; the generated objects carry their source's), and the statuses to write.
 * `now` is an RFC 3339 time for condition transitions.
 */
export function withGatewayApi(
  istio: IstioConfig,
  objects: GatewayApiObjects,
  services: ReadonlyArray<V1Service>,
  namespaces: ReadonlyArray<V1Namespace>,
  clusterDomain: string,
  generated: GeneratedObjects,
  now: string,
): { istio: IstioConfig; statuses: GatewayApiStatus[] } {
  const hasAny = Object.values(objects).some((list: ReadonlyArray<unknown>) => list.length > 0);
  if (!hasAny) return { istio, statuses: [] };
  const result = gatewayApiConfigOf(
    objects,
    {
      domainSuffix: clusterDomain,
      services: services.flatMap((s) => serviceInfoOf(s) ?? []),
      namespaces: new Map(namespaces.map((ns) => [ns.metadata?.name ?? '', ns.metadata?.labels ?? {}])),
      serviceEntries: new Map(istio.serviceEntries.map((entry) => [`${entry.namespace}/${entry.name}`, entry.spec.hosts])),
      serviceEntrySpecs: new Map(
        istio.serviceEntries.map((entry) => [
          `${entry.namespace}/${entry.name}`,
          { hosts: entry.spec.hosts, ports: (entry.spec.ports ?? []).map((p) => ({ name: p.name, number: p.number })) },
        ]),
      ),
    },
    now,
  );
  return {
    istio: {
      ...istio,
      gateways: [...istio.gateways, ...generated.stable(result.gateways as Array<GeneratedObject<GatewaySpec>>)],
      virtualServices: [
        ...istio.virtualServices,
        ...generated.stable(result.virtualServices as Array<GeneratedObject<VirtualServiceSpec>>),
      ],
      // BackendTLSPolicy's TLS origination, merged with the user's DestinationRules for the host as Istio merges them.
      destinationRules: [
        ...istio.destinationRules,
        ...generated.stable(result.destinationRules as unknown as Array<GeneratedObject<DestinationRuleSpec>>),
      ],
    },
    statuses: result.statuses,
  };
}

/**
 * The Gateway API kinds this cluster serves (their CRDs installed), by plural: a 404 means not installed.
 * Other failures (an API server still starting answers 429) are retried for about 10 s, then the kind is
 * taken as not served, with a warning: weftd runs without it rather than not at all.
 */
export async function servedGatewayApiKinds(config: KubeConfig, log: Logger): Promise<Set<string>> {
  const custom = config.makeApiClient(CustomObjectsApi);
  const served = new Set<string>();
  await Promise.all(
    gatewayApiKinds.map(async ({ plural, version }) => {
      for (let attempt = 0, delayMs = 200; ; attempt++, delayMs = Math.min(delayMs * 2, 2_000)) {
        try {
          await custom.listClusterCustomObject({ group: gatewayApiGroup, version, plural, limit: 1 });
          served.add(plural);
          return;
        } catch (error) {
          if (isNotFound(error)) return;
          if (attempt >= 8) {
            log.warn(
              { plural, error: error instanceof Error ? error.message : String(error) },
              'could not list a Gateway API kind; not watched',
            );
            return;
          }
          await new Promise((resolve) => setTimeout(resolve, delayMs));
        }
      }
    }),
  );
  if (served.size < gatewayApiKinds.length)
    log.info(
      { missing: gatewayApiKinds.filter((k) => !served.has(k.plural)).map((k) => k.plural) },
      'Gateway API kinds not served: they are not watched until weftd restarts',
    );
  return served;
}

/** Creates GatewayClasses `weft` and `istio` when missing, as istiod's class controller creates its own; failures are logged, never thrown. */
export async function ensureGatewayClasses(config: KubeConfig, log: Logger): Promise<void> {
  const custom = config.makeApiClient(CustomObjectsApi);
  for (const [name, controllerName] of Object.entries(builtinGatewayClasses)) {
    try {
      await custom.getClusterCustomObject({ group: gatewayApiGroup, version: 'v1', plural: 'gatewayclasses', name });
      continue;
    } catch (error) {
      if (!isNotFound(error)) {
        // Not fatal: a user can create the class; Gateways of a builtin class are served without it.
        log.warn({ name, error: error instanceof Error ? error.message : String(error) }, 'could not read GatewayClass');
        continue;
      }
    }
    try {
      await custom.createClusterCustomObject({
        group: gatewayApiGroup,
        version: 'v1',
        plural: 'gatewayclasses',
        body: {
          apiVersion: `${gatewayApiGroup}/v1`,
          kind: 'GatewayClass',
          metadata: { name },
          spec: { controllerName, description: name === 'weft' ? "Weft's gateways" : "Istio's class name, served by Weft" },
        },
      });
      log.info({ name, controllerName }, 'created GatewayClass');
    } catch (error) {
      // Another weftd replica created it meanwhile; any other failure is reported, not fatal.
      if (!isConflict(error))
        log.warn({ name, error: error instanceof Error ? error.message : String(error) }, 'could not create GatewayClass');
    }
  }
}
