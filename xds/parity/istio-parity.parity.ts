// Istio as the oracle: every case's calls go through Istio's own generator and
// simulator and through Weft's config, and must end the same way (same error, same
// clusters with the same shares, same direct response, same RBAC decision); every
// resource Weft generates passes Envoy's own validation rules. Deliberate
// differences are listed, with their reason, in known-differences.yaml.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ensureIstioOracle } from '../../testing/cluster/binaries.js';
import { runIstioOracle, type CaseOutcome, type Outcome } from '../../testing/parity/istio-oracle.js';
import { derivedParityCase, derivedSecurityCase, loadParityCases, weftRejected } from '../../testing/parity/parity-case.js';

const here = import.meta.dirname;
const yamlIn = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort();
const trafficCases = join(here, '..', 'traffic', 'testdata', 'cases');
const securityCases = join(here, '..', 'security', 'testdata', 'cases');
// WEFT_PARITY_ONLY=<text> runs only the cases whose name contains it (gateway-, say).
const only = process.env['WEFT_PARITY_ONLY'];
const cases = [
  ...yamlIn(join(here, 'cases')).flatMap((f) => loadParityCases(join(here, 'cases', f))),
  // The traffic suite's Istio examples, with calls derived from their objects.
  ...yamlIn(trafficCases).map((f) => derivedParityCase(join(trafficCases, f), `traffic/${f.replace(/\.yaml$/, '')}`)),
  // The security suite's policies, on the workload they select, with calls derived from their rules.
  ...yamlIn(securityCases).map((f) => derivedSecurityCase(join(securityCases, f), `security/${f.replace(/\.yaml$/, '')}`)),
].filter((c) => !only || c.name.includes(only));
const known = parse(readFileSync(join(here, 'known-differences.yaml'), 'utf8')) as Array<{ case: string; call: string; reason: string }>;

/**
 * What a user sees of a call: whether it fails, where it goes, what answers it, what reaches the
 * upstream (headers added and removed, rewrites), how it is retried and timed out, what it logs and
 * traces, whether RBAC lets it through; through a gateway also the listener it lands on (the
 * gateway's port) and how that terminates TLS.
 */
const seen = (o: Outcome, router = false) => ({
  ...(router ? { listener: o.listener ?? null } : {}),
  error: o.error ?? null,
  clusters: o.clusters ?? null,
  endpoints: o.endpoints ?? null,
  upstreamTls: o.upstreamTls ?? null,
  downstreamTls: o.downstreamTls ?? null,
  secrets: o.secrets ?? null,
  connection: o.connection ?? null,
  response: o.response ?? null,
  requestEdits: o.requestEdits ?? null,
  retry: o.retry ?? null,
  timeout: o.timeout ?? null,
  accessLog: o.accessLog || null,
  tracing: o.tracing || null,
  authz: o.error ? null : (o.authz ?? null),
});

let outcomes: Map<string, CaseOutcome>;

beforeAll(async () => {
  const binary = await ensureIstioOracle(undefined, { allowBuild: false });
  outcomes = await runIstioOracle(binary, cases);
}, 600_000);

describe.each(cases.map((c) => [c.name, c] as const))('%s', (name, parityCase) => {
  it("every resource passes Envoy's validation rules", () => {
    const outcome = outcomes.get(name);
    expect(outcome?.error).toBeUndefined();
    expect(outcome?.invalid).toEqual([]);
  });

  it('Weft refuses exactly the objects Istio refuses', () => {
    expect(weftRejected(parityCase)).toEqual([...(outcomes.get(name)?.rejected ?? [])].sort());
  });

  it.each(parityCase.calls.map((call) => [call.name] as const))('%s: Weft ends where Istio does', (callName) => {
    const call = outcomes.get(name)?.calls.find((c) => c.name === callName);
    expect(call).toBeDefined();
    const { istio, weft } = call as { istio: Outcome; weft: Outcome };
    const difference = known.find((k) => k.case === name && k.call === callName);
    const router = parityCase.proxy.kind === 'router';
    const detail = `\nIstio: ${JSON.stringify(istio)}\nWeft:  ${JSON.stringify(weft)}`;
    if (difference) {
      // A listed difference that disappeared must leave the list.
      expect({ listed: difference.reason, differs: JSON.stringify(seen(weft, router)) !== JSON.stringify(seen(istio, router)) }).toEqual({
        listed: difference.reason,
        differs: true,
      });
    } else {
      try {
        expect(seen(weft, router)).toEqual(seen(istio, router));
      } catch (error) {
        // The whole of both outcomes (listener, chain, route, policy) says where they part.
        (error as Error).message += `\n${detail}`;
        throw error;
      }
    }
  });
});
