// StringMatch (`exact`, `prefix` or `regex`), used by VirtualService matches and CORS origins.
import type { Issues } from './field-issues.js';
import { re2Problem } from './regex.js';

export interface StringMatch {
  exact?: string;
  prefix?: string;
  regex?: string;
}

/** Checks one StringMatch. `emptyPrefix` allows `prefix: ""` (only the URI allows it, as in Envoy). */
export function validateStringMatch(issues: Issues, field: string, match: StringMatch | null | undefined, emptyPrefix = false): void {
  if (!match || typeof match !== 'object') return;
  const kinds = (['exact', 'prefix', 'regex'] as const).filter((kind) => match[kind] !== undefined && match[kind] !== null);
  if (kinds.length > 1) {
    issues.error(field, `only one of exact, prefix or regex may be set, found ${kinds.join(' and ')}`);
    return;
  }
  if (match.prefix === '' && !emptyPrefix) issues.error(`${field}.prefix`, 'prefix string match should not be empty');
  if (match.regex !== undefined && match.regex !== null) {
    if (match.regex === '') issues.error(`${field}.regex`, 'regex string match should not be empty');
    else {
      const problem = re2Problem(match.regex);
      if (problem) issues.error(`${field}.regex`, problem);
    }
  }
}
