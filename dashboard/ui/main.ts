// The dashboard page: the mesh graph (cytoscape) and its tables, redrawn from
// weftd's event stream (../dashboard-routes.ts) whenever the graph changes. Every
// URL is relative: the page may be reached through the API server's pod proxy.
import cytoscape, { type Core, type ElementDefinition } from 'cytoscape';
import type { GraphEdge, MeshGraph } from '../mesh-graph.js';

const status = document.getElementById('status') as HTMLElement;
const graphElement = document.getElementById('graph') as HTMLElement;
graphElement.tabIndex = 0;

const cy: Core = cytoscape({
  container: graphElement,
  wheelSensitivity: 0.3,
  style: [
    {
      selector: 'node',
      style: {
        label: 'data(label)',
        'text-wrap': 'wrap',
        'font-size': 11,
        color: '#1b1f24',
        'text-valign': 'bottom',
        'text-margin-y': 4,
        width: 26,
        height: 26,
      },
    },
    { selector: 'node.workload', style: { 'background-color': '#0b5cad', shape: 'ellipse' } },
    { selector: 'node.service', style: { 'background-color': '#5a3d99', shape: 'round-rectangle', width: 34, height: 22 } },
    {
      selector: 'edge',
      style: {
        'curve-style': 'bezier',
        'target-arrow-shape': 'triangle',
        width: 'data(width)',
        label: 'data(label)',
        'font-size': 10,
        color: '#1b1f24',
        'text-background-color': '#ffffff',
        'text-background-opacity': 0.85,
        'text-background-padding': '1px',
      },
    },
    {
      selector: 'edge.serves',
      style: { 'line-style': 'dashed', 'line-color': '#9aa1ab', 'target-arrow-color': '#9aa1ab', width: 1, label: '' },
    },
    { selector: 'edge.mtls', style: { 'line-color': '#1a6b2f', 'target-arrow-color': '#1a6b2f' } },
    { selector: 'edge.plain', style: { 'line-color': '#6b7280', 'target-arrow-color': '#6b7280' } },
    { selector: 'edge.errors', style: { 'line-color': '#a4141a', 'target-arrow-color': '#a4141a' } },
  ],
});

const rate = (n: number) => (n >= 10 ? n.toFixed(0) : n.toFixed(1));
const errorShare = (e: GraphEdge) => (e.requestsPerSecond > 0 ? e.errorsPerSecond / e.requestsPerSecond : 0);
const shortHost = (host: string) => host.split('.').slice(0, 2).join('.');

function elementsOf(graph: MeshGraph): ElementDefinition[] {
  const elements: ElementDefinition[] = [];
  for (const w of graph.workloads) elements.push({ data: { id: `w:${w.id}`, label: `${w.app} ${w.version}` }, classes: 'workload' });
  for (const s of graph.services) {
    const weights = s.route?.weights.map((w) => `${w.subset || 'all'} ${w.weight}%`).join(' · ');
    elements.push({ data: { id: `s:${s.id}`, label: weights ? `${s.name}\n${weights}` : s.name }, classes: 'service' });
  }
  const known = new Set(elements.map((e) => e.data.id));
  for (const w of graph.workloads)
    for (const host of w.services)
      if (known.has(`s:${host}`))
        elements.push({ data: { id: `serves:${host}:${w.id}`, source: `s:${host}`, target: `w:${w.id}`, width: 1 }, classes: 'serves' });
  for (const e of graph.edges) {
    if (!known.has(`s:${e.target}`) || !known.has(`w:${e.source}`)) continue;
    const errors = errorShare(e);
    elements.push({
      data: {
        id: `calls:${e.source}:${e.target}:${e.subset}`,
        source: `w:${e.source}`,
        target: `s:${e.target}`,
        label: `${e.subset ? `${e.subset} ` : ''}${rate(e.requestsPerSecond)} rps${errors > 0 ? ` · ${(errors * 100).toFixed(0)}% err` : ''}${e.mtls ? ' · mTLS' : ''}${e.rules.some((r) => r.includes('; fault ')) ? ' · fault' : ''}`,
        width: Math.min(1.5 + e.requestsPerSecond / 2, 10),
      },
      classes: errors > 0.01 ? 'errors' : e.mtls ? 'mtls' : 'plain',
    });
  }
  return elements;
}

function cell(row: HTMLTableRowElement, text: string, className?: string): void {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
}

