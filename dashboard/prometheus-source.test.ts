import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../lib/logger.js';
import { requestRateQuery } from './prometheus-edges.js';
import { PrometheusSource, prometheusQueryUrl } from './prometheus-source.js';

/** A logger that keeps each line's level and message. */
function recordingLogger(): { log: Logger; lines: Array<{ level: string; message: string }> } {
  const lines: Array<{ level: string; message: string }> = [];
  const at =
    (level: string) =>
    (...args: unknown[]) =>
      lines.push({ level, message: String(args.find((a) => typeof a === 'string') ?? '') });
  const log = { warn: at('warn'), info: at('info'), debug: at('debug'), error: at('error'), child: () => log } as unknown as Logger;
  return { log, lines };
}

const vector = {
  status: 'success',
  data: {
    resultType: 'vector',
    result: [
      {
        metric: {
          reporter: 'source',
          source_workload: 'productpage-v1',
          source_workload_namespace: 'bookinfo',
          source_app: 'productpage',
          source_version: 'v1',
          destination_service: 'reviews.bookinfo.svc.cluster.local',
          destination_version: 'v1',
          response_code: '200',
        },
        value: [1795010000, '4.5'],
      },
    ],
  },
};

async function until(what: string, done: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('prometheusQueryUrl', () => {
  it("joins Prometheus's query path to the base, keeping a path prefix", () => {
    expect(prometheusQueryUrl('http://prometheus.istio-system:9090').toString()).toBe('http://prometheus.istio-system:9090/api/v1/query');
    expect(prometheusQueryUrl('https://monitoring.example/prometheus/').toString()).toBe(
      'https://monitoring.example/prometheus/api/v1/query',
    );
  });

  it('refuses what is not an http(s) URL, naming the field', () => {
    expect(() => prometheusQueryUrl('prometheus:9090x')).toThrow(
      'spec.dashboard.prometheus.url: "prometheus:9090x" is not an http or https URL',
    );
    expect(() => prometheusQueryUrl('not a url')).toThrow('spec.dashboard.prometheus.url: "not a url" is not a URL');
  });
});

describe('PrometheusSource', () => {
  let server: Server;
  let url: string;
  /** What the fake Prometheus does next: answer, fail with its own error envelope, or not answer at all. */
  let mode: 'answer' | 'error' | 'hang' = 'answer';
  const bodies: string[] = [];
  let source: PrometheusSource | undefined;

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        bodies.push(`${req.method} ${req.url} ${body}`);
        if (mode === 'hang') return;
        if (mode === 'error')
          res
            .writeHead(503, { 'content-type': 'application/json' })
            .end(JSON.stringify({ status: 'error', errorType: 'unavailable', error: 'TSDB not ready' }));
        else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(vector));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(() => source?.stop());
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it("POSTs Istio's request-rate query to /api/v1/query and serves the edges of the answer", async () => {
    mode = 'answer';
    bodies.length = 0;
    source = new PrometheusSource(url, recordingLogger().log, { intervalMs: 10_000 });
    source.start();
    await until('the first answer', () => source?.queries.answered === 1);
    expect(bodies).toEqual([`POST /api/v1/query ${new URLSearchParams({ query: requestRateQuery() }).toString()}`]);
    expect(source.edges()).toEqual([expect.objectContaining({ target: 'reviews.bookinfo.svc.cluster.local', requestsPerSecond: 4.5 })]);
  });

  it('logs one warning per outage whatever the number of failed queries, backs off, and says when Prometheus answers again', async () => {
    mode = 'error';
    const { log, lines } = recordingLogger();
    source = new PrometheusSource(url, log, { intervalMs: 10, maxBackoffMs: 40 });
    source.start();
    await until('five failed queries', () => (source?.queries.failed ?? 0) >= 5);
    expect(lines.filter((l) => l.level === 'warn')).toHaveLength(1);
    expect(lines[0]?.message).toContain('could not query Prometheus');
    expect(source.status().lastError).toBe('Prometheus answer: status is "error", not "success": unavailable: TSDB not ready');
    expect(source.edges()).toEqual([]);
    mode = 'answer';
    await until('the answer after the outage', () => source?.queries.answered === 1);
    expect(lines.filter((l) => l.level === 'warn')).toHaveLength(1);
    expect(lines.filter((l) => l.level === 'info').map((l) => l.message)).toEqual(['Prometheus answers again']);
    expect(source.status().failingSince).toBeUndefined();
  });

  it('gives up on a query after its timeout, and drops the last answer once it is older than the rate window', async () => {
    mode = 'answer';
    let now = 1_000_000;
    source = new PrometheusSource(url, recordingLogger().log, { intervalMs: 10, timeoutMs: 50, staleMs: 60_000, now: () => now });
    source.start();
    await until('an answer', () => (source?.queries.answered ?? 0) >= 1);
    mode = 'hang';
    const answered = source.queries.answered;
    await until('a timed-out query', () => (source?.queries.failed ?? 0) >= 1);
    expect(source.status().lastError).toBe('no answer within 50 ms');
    expect(source.queries.answered).toBeGreaterThanOrEqual(answered);
    // Still within the window: the last answer is shown; a minute later it is not.
    expect(source.edges()).toHaveLength(1);
    now += 60_001;
    expect(source.edges()).toEqual([]);
  });
});
