// Who gets a sidecar, with Istio's rules, in one place: the injector webhooks'
// namespace and object selectors per revision (Istio's
// manifests/charts/istio-control/istio-discovery/templates/mutatingwebhook.yaml and
// revision-tags-mwc.yaml), and what istiod decides once a pod reaches it
// (pkg/kube/inject/inject.go injectRequired). The operator writes the selectors into
// the MutatingWebhookConfiguration; weftd's webhook, `weft inject` and `weft analyze`
// evaluate the same selectors and the same policy, so the three never disagree.
// Pure: imports nothing.

/** A Kubernetes label selector requirement (metav1.LabelSelectorRequirement). */
export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

/** A Kubernetes label selector (metav1.LabelSelector): every term must hold. */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export const sidecarInjectLabel = 'sidecar.istio.io/inject';
export const istioInjectionLabel = 'istio-injection';
export const revisionLabel = 'istio.io/rev';
/** Set by the API server on every namespace (Kubernetes 1.21+); webhooks select on it. */
export const namespaceNameLabel = 'kubernetes.io/metadata.name';
/** Istio's IgnoredNamespaces (pkg/kube/inject/initializer.go): never injected. */
export const ignoredNamespaces: readonly string[] = ['kube-system', 'kube-public', 'kube-node-lease', 'local-path-storage'];

/**
 * Whether `labels` satisfy `selector`, with Kubernetes' semantics: `In` needs the key
 * with one of the values, `NotIn` holds when the key is absent or has another value,
 * an empty selector matches everything.
 */
export function selectorMatches(selector: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) if (labels[key] !== value) return false;
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const present = Object.hasOwn(labels, key);
    const value = labels[key];
    const holds =
      operator === 'In'
        ? present && values.includes(value as string)
        : operator === 'NotIn'
          ? !present || !values.includes(value as string)
          : operator === 'Exists'
            ? present
            : !present;
    if (!holds) return false;
  }
  return true;
}

const isEmptySelector = (selector: LabelSelector) =>
  Object.keys(selector.matchLabels ?? {}).length === 0 && (selector.matchExpressions ?? []).length === 0;

/** Which revision's webhooks are built, and which labels they honour. */
export interface InjectorSelectorOptions {
  /** The control plane's revision; '' is the default revision (served as `istio.io/rev=default` too). */
  revision: string;
  /** Revision tags pointing at this revision (Istio's `revisionTags`); the tag `default` makes it the default revision. */
  revisionTags?: readonly string[];
  /**
   * Weft's own namespace label (e.g. `weft-injection`): `enabled` or `disabled`, it plays
   * the part of `istio-injection` and, when both are set, wins over it.
   */
  namespaceLabel: string;
  /** Also honour the namespace labels `istio-injection` and `istio.io/rev=default` (on by default). */
  honorIstioLabels?: boolean;
  /** Namespaces never sent to the webhook besides Istio's ignored ones, e.g. the control plane's. */
  excludedNamespaces?: readonly string[];
}

/** One webhook of the injector's MutatingWebhookConfiguration. */
export interface InjectorWebhook {
  /** Istio's prefix (`rev.namespace.`, `rev.object.`, `namespace.`, `object.`) + `sidecar-injector.weft.dev`. */
  name: string;
  namespaceSelector: LabelSelector;
  objectSelector: LabelSelector;
  /** Why a pod this webhook selects is injected, for the audit annotation and `weft inject`. */
  reason: string;
}

/** The revision values (`istio.io/rev=<value>`) this control plane serves: its revision, or `default`, and its tags. */
export function servedRevisions(options: InjectorSelectorOptions): string[] {
  const own = options.revision ? [options.revision] : options.honorIstioLabels === false ? [] : ['default'];
  return [...new Set([...own, ...(options.revisionTags ?? [])])];
}

/** Whether this control plane serves the default (unrevisioned) selectors: revision '' or the tag `default`. */
export const isDefaultRevision = (options: InjectorSelectorOptions) =>
  options.revision === '' || (options.revisionTags ?? []).includes('default');

/**
 * The injector webhooks of one revision, with Istio's selectors:
 * - `rev.namespace.`: namespace `istio.io/rev` in the served revisions and no legacy label; pod not opted out;
 * - `rev.object.`: namespace without either label, pod `istio.io/rev` in the served revisions, not opted out;
 * and for the default revision (or the tag `default`):
 * - `namespace.`: namespace `<namespaceLabel>=enabled` (or `istio.namespace.`: `istio-injection=enabled`
 *   without Weft's label), whatever its `istio.io/rev`; pod not opted out;
 * - `object.`: namespace without any label, pod `sidecar.istio.io/inject=true` without `istio.io/rev`.
 * "Legacy label" is `istio-injection` or Weft's `namespaceLabel`: either, when present, takes the
 * namespace away from the revision webhooks, as `istio-injection` does in Istio. The webhooks are
 * disjoint: a pod is selected by at most one. Every namespace selector also leaves out Istio's
 * ignored namespaces and `excludedNamespaces`.
 */
