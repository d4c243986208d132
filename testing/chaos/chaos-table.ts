// The one table `make chaos` prints: each row a figure, the rule it must meet, and
// whether it held. The integration test asserts the same rows on a shorter run.
import type { AdmissionFigures } from './admission-chaos.js';
import type { IdentityFigures } from './identity-chaos.js';
import type { XdsFigures } from './xds-chaos.js';
import { percentile } from './chaos-target.js';

export interface ChaosRow {
  area: 'identity' | 'admission' | 'xds' | 'crash' | 'readiness' | 'rotation';
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

export interface XdsBudgets {
  /** p99 from a Service's creation to every well-behaved proxy holding its cluster, during the abuse. */
  pushP99Ms: number;
  /** weftd's peak resident set during the abuse may exceed its resident set before by at most this, plus the next per proxy connecting at once. */
  peakRssGrowthMiB: number;
  peakRssPerProxyMiB: number;
  /** Time for all proxies to get CDS and LDS when they connect (or reconnect) at once. */
  fleetSyncMs: number;
  /** Time to answer a request naming 100,000 resources, and a change of one of them. */
  manyNamesMs: number;
  /** weftd's log lines about one NACKing stream's type: one per this many seconds (see xds/server/ads-server.ts). */
  nackLogIntervalSeconds: number;
}

/** The xDS rules, the same for `make chaos` and its short version in `make test` (docs/chaos.md says why each). */
export const xdsBudgets: XdsBudgets = {
  pushP99Ms: 5_000,
  peakRssGrowthMiB: 128,
  peakRssPerProxyMiB: 1,
  fleetSyncMs: 60_000,
  manyNamesMs: 15_000,
  nackLogIntervalSeconds: 10,
};

const ms = (value: number | undefined) => (value === undefined ? 'none' : `${count(Math.round(value))} ms`);

export function xdsRows(f: XdsFigures, budgets: XdsBudgets): ChaosRow[] {
  const wrongCases = f.cases.filter((c) => c.wrong);
  const refusals = f.cases.filter((c) => c.end).length;
  const lines = f.nackStorm.streams * (Math.ceil(f.nackStorm.seconds / budgets.nackLogIntervalSeconds) + 1);
  const growth = budgets.peakRssGrowthMiB + budgets.peakRssPerProxyMiB * f.reconnect.proxies;
  const rssRule = f.rssMiB.before + growth;
  const latency = (samples: number[]) => `${ms(percentile(samples, 50))} / ${ms(percentile(samples, 99))}`;
  return [
    {
      area: 'xds',
      figure: `malformed DiscoveryRequests and DeltaDiscoveryRequests on 15012 and 15010 (${refusals} refused), as expected`,
      value: `${f.cases.length - wrongCases.length} of ${f.cases.length}`,
      rule: 'all; refusals name the field',
      held: wrongCases.length === 0,
      evidence: wrongCases.map((c) => `${c.port} ${c.name}: ${c.wrong}`),
    },
    {
      area: 'xds',
      figure: 'randomly mutated first requests: served / refused naming a field / other',
      value: `${count(f.fuzz.answered)} / ${count(f.fuzz.refused)} / ${count(f.fuzz.wrong.length)}`,
      rule: 'other 0',
      held: f.fuzz.wrong.length === 0,
      evidence: f.fuzz.wrong,
    },
    {
      area: 'xds',
      figure: 'stale or forged nonces answered; current nonce served after; reconnect with old nonce answered',
      value: `${f.nonces.staleOrForgedAnswered}; ${f.nonces.servedAfter ? 'yes' : 'no'}; ${f.nonces.reconnectAnswered ? 'yes' : 'no'}`,
      rule: '0; yes; yes',
      held: f.nonces.wrong.length === 0,
      evidence: f.nonces.wrong,
    },
    {
      area: 'xds',
      figure: `NACK storm (${f.nackStorm.streams} streams, ${f.nackStorm.seconds} s): NACKs sent / responses NACKed`,
      value: `${count(f.nackStorm.nacks)} / ${count(f.nackStorm.responses)}`,
      rule: 'reported',
      held: true,
    },
    {
      area: 'xds',
      figure: 'NACK storm: weftd log lines about NACKs / longest log line',
      value: `${count(f.nackStorm.warnLines)} / ${count(f.nackStorm.longestLogLine)} chars`,
      rule: `<= ${count(lines)} / <= 8,192`,
      held: f.nackStorm.warnLines <= lines && f.nackStorm.longestLogLine <= 8_192,
    },
    {
      area: 'xds',
      figure: `a request naming ${count(f.manyNames.names)} resources: answered / a change of one name answered`,
      value: `${ms(f.manyNames.firstMs)} / ${ms(f.manyNames.ackMs)}`,
      rule: `each <= ${count(budgets.manyNamesMs)} ms`,
      held:
        f.manyNames.error === undefined &&
        f.manyNames.firstMs !== undefined &&
        f.manyNames.ackMs !== undefined &&
        f.manyNames.firstMs <= budgets.manyNamesMs &&
        f.manyNames.ackMs <= budgets.manyNamesMs,
      evidence: f.manyNames.error ? [f.manyNames.error] : [],
    },
    {
      area: 'xds',
      figure: `streams that never read (CDS, LDS, EDS; ${count(f.slowConsumers.delta)} of them Delta) / config changes pushed meanwhile`,
      value: `${count(f.slowConsumers.streams)} / ${count(f.slowConsumers.pushesWhileStalled)}`,
      rule: 'reported (memory below)',
      held: true,
    },
    {
      area: 'xds',
      figure: `responses weftd made for each of them whose HTTP/2 window is 0 (${f.slowConsumers.zeroWindow}, SotW and Delta), most`,
      value: count(Math.max(0, ...f.slowConsumers.responsesToZeroWindow.map((s) => s.responses))),
      rule: '1 (later pushes wait, merged)',
      held: f.slowConsumers.zeroWindow > 0 && f.slowConsumers.responsesToZeroWindow.every((s) => s.responses === 1),
      evidence: f.slowConsumers.responsesToZeroWindow
        .filter((s) => s.responses !== 1)
        .map((s) => (s.responses < 0 ? `${s.node}: not in /debug/syncz` : `${s.node}: ${s.responses} responses`)),
    },
    {
      area: 'xds',
      figure: 'nodes claiming another namespace or ServiceAccount than their token: refused before any config (15012); own: served',
      value: `${f.identity.filter((c) => !c.wrong).length} of ${f.identity.length}`,
      rule: 'all; PERMISSION_DENIED naming the claim',
      held: f.identity.length > 0 && f.identity.every((c) => !c.wrong),
      evidence: f.identity.filter((c) => c.wrong).map((c) => `${c.port} ${c.name}: ${c.wrong}`),
    },
    {
      area: 'xds',
      figure:
        'cases answered as newcomers of the storm (served, or refused for their claims after the token review on 15012): longest wait',
      value: ms(Math.max(0, ...[...f.cases, ...f.identity].flatMap((c) => (c.newcomerMs === undefined ? [] : [c.newcomerMs])))),
      rule: `reported (each <= ${count(budgets.fleetSyncMs)} ms, as a proxy of the storm)`,
      held: true,
      evidence: [],
    },
    {
      area: 'xds',
      figure: `${count(f.reconnect.proxies)} proxies (${count(f.reconnect.tokens)} tokens on 15012) connecting at once / all reconnecting at once, until all have CDS and LDS`,
      value: `${ms(f.reconnect.connectMs)} / ${ms(f.reconnect.reconnectMs)}`,
      rule: `all, each <= ${count(budgets.fleetSyncMs)} ms`,
      held:
        f.reconnect.notSynced.length === 0 &&
        (f.reconnect.connectMs ?? Infinity) <= budgets.fleetSyncMs &&
        (f.reconnect.reconnectMs ?? Infinity) <= budgets.fleetSyncMs,
      evidence: f.reconnect.notSynced,
    },
    {
      area: 'xds',
      figure: `streams cancelled while their token is checked (${f.phantoms.cancelled}) left in /debug/syncz`,
      value: count(f.phantoms.left),
      rule: '0',
      held: f.phantoms.left === 0,
    },
    {
      area: 'xds',
      figure: 'weftd RSS before / peak during the abuse / after (5 s later)',
      value: `${f.rssMiB.before.toFixed(0)} / ${f.rssMiB.peak.toFixed(0)} / ${f.rssMiB.after.toFixed(0)} MiB`,
      rule: `peak <= ${rssRule.toFixed(0)} MiB (before + ${budgets.peakRssGrowthMiB} + ${budgets.peakRssPerProxyMiB} per proxy)`,
      held: f.rssMiB.peak <= rssRule,
    },
    {
      area: 'xds',
      figure: `push latency to ${f.wellBehaved.proxies} well-behaved proxies without abuse, p50 / p99 (${f.wellBehaved.baseline.length} pushes)`,
      value: latency(f.wellBehaved.baseline),
      rule: 'reported',
      held: true,
    },
    {
      area: 'xds',
      figure: `push latency to them during the abuse, p50 / p99 (${f.wellBehaved.during.length} pushes)`,
      value: latency(f.wellBehaved.during),
      rule: `p99 <= ${count(budgets.pushP99Ms)} ms`,
      held: f.wellBehaved.during.length > 0 && percentile(f.wellBehaved.during, 99) <= budgets.pushP99Ms,
    },
    {
      area: 'xds',
      figure: 'event loop delay during the abuse, weftd / the chaos clients, p99 / max',
      value: [f.eventLoopDelayMs.weftd, f.eventLoopDelayMs.chaos].map((d) => (d ? `${ms(d.p99)} / ${ms(d.max)}` : 'unknown')).join('; '),
      rule: 'reported',
      held: true,
    },
    {
      area: 'xds',
      figure: 'well-behaved proxies that lost their stream or config, or missed a push',
      value: count(f.wellBehaved.lostConfig.length + f.wellBehaved.missed.length),
      rule: '0',
      held: f.wellBehaved.lostConfig.length + f.wellBehaved.missed.length === 0,
      evidence: [...f.wellBehaved.lostConfig, ...f.wellBehaved.missed],
    },
    {
      area: 'xds',
      figure: 'weftd up, no error in its log',
      value: `${f.weftdUp ? 'up' : 'DOWN'}, ${count(f.logProblems.length)} errors`,
      rule: 'up, 0',
      held: f.weftdUp && f.logProblems.length === 0,
      evidence: f.logProblems.map((line) => line.slice(0, 300)),
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
