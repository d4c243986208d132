import type { LabelSelector } from '../../istio/injection/injection-policy.js';

// What the injector needs to know, read once from the injector ConfigMap the
// operator writes (and from the apiserver's version), not per request.
export interface InjectionConfig {
  proxyImage: string;
  proxyLogLevel: string;
  proxyResources: { requests?: Record<string, string>; limits?: Record<string, string> };
  /** host:port of weftd's TLS xDS/CA endpoint, e.g. weftd.weft-system.svc:15012 */
  discoveryAddress: string;
  trustDomain: string;
  clusterId: string;
  meshId: string;
  revision: string;
  /** Revision tags pointing at this revision (Istio's `revisionTags`); `default` makes it the default revision. */
  revisionTags: string[];
  /** Istio's `global.proxy.autoInject`: whether a pod a webhook selected is injected unless it says otherwise. */
  policy: 'enabled' | 'disabled';
  /** Istio's `sidecarInjectorWebhook.neverInjectSelector`: pods (without `sidecar.istio.io/inject`) never injected. */
  neverInjectSelector: LabelSelector[];
  /** Istio's `sidecarInjectorWebhook.alwaysInjectSelector`: pods injected even when the policy is disabled. */
  alwaysInjectSelector: LabelSelector[];
  /** Weft's namespace label key (value "enabled"). */
  namespaceLabel: string;
  honorIstioLabels: boolean;
  controlPlaneNamespace: string;
  /** Kubernetes 1.29+: the proxy runs as a native sidecar (init container with restartPolicy Always). */
  nativeSidecars: boolean;
  /** Leave traffic capture to a CNI plugin: no istio-init container. */
  cni: boolean;
  clusterDomain: string;
}

export const defaultInjectionConfig: InjectionConfig = {
  proxyImage: 'docker.io/istio/proxyv2:1.28.1',
  proxyLogLevel: 'warning',
  proxyResources: {},
  discoveryAddress: 'weftd.weft-system.svc:15012',
  trustDomain: 'cluster.local',
  clusterId: 'Kubernetes',
  meshId: 'cluster.local',
  revision: '',
  revisionTags: [],
  policy: 'enabled',
  neverInjectSelector: [],
  alwaysInjectSelector: [],
  namespaceLabel: 'weft-injection',
  honorIstioLabels: true,
  controlPlaneNamespace: 'weft-system',
  nativeSidecars: true,
  cni: false,
  clusterDomain: 'cluster.local',
};

/** The injector ConfigMap's `values` (written by the operator's chart) over the defaults. */
export function injectionConfigFromValues(valuesJson: string, controlPlaneNamespace: string, nativeSidecars: boolean): InjectionConfig {
  const values = JSON.parse(valuesJson) as {
    revision?: string;
    revisionTags?: string[];
    policy?: 'enabled' | 'disabled';
    neverInjectSelector?: LabelSelector[];
    alwaysInjectSelector?: LabelSelector[];
    trustDomain?: string;
    discoveryAddress?: string;
    honorIstioLabels?: boolean;
    namespaceLabel?: string;
    cni?: boolean;
    proxy?: { image?: string; logLevel?: string; resources?: InjectionConfig['proxyResources'] };
  };
  return {
    ...defaultInjectionConfig,
    controlPlaneNamespace,
    nativeSidecars,
    ...(values.revision !== undefined ? { revision: values.revision } : {}),
    ...(Array.isArray(values.revisionTags) ? { revisionTags: values.revisionTags } : {}),
    ...(values.policy === 'enabled' || values.policy === 'disabled' ? { policy: values.policy } : {}),
    ...(Array.isArray(values.neverInjectSelector) ? { neverInjectSelector: values.neverInjectSelector } : {}),
    ...(Array.isArray(values.alwaysInjectSelector) ? { alwaysInjectSelector: values.alwaysInjectSelector } : {}),
    ...(values.trustDomain ? { trustDomain: values.trustDomain, meshId: values.trustDomain } : {}),
    ...(values.discoveryAddress ? { discoveryAddress: values.discoveryAddress } : {}),
    ...(values.honorIstioLabels !== undefined ? { honorIstioLabels: values.honorIstioLabels } : {}),
    ...(values.namespaceLabel ? { namespaceLabel: values.namespaceLabel } : {}),
    ...(values.cni !== undefined ? { cni: values.cni } : {}),
    ...(values.proxy?.image ? { proxyImage: values.proxy.image } : {}),
    ...(values.proxy?.logLevel ? { proxyLogLevel: values.proxy.logLevel } : {}),
    ...(values.proxy?.resources ? { proxyResources: values.proxy.resources } : {}),
  };
}
