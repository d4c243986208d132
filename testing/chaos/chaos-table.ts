// The one table `make chaos` prints: each row a figure, the rule it must meet, and
// whether it held. The integration test asserts the same rows on a shorter run.
import type { AdmissionFigures } from './admission-chaos.js';
import type { IdentityFigures } from './identity-chaos.js';

export interface ChaosRow {
  area: 'identity' | 'admission';
  figure: string;
  value: string;
  rule: string;
  held: boolean;
  /** Examples of what broke the rule, for the report under the table. */
  evidence?: string[];
}

export interface ChaosBudgets {
  /** Requests each part must send (10,000 in `make chaos`). */
  minimumRequests: number;
  /** p99 a legitimate certificate request may take during the flood, retries included. */
  legitimateP99Ms: number;
  /** p99 of an admission review (the API server waits up to the webhook's timeoutSeconds, 10 s). */
  admissionP99Ms: number;
}

const count = (n: number) => n.toLocaleString('en-US');

export function identityRows(f: IdentityFigures, budgets: ChaosBudgets): ChaosRow[] {
  const rows: ChaosRow[] = [
    {
      area: 'identity',
      figure: 'certificate requests sent (adversarial + flood + legitimate)',
      value: `${count(f.requests)} (${count(f.adversarial)} + ${count(f.flood.sent)} + ${count(f.legitimate.sent)})`,
      rule: `>= ${count(budgets.minimumRequests)}`,
      held: f.requests >= budgets.minimumRequests,
    },
    {
      area: 'identity',
      figure: 'certificates issued for a wrong identity',
      value: count(f.wrongIdentity.length),
      rule: '0',
      held: f.wrongIdentity.length === 0,
      evidence: f.wrongIdentity,
    },
  ];
  const issuedOnBadToken = [...f.categories].filter(([c, e]) => c.startsWith('token ') && e.issued > 0);
  rows.push({
    area: 'identity',
    figure: 'adversarial token categories that got a certificate',
    value: `${issuedOnBadToken.length} of ${[...f.categories.keys()].filter((c) => c.startsWith('token ')).length}`,
    rule: '0',
    held: issuedOnBadToken.length === 0,
    evidence: issuedOnBadToken.map(([c, e]) => `${c}: ${e.issued} of ${e.sent} issued`),
  });
  const counted = [...f.refusedByReason.values()].reduce((a, b) => a + b, 0);
  rows.push({
    area: 'identity',
    figure: 'refusals seen by callers / counted in weft_ca_csr_refused_total{reason}',
    value: `${count(f.refusalsSeen)} / ${count(counted)}`,
    rule: 'equal, every reason named',
    held: f.refusalsSeen === counted && !f.refusedByReason.has(''),
  });
  for (const [reason, value] of [...f.refusedByReason].sort(([a], [b]) => a.localeCompare(b))) {
    rows.push({
      area: 'identity',
      figure: `  refused, reason="${reason}"`,
      value: count(value),
      rule: reason === 'internal' ? '0 (a CA failure, not a refusal)' : 'counted',
      held: reason !== 'internal' && reason !== '',
    });
  }
  rows.push(
    {
      area: 'identity',
      figure: 'errors not from the CA (transport, deadline)',
      value: count(f.transportErrors.length),
      rule: '0',
      held: f.transportErrors.length === 0,
      evidence: f.transportErrors,
    },
    {
      area: 'identity',
      figure: `flood from one caller: issued / shed (RESOURCE_EXHAUSTED) / other`,
      value: `${count(f.flood.issued)} / ${count(f.flood.shed)} / ${count(f.flood.other)}`,
      rule: 'other 0',
      held: f.flood.other === 0,
    },
    {
      area: 'identity',
      figure: 'legitimate requests served during the flood (retries on RESOURCE_EXHAUSTED)',
      value: `${count(f.legitimate.served)} of ${count(f.legitimate.sent)} (${count(f.legitimate.retries)} retries)`,
      rule: 'all, at least 10',
      held: f.legitimate.served === f.legitimate.sent && f.legitimate.sent >= 10,
      evidence: f.legitimate.failures,
    },
    {
      area: 'identity',
      figure: 'legitimate request latency without a flood, p50 / p99',
      value: `${f.legitimate.baselineP50Ms.toFixed(0)} / ${f.legitimate.baselineP99Ms.toFixed(0)} ms`,
      rule: 'reported',
      held: true,
    },
    {
      area: 'identity',
      figure: 'legitimate request latency during the flood, p50 / p99',
      value: `${f.legitimate.p50Ms.toFixed(0)} / ${f.legitimate.p99Ms.toFixed(0)} ms`,
      rule: `p99 <= ${count(budgets.legitimateP99Ms)} ms`,
      held: f.legitimate.p99Ms <= budgets.legitimateP99Ms,
    },
    {
      area: 'identity',
      figure: 'weftd up, no error in its log',
      value: `${f.weftdUp ? 'up' : 'DOWN'}, ${count(f.logProblems.length)} errors`,
      rule: 'up, 0',
      held: f.weftdUp && f.logProblems.length === 0,
      evidence: f.logProblems,
    },
  );
  return rows;
}