function fill(tableId: string, rows: string[][], classes: Array<Array<string | undefined>> = []): void {
  const body = document.querySelector(`#${tableId} tbody`) as HTMLTableSectionElement;
  body.replaceChildren();
  rows.forEach((values, i) => {
    const row = body.insertRow();
    values.forEach((value, j) => cell(row, value, classes[i]?.[j]));
  });
}

let shape = '';
function render(graph: MeshGraph): void {
  const elements = elementsOf(graph);
  const ids = elements
    .map((e) => e.data.id)
    .sort()
    .join(',');
  cy.batch(() => {
    const wanted = new Set(elements.map((e) => e.data.id));
    cy.elements().forEach((element) => {
      if (!wanted.has(element.id())) element.remove();
    });
    for (const definition of elements) {
      const existing = cy.getElementById(definition.data.id as string);
      if (existing.nonempty()) {
        existing.data(definition.data);
        existing.classes(definition.classes as string);
      } else cy.add(definition);
    }
  });
  // Lay out again only when nodes or edges come or go, so a moving rate does not move the picture.
  if (ids !== shape) {
    shape = ids;
    const roots = graph.workloads.filter((w) => w.services.length === 0).map((w) => `#${CSS.escape(`w:${w.id}`)}`);
    cy.layout({ name: 'breadthfirst', directed: true, spacingFactor: 1.1, ...(roots.length ? { roots: roots.join(',') } : {}) }).run();
  }
  const total = graph.edges.reduce((sum, e) => sum + e.requestsPerSecond, 0);
  graphElement.setAttribute(
    'aria-label',
    `The service graph: ${graph.services.length} services, ${graph.workloads.length} workloads, ${graph.edges.length} traffic edges carrying ${rate(total)} requests per second`,
  );
  fill(
    'edges',
    graph.edges.map((e) => [
      e.source,
      shortHost(e.target),
      e.subset || '-',
      rate(e.requestsPerSecond),
      `${(errorShare(e) * 100).toFixed(1)}%`,
      e.mtls ? 'mTLS' : 'plaintext',
      e.rules.join(' | ') || '-',
      e.reportedBy === 'prometheus' ? 'Prometheus' : 'load reports',
    ]),
    graph.edges.map((e) => [undefined, undefined, undefined, 'num', errorShare(e) > 0.01 ? 'num bad' : 'num', e.mtls ? 'ok' : undefined]),
  );
  // One row per HTTP route, in the order Istio tries them.
  const routeRows = graph.services.flatMap((s) =>
    (s.route?.rules ?? []).map((r) => [
      shortHost(s.id),
      s.route?.virtualService ?? '',
      r.match,
      r.answer ?? r.weights.map((w) => `${w.subset || shortHost(w.host)} ${w.weight}%`).join(', '),
      r.fault ?? '-',
    ]),
  );
  fill(
    'routes',
    routeRows,
    routeRows.map((row) => [undefined, undefined, undefined, undefined, row[4] !== '-' ? 'bad' : undefined]),
  );
  fill(
    'propagation',
    graph.propagation.map((p) => [
      `${p.kind} ${p.namespace}/${p.name}`,
      p.status === 'True' ? 'yes' : p.status === 'False' ? 'not yet' : 'unknown',
      p.message,
    ]),
    graph.propagation.map((p) => [undefined, p.status === 'True' ? 'ok' : p.status === 'False' ? 'bad' : undefined]),
  );
  fill(
    'findings',
    graph.findings.map((f) => [f.level, f.code, `${f.kind} ${f.namespace}/${f.name}`, f.message]),
    graph.findings.map((f) => [f.level === 'ERROR' ? 'bad' : undefined]),
  );
  const types = ['LDS', 'RDS', 'CDS', 'EDS'];
  fill(
    'proxies',
    graph.proxies.map((p) => [
      p.pod ? `${p.pod}.${p.namespace}` : p.nodeId,
      ...types.map((t) => (p.sync[t] ? `${p.sync[t].state}${p.sync[t].error ? `: ${p.sync[t].error}` : ''}` : '-')),
    ]),
    graph.proxies.map((p) => [
      undefined,
      ...types.map((t) => (p.sync[t]?.state === 'NACK' ? 'bad' : p.sync[t]?.state === 'SYNCED' ? 'ok' : undefined)),
    ]),
  );
  status.textContent = `Live: ${graph.proxies.length} proxies connected, ${rate(total)} requests/s in the mesh (updated ${new Date().toLocaleTimeString()})`;
}

const events = new EventSource('api/events');
events.addEventListener('graph', (event) => render(JSON.parse((event as MessageEvent<string>).data) as MeshGraph));
events.onerror = () => {
  status.textContent = 'Lost the connection to weftd; retrying…';
};
