// `weft analyze` for the Kubernetes Gateway API: the status weftd would write for each
// Gateway API object (gatewayapi/, as istiod's gateway controller computes it), read back
// as findings. A condition that does not hold (Accepted or ResolvedRefs False, Conflicted
// True: errors; Programmed False: a warning) names its object, where on it (listener, parent,
// ancestor), the specification's reason and message, so a broken reference (BackendNotFound,
// RefNotPermitted, InvalidKind, NotAllowedByListeners, NoMatchingParent...) shows before apply.
import type { V1Namespace, V1Service } from '@kubernetes/client-node';
import { gatewayApiConfigOf, gatewayApiKinds, type GatewayApiObjects } from '../gatewayapi/gateway-api-config.js';
import { serviceInfoOf } from '../gatewayapi/gateway-api-input.js';

interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
}

export interface GatewayApiFinding {
  /** The object's kind, namespace and name, as in the input. */
  kind: string;
  namespace?: string;
  name: string;
  level: 'Error' | 'Warning';
  message: string;
}

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

const group = 'gateway.networking.k8s.io';

/** A condition that does not hold, and how much it matters; undefined when it holds. */
function problemLevel(condition: Condition): 'Error' | 'Warning' | undefined {
  if (condition.type === 'Conflicted') return condition.status === 'True' ? 'Error' : undefined;
  if (condition.status !== 'False') return undefined;
  if (condition.type === 'Programmed') return 'Warning';
  return condition.type === 'Accepted' || condition.type === 'ResolvedRefs' ? 'Error' : undefined;
}

/**
 * The Gateway API findings for the objects given (any mix of kinds; Gateway API objects are those of
 * `gateway.networking.k8s.io`); `clusterDomain` for Service names. Objects of classes Weft does not
 * serve are left alone, as weftd leaves them. Throws nothing for shapes the conversion cannot read:
 * those objects get no findings (the API server's schema refuses them).
 */
export function gatewayApiFindings(objects: ReadonlyArray<KubeObject>, clusterDomain: string): GatewayApiFinding[] {
  const input = Object.fromEntries(gatewayApiKinds.map(({ field }) => [field, [] as unknown[]])) as unknown as GatewayApiObjects;
  let any = false;
  for (const object of objects) {
    if (!object.apiVersion?.startsWith(`${group}/`)) continue;
    const kind = gatewayApiKinds.find((k) => k.kind === object.kind);
    if (!kind) continue;
    (input[kind.field] as unknown[]).push(object);
    any = true;
  }
  if (!any) return [];
  const services = objects.filter((o) => o.kind === 'Service').flatMap((s) => serviceInfoOf(s as V1Service) ?? []);
  const namespaces = new Map<string, Record<string, string>>();
  for (const o of objects) if (o.metadata?.namespace && !namespaces.has(o.metadata.namespace)) namespaces.set(o.metadata.namespace, {});
  for (const ns of objects.filter((o) => o.kind === 'Namespace') as V1Namespace[])
    namespaces.set(ns.metadata?.name ?? '', ns.metadata?.labels ?? {});
  const { statuses } = gatewayApiConfigOf(input, { domainSuffix: clusterDomain, services, namespaces }, new Date().toISOString());

  const findings: GatewayApiFinding[] = [];
  for (const { kind, namespace, name, status } of statuses) {
    const places: Array<{ where: string; conditions: Condition[] }> = [
      { where: '', conditions: (status['conditions'] ?? []) as Condition[] },
      ...((status['listeners'] ?? []) as Array<{ name: string; conditions?: Condition[] }>).map((l) => ({
        where: `listener ${l.name}: `,
        conditions: l.conditions ?? [],
      })),
      ...(
        (status['parents'] ?? status['ancestors'] ?? []) as Array<{
          parentRef?: { kind?: string; namespace?: string; name?: string };
          ancestorRef?: { kind?: string; namespace?: string; name?: string };
          conditions?: Condition[];
        }>
      ).map((p) => {
        const ref = p.parentRef ?? p.ancestorRef ?? {};
        return {
          where: `${p.parentRef ? 'parent' : 'ancestor'} ${ref.kind ?? 'Gateway'} ${ref.namespace ?? namespace}/${ref.name}: `,
          conditions: p.conditions ?? [],
        };
      }),
    ];
    for (const { where, conditions } of places)
      for (const condition of conditions) {
        const level = problemLevel(condition);
        if (!level) continue;
        findings.push({
          kind,
          ...(namespace ? { namespace } : {}),
          name,
          level,
          message: `${where}${condition.type}=${condition.status} (${condition.reason ?? 'no reason'})${condition.message ? `: ${condition.message}` : ''}`,
        });
      }
  }
  return findings;
}
