// Whether a pod gets a sidecar, with Istio's precedence, and why (the reason is
// returned to the user as an audit annotation). The rules themselves live in
// istio/injection/injection-policy.ts, shared with the operator's webhook
// configuration and `weft analyze`; this file binds them to the injector config.
import type { V1Pod } from '@kubernetes/client-node';
import {
  injectRequired,
  injectorWebhooks,
  selectingWebhook,
  whyNotSelected,
  type InjectionPolicy,
  type InjectorSelectorOptions,
} from '../../istio/injection/injection-policy.js';
import type { InjectionConfig } from './injection-config.js';

export const statusAnnotation = 'sidecar.istio.io/status';
export const injectLabel = 'sidecar.istio.io/inject';
export const templatesAnnotation = 'inject.istio.io/templates';

export interface Decision {
  inject: boolean;
  reason: string;
}

/** The webhook selectors' options of an injector config (the operator builds the same from the MeshInstallation). */
export function selectorOptionsOf(config: InjectionConfig): InjectorSelectorOptions {
  return {
    revision: config.revision,
    revisionTags: config.revisionTags,
    namespaceLabel: config.namespaceLabel,
    honorIstioLabels: config.honorIstioLabels,
    excludedNamespaces: [config.controlPlaneNamespace],
  };
}

const policyOf = (config: InjectionConfig): InjectionPolicy => ({
  policy: config.policy,
  neverInjectSelector: config.neverInjectSelector,
  alwaysInjectSelector: config.alwaysInjectSelector,
  ignoredNamespaces: [config.controlPlaneNamespace],
});

const alreadyInjected = (pod: V1Pod) => Boolean(pod.metadata?.annotations?.[statusAnnotation]);

/**
 * The webhook's decision for a pod created in `namespace` (labelled `namespaceLabels`):
 * first whether one of this revision's webhooks selects the pod at all (the API server
 * applies the selectors of `injectorWebhooks`; evaluated here too, so a call that
 * should not have come, or an offline question, gets the same answer), then istiod's
 * `injectRequired`. A pod already injected (it carries `sidecar.istio.io/status`) is
 * left as it is, so re-injection is a no-op.
 */
export function decideInjection(pod: V1Pod, namespace: string, namespaceLabels: Record<string, string>, config: InjectionConfig): Decision {
  if (pod.spec?.hostNetwork) return injectRequired(pod, namespace, policyOf(config));
  if (alreadyInjected(pod)) return { inject: false, reason: 'already injected' };
  const options = selectorOptionsOf(config);
  const podLabels = pod.metadata?.labels ?? {};
  const hook = selectingWebhook(injectorWebhooks(options), namespace, namespaceLabels, podLabels);
  if (!hook) return { inject: false, reason: whyNotSelected(options, namespace, namespaceLabels, podLabels) };
  const required = injectRequired(pod, namespace, policyOf(config));
  if (!required.inject) return required;
  return { inject: true, reason: hook.reason };
}

/**
 * The decision for offline injection (`weft inject -f`, as `istioctl kube-inject`): the
 * file asks for injection, so no webhook selector applies, and istiod's pod-level rules
 * hold as kube-inject applies them (pkg/kube/inject/inject.go IntoObject: hostNetwork,
 * ignored namespaces, the pod's `sidecar.istio.io/inject` label or annotation, with the
 * policy `enabled` and no never/always selectors). A pod already injected is skipped.
 */
export function decideOfflineInjection(pod: V1Pod, namespace: string, config: InjectionConfig): Decision {
  if (pod.spec?.hostNetwork) return injectRequired(pod, namespace);
  if (alreadyInjected(pod)) return { inject: false, reason: 'already injected' };
  const decision = injectRequired(pod, namespace, { policy: 'enabled', ignoredNamespaces: [config.controlPlaneNamespace] });
  return decision.inject && decision.reason === 'injection policy enabled'
    ? { inject: true, reason: 'requested by weft inject' }
    : decision;
}
