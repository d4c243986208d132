// Runs testing/istio-oracle: Istio's generator and simulator beside Weft's config.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { oracleCase, type ParityCase } from './parity-case.js';

/** Where a call ends up under one config (testing/istio-oracle/types.go, Outcome). */
export interface Outcome {
  error?: string;
  listener?: string;
  filterChain?: string;
  routeConfig?: string;
  virtualHost?: string;
  route?: string;
  /** Upstream cluster → share of calls. */
  clusters?: Record<string, number>;
  /** Per chosen cluster, its endpoints as ip:port (sorted), or its type when it has none. */
  endpoints?: Record<string, string[]>;
  /** Per chosen cluster, how it speaks to its endpoints: plaintext, TLS (SNI, certificate) or auto mTLS's matches. */
  upstreamTls?: Record<string, string>;
  /** A direct response or redirect instead of a cluster ("direct 404", "redirect 301 https"). */
  response?: string;
  /** A router's calls: how the filter chain taken terminates TLS (mode, SDS secret names, ALPN), absent for plaintext and passthrough. */
  downstreamTls?: string;
  /** A router's HTTP calls: what the connection manager does at the edge (client address, path normalisation, XFCC, request ids, Server header). */
  connection?: string;
  /** A router's calls: per SDS name the chain taken uses, what SDS serves under it ("key pair CN=...", "CA CN=...", "not served"). */
  secrets?: Record<string, string>;
  /** What the route taken does to the request on its way upstream: headers added and removed, path and host rewrites. */
  requestEdits?: string;
  /** The route's retry policy and timeout, summarised. */
  retry?: string;
  timeout?: string;
  /** The connection manager's access loggers and tracer, summarised. */
  accessLog?: string;
  tracing?: string;
  authz?: 'allow' | 'deny';
  authzPolicy?: string;
}

export interface CaseOutcome {
  name: string;
  /** Envoy's validation rules (and deprecated fields) Weft's resources break. */
  invalid: string[];
  /** The Istio objects Istio's validation refuses, as Kind/namespace/name. */
  rejected: string[];
  calls: Array<{ name: string; istio: Outcome; weft: Outcome }>;
  error?: string;
}

/**
 * Runs every case through the oracle in one process (Istio's setup costs about a
 * second per case). Throws with the oracle's output when it cannot run at all.
 */
export async function runIstioOracle(binary: string, cases: ParityCase[]): Promise<Map<string, CaseOutcome>> {
  const dir = mkdtempSync(join(tmpdir(), 'weft-oracle-'));
  try {
    const input = join(dir, 'input.json');
    const output = join(dir, 'output.json');
    writeFileSync(input, JSON.stringify({ cases: cases.map(oracleCase) }));
    // To rerun the oracle by hand: WEFT_ORACLE_INPUT=<this copy> WEFT_ORACLE_OUTPUT=out.json istio-oracle -test.v
    if (process.env['WEFT_PARITY_KEEP_INPUT']) writeFileSync(process.env['WEFT_PARITY_KEEP_INPUT'], readFileSync(input));
    const log: string[] = [];
    const code = await new Promise<number>((resolve, reject) => {
      const child = spawn(binary, ['-test.run', '^TestOracle$', '-test.count', '1'], {
        env: { ...process.env, WEFT_ORACLE_INPUT: input, WEFT_ORACLE_OUTPUT: output },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const keep = (chunk: Buffer) => {
        log.push(chunk.toString());
        if (log.length > 400) log.shift();
      };
      child.stdout.on('data', keep);
      child.stderr.on('data', keep);
      child.on('error', reject);
      child.on('exit', (status) => resolve(status ?? 1));
    });
    let parsed: { cases: CaseOutcome[] };
    try {
      parsed = JSON.parse(readFileSync(output, 'utf8')) as { cases: CaseOutcome[] };
    } catch {
      throw new Error(`istio-oracle exited ${code} without output:\n${log.join('').slice(-8000)}`);
    }
    const failed = parsed.cases.filter((c) => c.error);
    for (const c of failed) c.error = `${c.error}\n${log.join('').slice(-4000)}`;
    return new Map(parsed.cases.map((c) => [c.name, c]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