export function injectorWebhooks(options: InjectorSelectorOptions): InjectorWebhook[] {
  const honor = options.honorIstioLabels !== false;
  const weftLabel = options.namespaceLabel;
  const legacyLabels = [...new Set([weftLabel, ...(honor ? [istioInjectionLabel] : [])])];
  const noLegacy = legacyLabels.map((key): LabelSelectorRequirement => ({ key, operator: 'DoesNotExist' }));
  const excluded: LabelSelectorRequirement = {
    key: namespaceNameLabel,
    operator: 'NotIn',
    values: [...new Set([...ignoredNamespaces, ...(options.excludedNamespaces ?? [])])],
  };
  const notOptedOut: LabelSelectorRequirement = { key: sidecarInjectLabel, operator: 'NotIn', values: ['false'] };
  const revisions = servedRevisions(options);
  const shown = revisions.length === 1 ? `=${revisions[0]}` : ` in (${revisions.join(',')})`;
  const hooks: InjectorWebhook[] = [];
  if (revisions.length > 0) {
    hooks.push(
      {
        name: 'rev.namespace.sidecar-injector.weft.dev',
        namespaceSelector: {
          matchExpressions: [{ key: revisionLabel, operator: 'In', values: revisions }, ...noLegacy, excluded],
        },
        objectSelector: { matchExpressions: [notOptedOut] },
        reason: `namespace label ${revisionLabel}${shown}`,
      },
      {
        name: 'rev.object.sidecar-injector.weft.dev',
        namespaceSelector: { matchExpressions: [{ key: revisionLabel, operator: 'DoesNotExist' }, ...noLegacy, excluded] },
        objectSelector: { matchExpressions: [notOptedOut, { key: revisionLabel, operator: 'In', values: revisions }] },
        reason: `pod label ${revisionLabel}${shown} in a namespace without injection labels`,
      },
    );
  }
  if (isDefaultRevision(options)) {
    hooks.push({
      name: 'namespace.sidecar-injector.weft.dev',
      namespaceSelector: { matchExpressions: [{ key: weftLabel, operator: 'In', values: ['enabled'] }, excluded] },
      objectSelector: { matchExpressions: [notOptedOut] },
      reason: `namespace label ${weftLabel}=enabled`,
    });
    if (honor && weftLabel !== istioInjectionLabel) {
      hooks.push({
        name: 'istio.namespace.sidecar-injector.weft.dev',
        namespaceSelector: {
          matchExpressions: [
            { key: istioInjectionLabel, operator: 'In', values: ['enabled'] },
            // Weft's label, when present, decides alone.
            { key: weftLabel, operator: 'DoesNotExist' },
            excluded,
          ],
        },
        objectSelector: { matchExpressions: [notOptedOut] },
        reason: `namespace label ${istioInjectionLabel}=enabled`,
      });
    }
    hooks.push({
      name: 'object.sidecar-injector.weft.dev',
      namespaceSelector: { matchExpressions: [...noLegacy, { key: revisionLabel, operator: 'DoesNotExist' }, excluded] },
      objectSelector: {
        matchExpressions: [
          { key: sidecarInjectLabel, operator: 'In', values: ['true'] },
          { key: revisionLabel, operator: 'DoesNotExist' },
        ],
      },
      reason: `pod label ${sidecarInjectLabel}=true in a namespace without injection labels`,
    });
  }
  return hooks;
}

/**
 * The webhook that the API server would call for a pod with `podLabels` in `namespace`
 * (labelled `namespaceLabels`), or undefined when none selects it. The namespace's
 * `kubernetes.io/metadata.name` label is filled in as the API server does.
 */
export function selectingWebhook(
  webhooks: readonly InjectorWebhook[],
  namespace: string,
  namespaceLabels: Readonly<Record<string, string>>,
  podLabels: Readonly<Record<string, string>>,
): InjectorWebhook | undefined {
  const nsLabels = { ...namespaceLabels, [namespaceNameLabel]: namespace };
  return webhooks.find((hook) => selectorMatches(hook.namespaceSelector, nsLabels) && selectorMatches(hook.objectSelector, podLabels));
}

/** Why no webhook of these options selects the pod, in the user's terms (for audit annotations and `weft inject`). */
export function whyNotSelected(
  options: InjectorSelectorOptions,
  namespace: string,
  namespaceLabels: Readonly<Record<string, string>>,
  podLabels: Readonly<Record<string, string>>,
): string {
  const honor = options.honorIstioLabels !== false;
  const excluded = [...ignoredNamespaces, ...(options.excludedNamespaces ?? [])];
  if (excluded.includes(namespace)) return `namespace ${namespace} is never injected`;
  if (podLabels[sidecarInjectLabel] === 'false') return `pod opted out with ${sidecarInjectLabel}=false`;
  const legacy = [options.namespaceLabel, ...(honor ? [istioInjectionLabel] : [])].find((key) => Object.hasOwn(namespaceLabels, key));
  if (legacy !== undefined && namespaceLabels[legacy] !== 'enabled')
    return `namespace has injection disabled (${legacy}=${namespaceLabels[legacy] ?? ''})`;
  if (legacy !== undefined) return `namespace label ${legacy}=enabled is served by the default revision, not revision ${options.revision}`;
  const revisions = servedRevisions(options);
  const nsRevision = namespaceLabels[revisionLabel];
  if (nsRevision !== undefined) return `namespace selects revision ${nsRevision}, not ${revisions.join(',') || 'this one'}`;
  const podRevision = podLabels[revisionLabel];
  if (podRevision !== undefined) return `pod selects revision ${podRevision}, not ${revisions.join(',') || 'this one'}`;
  return `namespace is not labelled ${options.namespaceLabel}=enabled${revisions.length ? ` or ${revisionLabel}=${revisions[0]}` : ''} and the pod does not opt in with ${sidecarInjectLabel}=true`;
}

