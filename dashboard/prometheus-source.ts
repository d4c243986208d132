// weftd's Prometheus client for the dashboard: every interval, one instant query of
// Istio's request rates (prometheus-edges.ts's `requestRateQuery`) to the Prometheus
// HTTP API the MeshInstallation names (`spec.dashboard.prometheus.url`), as Kiali
// reads its graph. Thin I/O: the translation is edgesFromPrometheus. A failing
// Prometheus is retried with backoff and logged once per outage, never per query;
// the dashboard then shows load-reported edges only.
import type { Logger } from '../lib/logger.js';
import { edgesFromPrometheus, requestRateQuery, type PrometheusEdge } from './prometheus-edges.js';

export interface PrometheusSourceOptions {
  /** Between queries while Prometheus answers, in ms (15 s: Prometheus's default scrape interval). */
  intervalMs?: number;
  /** Per query, in ms. */
  timeoutMs?: number;
  /** The longest wait between queries while Prometheus fails, in ms; the wait doubles from intervalMs up to it. */
  maxBackoffMs?: number;
  /** How long the last good answer is shown while Prometheus fails, in ms (the query's rate window). */
  staleMs?: number;
  /** The rate window of the query, a PromQL duration. */
  window?: string;
  /** An answer larger than this is refused, in bytes. */
  maxBytes?: number;
  now?: () => number;
}

/** What `/debug/prometheusz` shows: where weftd asks, and how the last query went. Times in ms since the epoch. */
export interface PrometheusSourceStatus {
  url: string;
  query: string;
  edges: number;
  lastSuccessAt?: number;
  lastError?: string;
  /** Since when queries fail, while they do. */
  failingSince?: number;
}

/**
 * The query endpoint of a Prometheus base URL (`<url>/api/v1/query`; a path prefix such as `/prometheus` is kept).
 * @throws Error naming `field` when the URL is not absolute http(s).
 */
