// Whether a pod gets a sidecar, with Istio's precedence, and why (the reason is
// returned to the user as an audit annotation).
import type { V1Pod } from '@kubernetes/client-node';
import type { InjectionConfig } from './injection-config.js';

export const statusAnnotation = 'sidecar.istio.io/status';
export const injectLabel = 'sidecar.istio.io/inject';
export const templatesAnnotation = 'inject.istio.io/templates';
const neverInjectedNamespaces = new Set(['kube-system', 'kube-public', 'kube-node-lease']);

export interface Decision {
  inject: boolean;
  reason: string;
}

const no = (reason: string): Decision => ({ inject: false, reason });
const yes = (reason: string): Decision => ({ inject: true, reason });

export function decideInjection(pod: V1Pod, namespace: string, namespaceLabels: Record<string, string>, config: InjectionConfig): Decision {
  if (pod.spec?.hostNetwork) return no('hostNetwork pods share the node network and are never injected');
  if (pod.metadata?.annotations?.[statusAnnotation]) return no('already injected');
  if (namespace === config.controlPlaneNamespace || neverInjectedNamespaces.has(namespace))
    return no(`namespace ${namespace} is never injected`);

  // A pod's own choice wins: the label, or (with Istio compatibility) the older annotation.
  const podChoice = pod.metadata?.labels?.[injectLabel] ?? (config.honorIstioLabels ? pod.metadata?.annotations?.[injectLabel] : undefined);
  if (podChoice === 'false') return no(`pod opted out with ${injectLabel}=false`);

  const weftLabel = namespaceLabels[config.namespaceLabel];
  const istioLabel = config.honorIstioLabels ? namespaceLabels['istio-injection'] : undefined;
  const revisionLabel = config.honorIstioLabels ? namespaceLabels['istio.io/rev'] : undefined;
  if (weftLabel === 'disabled' || istioLabel === 'disabled') return no('namespace has injection disabled');
  if (config.revision) {
    if (revisionLabel === config.revision) return yes(`namespace label istio.io/rev=${config.revision}`);
    if (podChoice === 'true' && pod.metadata?.labels?.['istio.io/rev'] === config.revision)
      return yes(`pod label istio.io/rev=${config.revision}`);
    return no(`not selected for revision ${config.revision}`);
  }
  if (revisionLabel && revisionLabel !== 'default') return no(`namespace selects revision ${revisionLabel}`);
  if (weftLabel === 'enabled') return yes(`namespace label ${config.namespaceLabel}=enabled`);
  if (istioLabel === 'enabled') return yes('namespace label istio-injection=enabled');
  if (podChoice === 'true') return yes(`pod opted in with ${injectLabel}=true`);
  return no(`namespace is not labelled ${config.namespaceLabel}=enabled`);
}

/**
 * The decision for offline injection (`weft inject -f`, as `istioctl kube-inject`):
 * the file asks for injection, so the namespace counts as enabled (for this
 * revision), and every pod-level rule still holds: hostNetwork, already injected,
 * a pod's `sidecar.istio.io/inject=false`, namespaces never injected.
 */
export function decideOfflineInjection(pod: V1Pod, namespace: string, config: InjectionConfig): Decision {
  const enabled = config.revision ? { 'istio.io/rev': config.revision } : { [config.namespaceLabel]: 'enabled' };
  return decideInjection(pod, namespace, enabled, { ...config, honorIstioLabels: config.honorIstioLabels || !!config.revision });
}