/** The injector config's policy part (Istio's `Config`: `policy`, `neverInjectSelector`, `alwaysInjectSelector`). */
export interface InjectionPolicy {
  /** Istio's `global.proxy.autoInject`: `enabled` injects pods that do not say; `disabled` only pods that ask. */
  policy?: 'enabled' | 'disabled';
  neverInjectSelector?: readonly LabelSelector[];
  alwaysInjectSelector?: readonly LabelSelector[];
  /** Namespaces never injected besides Istio's ignored ones (e.g. the control plane's). */
  ignoredNamespaces?: readonly string[];
}

export interface InjectionDecision {
  inject: boolean;
  /** Why, in a sentence fragment, e.g. `pod opted out with sidecar.istio.io/inject=false`. */
  reason: string;
}

/** What a pod (or a pod template) looks like to the policy. */
export interface PodShape {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: { hostNetwork?: boolean };
}

/**
 * istiod's own check once a webhook called it (pkg/kube/inject/inject.go injectRequired):
 * hostNetwork pods and ignored namespaces never; then the pod's `sidecar.istio.io/inject`
 * (the label wins over the annotation; values other than `true`/`false` count as unset);
 * unset, a matching `neverInjectSelector`, then `alwaysInjectSelector` (empty selectors never
 * match), then the policy (`enabled` by default) decide.
 */
export function injectRequired(pod: PodShape, namespace: string, policy: InjectionPolicy = {}): InjectionDecision {
  if (pod.spec?.hostNetwork) return { inject: false, reason: 'hostNetwork pods share the node network and are never injected' };
  if ([...ignoredNamespaces, ...(policy.ignoredNamespaces ?? [])].includes(namespace))
    return { inject: false, reason: `namespace ${namespace} is never injected` };
  const labels = pod.metadata?.labels ?? {};
  const fromLabel = Object.hasOwn(labels, sidecarInjectLabel);
  const choice = fromLabel ? labels[sidecarInjectLabel] : pod.metadata?.annotations?.[sidecarInjectLabel];
  const where = fromLabel ? 'label' : 'annotation';
  if (choice === 'false') return { inject: false, reason: `pod opted out with ${where} ${sidecarInjectLabel}=false` };
  if (choice === 'true') return { inject: true, reason: `pod opted in with ${where} ${sidecarInjectLabel}=true` };
  const never = (policy.neverInjectSelector ?? []).findIndex((s) => !isEmptySelector(s) && selectorMatches(s, labels));
  if (never >= 0) return { inject: false, reason: `pod labels match neverInjectSelector[${never}]` };
  const always = (policy.alwaysInjectSelector ?? []).findIndex((s) => !isEmptySelector(s) && selectorMatches(s, labels));
  if (always >= 0) return { inject: true, reason: `pod labels match alwaysInjectSelector[${always}]` };
  return (policy.policy ?? 'enabled') === 'enabled'
    ? { inject: true, reason: 'injection policy enabled' }
    : { inject: false, reason: `injection policy disabled and the pod does not set ${sidecarInjectLabel}=true` };
}

/**
 * IST0123 NamespaceMultipleInjectionLabels (pkg/config/analysis/analyzers/injection/injection.go):
 * the injection labels of a namespace as `key=value`, when more than one type is set. The legacy
 * label (`istio-injection`, and Weft's own) counts with any value; `istio.io/rev` only when no
 * legacy label is set or it is `enabled` (a disabled namespace's revision label is inert).
 * Returns [] when the labels are unambiguous.
 */
export function multipleInjectionLabels(namespaceLabels: Readonly<Record<string, string>>, weftLabel: string): string[] {
  const legacy = [...new Set([istioInjectionLabel, weftLabel])].filter((key) => Object.hasOwn(namespaceLabels, key));
  const found = legacy.map((key) => `${key}=${namespaceLabels[key]}`);
  const legacyEnabledOrAbsent = legacy.every((key) => namespaceLabels[key] === 'enabled');
  if (Object.hasOwn(namespaceLabels, revisionLabel) && legacyEnabledOrAbsent)
    found.push(`${revisionLabel}=${namespaceLabels[revisionLabel]}`);
  return found.length > 1 ? found : [];
}
