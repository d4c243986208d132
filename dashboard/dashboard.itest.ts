// The dashboard as a person uses it: `make demo`'s install (Weft, then the bookinfo
// sample with its load generator) on the real local cluster, `weft dashboard`'s local
// proxy through the API server, and a real headless Chromium (Debian's package, driven
// by playwright-core) that reads the live graph, watches a 90/10 canary appear on the
// edges after `kubectl apply`, checks accessibility basics and saves a screenshot.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ClusterConnection } from '../cli/cluster-connection.js';
import { startDashboardProxy } from '../cli/dashboard-command.js';
import { findControlPlanes } from '../cli/control-plane-locator.js';
import { installBookinfoDemo } from '../testing/cluster/bookinfo-demo.js';
import { ensureClusterBinaries } from '../testing/cluster/binaries.js';
import { installMeshDemo } from '../testing/cluster/mesh-demo.js';
import type { PodProcessRunner } from '../testing/cluster/pod-processes.js';
import { describeWithCluster } from '../testing/jest/local-cluster-fixture.js';

const chromiumPath = process.env['WEFT_CHROMIUM'] ?? '/usr/bin/chromium';
const outputDir = join(process.cwd(), 'dist', 'test-output', 'dashboard');

describeWithCluster('weft dashboard on the live demo, in a real browser', (cluster) => {
  let runners: PodProcessRunner[] = [];
  let browser: Browser | undefined;
  let proxy: Server | undefined;
  let page: Page;
  let kubectl = '';

  beforeAll(async () => {
    if (!existsSync(chromiumPath)) throw new Error(`no Chromium at ${chromiumPath}: run 'make browser' (apt-get install chromium)`);
    const binaries = await ensureClusterBinaries(undefined, { allowBuild: false });
    kubectl = binaries.kubectl;
    const quiet = () => undefined;
    runners.push(await installMeshDemo(cluster(), binaries, process.cwd(), quiet));
    runners.push(await installBookinfoDemo(cluster(), binaries, process.cwd(), quiet));
    const connection = ClusterConnection.open({ kubeconfig: cluster().kubeconfigPath });
    const pod = (await findControlPlanes(connection)).flatMap((plane) => plane.pods)[0];
    if (!pod) throw new Error('no weftd pod');
    const started = await startDashboardProxy(connection, pod, { address: '127.0.0.1', port: 0 });
    proxy = started.server;
    // As the workplace's machines need it: no sandbox as root, and no background calls out of a closed network.
    browser = await chromium.launch({
      executablePath: chromiumPath,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(started.url);
  }, 420_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => (proxy ? proxy.close(resolve) : resolve(undefined)));
    for (const runner of runners.reverse()) await runner.stop();
    runners = [];
  }, 60_000);

  async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await probe())) {
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }

  /** The traffic table's rows as the page shows them: from, to, subset, requests/s, errors, transport, rules, reported by. */
  const trafficRows = () =>
    page.$$eval('#edges tbody tr', (rows) => rows.map((row) => [...row.querySelectorAll('td')].map((td) => td.textContent ?? '')));
  /** productpage's requests per second to reviews, by subset ('-': the service's own cluster). */
  const reviewsRates = async () => {
    const rates = new Map<string, number>();
    for (const cells of await trafficRows())
      if (cells[0] === 'bookinfo/productpage/v1' && cells[1] === 'reviews.bookinfo') rates.set(cells[2] ?? '', Number(cells[3]));
    return rates;
  };

  it('draws the sample: its services and workloads, and live traffic on the edges', async () => {
    await waitFor(
      'the graph to show the four services',
      async () => ((await page.getAttribute('#graph', 'aria-label')) ?? '').includes('4 services'),
      30_000,
    );
    expect(await page.getAttribute('#graph', 'aria-label')).toMatch(/4 services, \d+ workloads/);
    // The load generator asks for a page ten times a second: productpage calls reviews about as often.
    await waitFor('productpage -> reviews traffic in the table', async () => ((await reviewsRates()).get('-') ?? 0) > 1, 60_000);
    // Each caller's first load report comes within its LRS interval (10 s) of its first call.
    const expected = ['bookinfo/loadgen/v1', 'bookinfo/productpage/v1', 'bookinfo/reviews/v2', 'bookinfo/reviews/v3'];
    const callers = async () => new Set((await trafficRows()).map((cells) => cells[0]));
    await waitFor('every caller of the sample in the table', async () => (await callers()).size >= expected.length, 30_000);
    expect(await callers()).toEqual(new Set(expected));
    expect(await page.textContent('#status')).toMatch(/^Live: \d+ proxies connected/);
  }, 120_000);

  it('shows a 90/10 canary on the edges within seconds of kubectl apply', async () => {
    const applied = spawnSync(kubectl, ['apply', '-f', 'config/samples/demo/reviews-canary.yaml'], {
      env: { ...process.env, KUBECONFIG: cluster().kubeconfigPath },
      encoding: 'utf8',
    });
    expect(applied.stderr).toBe('');
    const started = Date.now();
    // The split shows as productpage's calls to the v1 and v3 subsets' clusters; the routing table names the rule.
    await waitFor(
      'the 90/10 split on the edges',
      async () => {
        const rates = await reviewsRates();
        const v1 = rates.get('v1') ?? 0;
        const v3 = rates.get('v3') ?? 0;
        return v1 > 0 && v3 > 0 && v3 / (v1 + v3) < 0.3;
      },
      90_000,
    );
    process.stderr.write(`dashboard: the canary showed on the edges ${((Date.now() - started) / 1000).toFixed(1)} s after kubectl apply\n`);
    expect(await page.textContent('#routes tbody')).toContain('v1 90%, v3 10%');
    // Each edge names the rule that sends traffic down it.
    const v1Edge = (await trafficRows()).find((cells) => cells[0] === 'bookinfo/productpage/v1' && cells[2] === 'v1');
    expect(v1Edge?.[6]).toBe('any request → 90%');
    // The proxyless sample reports its own load (LRS); no Prometheus is configured here.
    expect(v1Edge?.[7]).toBe('load reports');
    // The canary's VirtualService reached every proxy it applies to (its Reconciled condition, as on its status).
    await waitFor(
      'the canary acknowledged everywhere in the propagation table',
      async () =>
        /VirtualService bookinfo\/reviews\s*yes\s*(\d+)\/\1 proxies up to date/.test((await page.textContent('#propagation tbody')) ?? ''),
      30_000,
    );
    mkdirSync(outputDir, { recursive: true });
    await page.screenshot({ path: join(outputDir, 'dashboard.png'), fullPage: true });
  }, 150_000);

  it("lists the analyzers' messages: a VirtualService routing to a host that does not exist shows IST0101", async () => {
    const applied = spawnSync(kubectl, ['apply', '-f', '-'], {
      env: { ...process.env, KUBECONFIG: cluster().kubeconfigPath },
      encoding: 'utf8',
      input: [
        'apiVersion: networking.istio.io/v1',
        'kind: VirtualService',
        'metadata: {name: typo, namespace: bookinfo}',
        'spec:',
        '  hosts: [reviews-typo]',
        '  http:',
        '  - route:',
        '    - destination: {host: reveiws}',
      ].join('\n'),
    });
    expect(applied.stderr).toBe('');
    await waitFor(
      'the finding in the analysis table',
      async () => /ERROR\s*IST0101\s*VirtualService bookinfo\/typo/.test((await page.textContent('#findings tbody')) ?? ''),
      30_000,
    );
    expect(await page.textContent('#findings tbody')).toMatch(/reveiws/);
  }, 60_000);

  it('meets accessibility basics: named regions and tables, a live status, keyboard focus, readable contrast', async () => {
    expect(await page.getAttribute('html', 'lang')).toBe('en');
    expect(await page.getAttribute('#status', 'aria-live')).toBe('polite');
    expect(await page.getAttribute('#graph', 'role')).toBe('img');
    for (const table of ['edges', 'routes', 'proxies', 'propagation', 'findings']) {
      expect((await page.textContent(`#${table} caption`))?.length).toBeGreaterThan(10);
      expect(await page.$$eval(`#${table} th`, (ths) => ths.every((th) => th.getAttribute('scope') === 'col'))).toBe(true);
    }
    // The graph is reachable by keyboard, and focus shows.
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement && document.activeElement.id')).toBe('graph');
    expect(await page.evaluate('getComputedStyle(document.activeElement).outlineStyle')).not.toBe('none');
    // WCAG AA: text at least 4.5:1 against its background.
    const ratios = (await page.evaluate(contrastRatios)) as Array<{ text: string; ratio: number }>;
    expect(ratios.filter((r) => r.ratio < 4.5)).toEqual([]);
  }, 60_000);
});

/** Runs in the page: each text element's contrast ratio against the page's background (WCAG 2's relative luminance). */
const contrastRatios = `(() => {
  const luminance = (color) => {
    const [r, g, b] = (color.match(/[0-9.]+/g) || []).slice(0, 3).map((v) => {
      const c = Number(v) / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const body = getComputedStyle(document.body).backgroundColor;
  const background = luminance(body === 'rgba(0, 0, 0, 0)' ? 'rgb(255, 255, 255)' : body);
  return [...document.querySelectorAll('h1, h2, p, caption, th, td')].map((element) => {
    const l = luminance(getComputedStyle(element).color);
    const [hi, lo] = l > background ? [l, background] : [background, l];
    return { text: (element.textContent || '').slice(0, 30), ratio: (hi + 0.05) / (lo + 0.05) };
  });
})()`;
