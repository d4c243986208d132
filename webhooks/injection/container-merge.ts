// A user's own `istio-proxy` or `istio-init` container merged into the injected
// one, as Istio does it (pkg/kube/inject/webhook.go reapplyOverwrittenContainers:
// a strategic merge patch of the user's container over the template's). Pure.
import type { V1Container } from '@kubernetes/client-node';

/** Istio's AutoImage: `image: auto` on a user's container means "the injector's image". */
export const autoImage = 'auto';

/**
 * Container list fields that a strategic merge patch merges item by item, with their
 * merge key (k8s.io/api/core/v1 types.go `patchMergeKey`); every other list is replaced.
 */
const mergeKeys: Record<string, string> = {
  env: 'name',
  ports: 'containerPort',
  volumeMounts: 'mountPath',
  volumeDevices: 'devicePath',
  resizePolicy: 'resourceName',
};
/** A probe or hook has exactly one handler: the user's handler replaces the template's rather than joining it. */
const handlerKinds = ['exec', 'httpGet', 'tcpSocket', 'grpc', 'sleep'];
const handlerFields = new Set(['readinessProbe', 'livenessProbe', 'startupProbe', 'preStop', 'postStart']);

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

function mergeObjects(base: Record<string, unknown>, overlay: Record<string, unknown>, field?: string): Record<string, unknown> {
  const replacesHandler = field !== undefined && handlerFields.has(field) && handlerKinds.some((kind) => overlay[kind] !== undefined);
  const out: Record<string, unknown> = replacesHandler
    ? Object.fromEntries(Object.entries(base).filter(([key]) => !handlerKinds.includes(key)))
    : { ...base };
  for (const [key, value] of Object.entries(overlay)) {
    // As Go marshals the user's container: absent and null fields say nothing.
    if (value === undefined || value === null) continue;
    const current = out[key];
    const mergeKey = field === undefined ? mergeKeys[key] : undefined;
    if (mergeKey && Array.isArray(value) && Array.isArray(current)) out[key] = mergeList(current, value, mergeKey);
    else if (isObject(value) && isObject(current)) out[key] = mergeObjects(current, value, key);
    else out[key] = value;
  }
  return out;
}

/** Items with the same merge key are merged (the template's position kept); new items follow. */
function mergeList(base: unknown[], overlay: unknown[], key: string): unknown[] {
  const out = [...base];
  for (const item of overlay) {
    const index = isObject(item) ? out.findIndex((existing) => isObject(existing) && existing[key] === item[key]) : -1;
    if (index >= 0 && isObject(item)) out[index] = mergeObjects(out[index] as Record<string, unknown>, item, key);
    else out.push(item);
  }
  return out;
}

/**
 * The injected container with the user's container of the same name merged over it,
 * field by field: scalars and plain lists (args, command) from the user win, objects
 * (resources, securityContext, lifecycle, probes) merge recursively, env/ports/
 * volumeMounts merge by their key. `image: auto` (or no image) keeps the injector's image.
 */
export function mergeContainer(injected: V1Container, user: V1Container): V1Container {
  const { image, ...rest } = user;
  const overlay = image && image !== autoImage ? { ...rest, image } : rest;
  return mergeObjects(
    injected as unknown as Record<string, unknown>,
    overlay as unknown as Record<string, unknown>,
  ) as unknown as V1Container;
}
