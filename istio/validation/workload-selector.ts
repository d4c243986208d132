// Which workloads a policy applies to: `selector`/`workloadSelector` labels, or `targetRef(s)`.
import { entriesOf, isSet, items, type Issues } from './field-issues.js';

export function validateMatchLabels(issues: Issues, field: string, labels: Record<string, string> | undefined): void {
  const entries = entriesOf(labels);
  for (const [key, value] of entries) {
    if (key === '') issues.error(field, `empty key is not supported in selector: "=${value}"`);
    if (key.includes('*') || String(value).includes('*')) issues.error(field, `wildcard is not supported in selector: "${key}=${value}"`);
  }
}

/** A security policy's `selector` (matchLabels), `targetRef` and `targetRefs`: at most one of them. */
export function validatePolicyTarget(
  issues: Issues,
  spec: { selector?: { matchLabels?: Record<string, string> }; targetRef?: unknown; targetRefs?: unknown[] },
): void {
  const set = [isSet(spec.selector), isSet(spec.targetRef), items(spec.targetRefs).length > 0].filter(Boolean).length;
  if (set > 1) issues.error('spec', 'only one of selector, targetRef or targetRefs can be set');
  if (spec.selector && typeof spec.selector === 'object') {
    validateMatchLabels(issues, 'spec.selector.matchLabels', spec.selector.matchLabels);
    if (entriesOf(spec.selector.matchLabels).length === 0)
      issues.warn('spec.selector', 'selector has no labels: it selects every workload in the namespace');
  }
}
