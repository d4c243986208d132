// A process's readiness as a set of named requirements, each met or missing with a
// reason. /ready answers 200 only when every requirement is met, and otherwise 503
// with one line per missing requirement, so whoever reads it (`weft status`, curl on
// 15014, the log) learns what to fix rather than just "not ready".

/** One requirement not met: its name and what is missing, in words a user can act on. */
export interface MissingRequirement {
  requirement: string;
  problem: string;
}

export interface ReadinessReport {
  ready: boolean;
  /** In the order the requirements were declared; empty when ready. */
  missing: MissingRequirement[];
}

/**
 * The requirements a process must meet to report ready. Each is declared once, missing
 * (with the reason given) until `met`, and may go missing again (`miss`) when what it
 * checks stops holding. Listeners hear each change of the report (not each call).
 */
export class ReadinessGate {
  private readonly problems = new Map<string, string | undefined>();
  private readonly listeners: Array<(report: ReadinessReport) => void> = [];
  private lastReport = '';

  /** Declares the requirements, each missing with `problem` (e.g. "not yet checked"). Throws on a duplicate. */
  constructor(requirements: ReadonlyArray<{ requirement: string; problem: string }>) {
    for (const { requirement, problem } of requirements) {
      if (this.problems.has(requirement)) throw new Error(`readiness requirement ${requirement} is declared twice`);
      this.problems.set(requirement, problem);
    }
    this.lastReport = JSON.stringify(this.report());
  }

  met(requirement: string): void {
    this.set(requirement, undefined);
  }

  miss(requirement: string, problem: string): void {
    this.set(requirement, problem);
  }

  /** Met when `problem` is undefined, else missing with it. Throws for a requirement never declared (a bug). */
  set(requirement: string, problem: string | undefined): void {
    if (!this.problems.has(requirement)) throw new Error(`readiness requirement ${requirement} was never declared`);
    this.problems.set(requirement, problem);
    const report = this.report();
    const serialized = JSON.stringify(report);
    if (serialized === this.lastReport) return;
    this.lastReport = serialized;
    for (const listener of this.listeners) listener(report);
  }

  report(): ReadinessReport {
    const missing = [...this.problems]
      .filter((entry): entry is [string, string] => entry[1] !== undefined)
      .map(([requirement, problem]) => ({ requirement, problem }));
    return { ready: missing.length === 0, missing };
  }

  /** Called with the new report whenever some requirement changes between met and missing, or its reason changes. */
  onChange(listener: (report: ReadinessReport) => void): void {
    this.listeners.push(listener);
  }
}

/** The /ready body: `ready`, or `not ready` and one `<requirement>: <problem>` line per missing requirement. */
export function readinessBody(report: ReadinessReport): string {
  if (report.ready) return 'ready'; // as before the gate: scripts and probes compare the body
  return ['not ready', ...report.missing.map((m) => `${m.requirement}: ${m.problem}`)].join('\n') + '\n';
}