export function prometheusQueryUrl(base: string, field = 'spec.dashboard.prometheus.url'): URL {
  if (!URL.canParse(base))
    throw new Error(`${field}: ${JSON.stringify(base)} is not a URL (want e.g. http://prometheus.istio-system:9090)`);
  const url = new URL(base);
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new Error(`${field}: ${JSON.stringify(base)} is not an http or https URL`);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/api/v1/query`;
  url.search = '';
  url.hash = '';
  return url;
}

export class PrometheusSource {
  private readonly queryUrl: URL;
  private readonly query: string;
  private readonly intervalMs: number;
  private readonly timeoutMs: number;
  private readonly maxBackoffMs: number;
  private readonly staleMs: number;
  private readonly maxBytes: number;
  private readonly now: () => number;
  private last: { edges: PrometheusEdge[]; at: number } | undefined;
  private lastError: string | undefined;
  private failures = 0;
  private failingSince: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private abort: AbortController | undefined;
  private stopped = true;
  /** Queries answered and failed since the start, for tests and /debug/prometheusz. */
  queries = { answered: 0, failed: 0 };

  constructor(
    url: string,
    private readonly log: Logger,
    options: PrometheusSourceOptions = {},
  ) {
    this.queryUrl = prometheusQueryUrl(url);
    this.query = requestRateQuery(options.window ?? '1m');
    this.intervalMs = options.intervalMs ?? 15_000;
    this.timeoutMs = options.timeoutMs ?? 5_000;
    this.maxBackoffMs = options.maxBackoffMs ?? 120_000;
    this.staleMs = options.staleMs ?? 60_000;
    this.maxBytes = options.maxBytes ?? 16 * 1024 * 1024;
    this.now = options.now ?? Date.now;
  }

  /** Starts querying now, then every interval (or backoff). */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    void this.poll();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.abort?.abort();
    this.timer = this.abort = undefined;
  }

  /** The edges of the last good answer, or none once it is older than staleMs (Prometheus has not answered since). */
  edges(): PrometheusEdge[] {
    if (!this.last || this.now() - this.last.at > this.staleMs) return [];
    return this.last.edges;
  }

  status(): PrometheusSourceStatus {
    return {
      url: this.queryUrl.toString(),
      query: this.query,
      edges: this.edges().length,
      ...(this.last ? { lastSuccessAt: this.last.at } : {}),
      ...(this.lastError ? { lastError: this.lastError } : {}),
      ...(this.failingSince !== undefined ? { failingSince: this.failingSince } : {}),
    };
  }

  /** One query, then the next one scheduled: intervalMs after an answer, a doubling backoff after a failure. */
  private async poll(): Promise<void> {
    this.timer = undefined;
    const abort = new AbortController();
    this.abort = abort;
    try {
      const edges = edgesFromPrometheus(await this.ask(abort.signal));
      if (this.stopped) return;
      this.queries.answered++;
      this.last = { edges, at: this.now() };
      if (this.failingSince !== undefined)
        this.log.info(
          { url: this.queryUrl.toString(), failedQueries: this.failures, outageMs: this.now() - this.failingSince },
          'Prometheus answers again',
        );
      this.failures = 0;
      this.failingSince = this.lastError = undefined;
    } catch (error) {
      if (this.stopped) return;
      this.queries.failed++;
      this.failures++;
      this.lastError = describe(error);
      if (this.failingSince === undefined) {
        this.failingSince = this.now();
        // Once per outage: a Prometheus down for an hour is one line, and its recovery another.
        this.log.warn(
          { url: this.queryUrl.toString(), error: this.lastError },
          "could not query Prometheus for Istio's request metrics: the dashboard shows load-reported traffic only until it answers " +
            '(check spec.dashboard.prometheus.url and that Prometheus scrapes the sidecars)',
        );
      } else this.log.debug({ url: this.queryUrl.toString(), error: this.lastError, failures: this.failures }, 'Prometheus still failing');
    } finally {
      if (this.abort === abort) this.abort = undefined;
    }
    if (this.stopped) return;
    const delay =
      this.failures === 0 ? this.intervalMs : Math.min(this.maxBackoffMs, this.intervalMs * 2 ** Math.min(this.failures - 1, 16));
    this.timer = setTimeout(() => void this.poll(), delay);
    this.timer.unref();
  }

  /** POSTs the query (form-encoded, as Prometheus's API takes it) and returns the parsed JSON; Prometheus's own error body is kept. */
  private async ask(signal: AbortSignal): Promise<unknown> {
    const response = await fetch(this.queryUrl, {
      method: 'POST',
      signal: AbortSignal.any([signal, AbortSignal.timeout(this.timeoutMs)]),
      headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ query: this.query }).toString(),
    }).catch((error: unknown) => {
      if (isError(error) && error.name === 'TimeoutError') throw new Error(`no answer within ${this.timeoutMs} ms`);
      throw error;
    });
    if (Number(response.headers.get('content-length') ?? 0) > this.maxBytes) {
      await response.body?.cancel();
      throw new Error(`the answer is larger than ${this.maxBytes} bytes`);
    }
    const text = await response.text();
    if (text.length > this.maxBytes) throw new Error(`the answer is larger than ${this.maxBytes} bytes`);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new Error(`HTTP ${response.status}, not a JSON answer: ${text.slice(0, 200)}`);
    }
    // Prometheus answers 400, 422 and 503 with its JSON error envelope: edgesFromPrometheus names the error.
    if (!response.ok && !(typeof body === 'object' && body !== null && 'error' in body)) throw new Error(`HTTP ${response.status}`);
    return body;
  }
}

function isError(value: unknown): value is Error {
  return typeof value === 'object' && value !== null && typeof (value as { message?: unknown }).message === 'string';
}

/** fetch's errors carry the reason (ECONNREFUSED, a DNS failure) in `cause`. */
function describe(error: unknown): string {
  if (!isError(error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  return isError(cause) ? `${error.message}: ${cause.message}` : error.message;
}
