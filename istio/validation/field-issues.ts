// What validation reports: problems that refuse an object, and warnings that let it in,
// each naming the field it is about (`spec.http[0].route`), as the apiserver's own messages do.

export interface FieldIssue {
  field: string;
  message: string;
  /** Set on warnings (admitted, returned as AdmissionReview warnings); absent on errors. */
  warning?: true;
}

export class Issues {
  readonly list: FieldIssue[] = [];

  error(field: string, message: string): void {
    this.list.push({ field, message });
  }

  warn(field: string, message: string): void {
    this.list.push({ field, message, warning: true });
  }
}

export const errorsOf = (issues: FieldIssue[]): FieldIssue[] => issues.filter((issue) => !issue.warning);
export const warningsOf = (issues: FieldIssue[]): FieldIssue[] => issues.filter((issue) => issue.warning);
export const describeIssue = (issue: FieldIssue): string => `${issue.field}: ${issue.message}`;

/** The elements of a list field; anything that is not an array (absent, or malformed) has none. */
export function items<T>(value: T[] | null | undefined): T[] {
  return Array.isArray(value) ? value : [];
}

/** The entries of a map field; anything that is not a plain object has none. */
export function entriesOf<T>(value: Record<string, T> | null | undefined): Array<[string, T]> {
  return value && typeof value === 'object' && !Array.isArray(value) ? Object.entries(value) : [];
}

export const isSet = (value: unknown): boolean => value !== undefined && value !== null;