export function admissionRows(f: AdmissionFigures, budgets: ChaosBudgets): ChaosRow[] {
  return [
    {
      area: 'admission',
      figure: `fuzzed AdmissionReviews answered (from ${f.seeds} real objects)`,
      value: `${count(f.sent)} (${count(f.allowed)} allowed, ${count(f.patched)} patched, ${count(f.refused)} refused)`,
      rule: `>= ${count(budgets.minimumRequests)}`,
      held: f.sent >= budgets.minimumRequests,
    },
    {
      area: 'admission',
      figure: 'fields of the real objects given a wrong JSON type',
      value: `${count(f.wrongTypeFields)} of ${count(f.fields)}`,
      rule: 'reported',
      held: true,
    },
    { area: 'admission', figure: 'weftd crashes', value: f.crashed ? '1' : '0', rule: '0', held: !f.crashed },
    {
      area: 'admission',
      figure: 'unhandled exceptions (HTTP 5xx, webhook failures, errors in the log)',
      value: count(f.unhandled.length),
      rule: '0',
      held: f.unhandled.length === 0,
      evidence: f.unhandled,
    },
    {
      area: 'admission',
      figure: 'requests without an answer',
      value: count(f.noAnswer.length),
      rule: '0',
      held: f.noAnswer.length === 0,
      evidence: f.noAnswer,
    },
    {
      area: 'admission',
      figure: 'answers that are not a valid AdmissionReview',
      value: count(f.invalidReviews.length),
      rule: '0',
      held: f.invalidReviews.length === 0,
      evidence: f.invalidReviews,
    },
    {
      area: 'admission',
      figure: 'refusals that do not name a field',
      value: count(f.refusalsWithoutField.length),
      rule: '0',
      held: f.refusalsWithoutField.length === 0,
      evidence: f.refusalsWithoutField,
    },
    {
      area: 'admission',
      figure: 'review latency p50 / p99 / max',
      value: `${f.p50Ms.toFixed(1)} / ${f.p99Ms.toFixed(1)} / ${f.maxMs.toFixed(0)} ms`,
      rule: `p99 <= ${count(budgets.admissionP99Ms)} ms`,
      held: f.p99Ms <= budgets.admissionP99Ms,
    },
  ];
}

/** The table, then up to five examples under each row that did not hold. */
export function formatTable(rows: ChaosRow[]): string {
  const widths = {
    area: Math.max(4, ...rows.map((r) => r.area.length)),
    figure: Math.max(6, ...rows.map((r) => r.figure.length)),
    value: Math.max(5, ...rows.map((r) => r.value.length)),
    rule: Math.max(4, ...rows.map((r) => r.rule.length)),
  };
  const line = (area: string, figure: string, value: string, rule: string, held: string) =>
    `${area.padEnd(widths.area)}  ${figure.padEnd(widths.figure)}  ${value.padStart(widths.value)}  ${rule.padEnd(widths.rule)}  ${held}`;
  const out = [line('AREA', 'FIGURE', 'VALUE', 'RULE', 'HELD')];
  for (const row of rows) out.push(line(row.area, row.figure, row.value, row.rule, row.held ? 'yes' : 'NO'));
  for (const row of rows.filter((r) => !r.held && r.evidence?.length)) {
    out.push('', `${row.area}: ${row.figure}, for example:`, ...(row.evidence ?? []).slice(0, 5).map((e) => `  ${e}`));
  }
  return out.join('\n');
}
