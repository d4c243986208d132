// Conditions as the Gateway API asks them set (metav1.Condition, with observedGeneration), after
// Istio's SetListenerConditions / UpdateConditionIfChanged: a wanted condition either holds (its
// True/False status, reason, message) or failed with an error (status inverted, the error's reason
// and message). lastTransitionTime moves only when the status changes, so an unchanged verdict
// writes nothing.
import type { Condition } from './gateway-api-types.js';

/** One condition as computed: `status` defaults to True; an `error` inverts it and supplies reason and message. */
export interface WantedCondition {
  reason: string;
  message: string;
  status?: 'True' | 'False';
  error?: { reason: string; message: string };
}

/**
 * The conditions to write: each wanted one (sorted by type, as Istio writes them) replaces the existing
 * condition of its type; conditions of other types are kept. `now` is an RFC 3339 time for transitions.
 */
export function setConditions(
  existing: ReadonlyArray<Condition> | undefined,
  wanted: Readonly<Record<string, WantedCondition>>,
  generation: number | undefined,
  now: string,
): Condition[] {
  const result = [...(existing ?? [])];
  for (const type of Object.keys(wanted).sort()) {
    const want = wanted[type] as WantedCondition;
    const status = want.error ? (want.status === 'False' ? 'True' : 'False') : (want.status ?? 'True');
    const next: Condition = {
      type,
      status,
      reason: want.error?.reason ?? want.reason,
      message: want.error?.message ?? want.message,
      ...(generation !== undefined ? { observedGeneration: generation } : {}),
      lastTransitionTime: now,
    };
    const index = result.findIndex((c) => c.type === type);
    const previous = index >= 0 ? result[index] : undefined;
    if (previous?.status === next.status && previous.lastTransitionTime) next.lastTransitionTime = previous.lastTransitionTime;
    if (index >= 0) result[index] = next;
    else result.push(next);
  }
  return result;
}
