// In-process cost of one change to the derived config, on a mesh shaped like a
// real cluster (testing/fixtures/mesh-shape.ts): groups formed, the cost of
// connecting every proxy, and per change (an endpoint move, a VirtualService
// edit) the time of ProxyGroups.update and the derivations it did. No network:
// what the server-side figures of the xDS benchmark are made of.
import { meshModel, proxiesOf, withMovedEndpoints, type MeshShape } from '../fixtures/mesh-shape.js';
import { ProxyGroups } from '../../xds/cache/proxy-groups.js';
import type { MeshModel } from '../../xds/model/mesh-model.js';
import { typeUrls } from '../../xds/protos.js';

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;

/** Prints the figures for one mesh shape; `changes` of each kind are timed. */
export async function derivationBenchmark(shape: MeshShape, grpcClients: number, changes = 50): Promise<void> {
  const nodes = proxiesOf(shape, grpcClients);
  const groups = new ProxyGroups();
  let model: MeshModel = meshModel(shape);
  groups.update(model);
  const connectStart = performance.now();
  for (const node of nodes) {
    groups.connected(node);
    for (const typeUrl of [typeUrls.listener, typeUrls.cluster]) groups.resources(node, typeUrl, []);
  }
  const connectMs = performance.now() - connectStart;
  const stats = groups.stats();
  const time = (change: (m: MeshModel, c: number) => MeshModel) => {
    const samples: number[] = [];
    const before = groups.stats().derivations;
    for (let c = 1; c <= changes; c++) {
      model = change(model, c);
      const start = performance.now();
      groups.update(model);
      samples.push(performance.now() - start);
    }
    const after = groups.stats().derivations;
    const per = Object.fromEntries(
      Object.keys(after)
        .map((k) => [k, ((after[k] ?? 0) - (before[k] ?? 0)) / changes] as const)
        .filter(([, v]) => v > 0),
    );
    return { sorted: samples.sort((a, b) => a - b), per };
  };
  const endpoint = time((m, c) => withMovedEndpoints(m, shape, (c * 37) % shape.services, c));
  const virtualService = time((m, c) => {
    const istio = m.istio as NonNullable<MeshModel['istio']>;
    const i = c % Math.max(1, istio.virtualServices.length);
    const rule = istio.virtualServices[i];
    if (!rule) return m;
    const weight = 50 + (c % 40);
    const http = rule.spec.http?.[0];
    const edited = {
      ...rule,
      spec: {
        ...rule.spec,
        http: [{ ...http, route: (http?.route ?? []).map((r, j) => ({ ...r, weight: j === 0 ? weight : 100 - weight })) }],
      },
    };
    const virtualServices = [...istio.virtualServices];
    virtualServices[i] = edited;
    return { ...m, istio: { ...istio, virtualServices } };
  });
  // A mesh-wide change (every group derived again), once in one pass and once yielding between groups:
  // the longest time the event loop (gRPC, CA, health) could not answer.
  const meshWide = async () => {
    const blocked = async (run: () => Promise<unknown>) => {
      let last = performance.now();
      let longest = 0;
      const probe = setInterval(() => {
        const now = performance.now();
        longest = Math.max(longest, now - last);
        last = now;
      }, 1);
      const start = performance.now();
      await run();
      const total = performance.now() - start;
      clearInterval(probe);
      longest = Math.max(longest, performance.now() - last);
      return { total, longest };
    };
    const flip = (m: MeshModel, mode: 'ALLOW_ANY' | 'REGISTRY_ONLY'): MeshModel => ({ ...m, meshConfig: { outboundTrafficPolicy: mode } });
    const onePass = await blocked(async () => {
      model = flip(model, 'REGISTRY_ONLY');
      groups.update(model);
    });
    const yielding = await blocked(async () => {
      model = flip(model, 'ALLOW_ANY');
      await groups.updateAsync(model);
    });
    return { onePass, yielding };
  };
  const ms = (n: number) => n.toFixed(1).padStart(7);
  console.log(
    `xDS derivation, in process: ${shape.services} services in ${shape.namespaces} namespaces, ${nodes.length - grpcClients} sidecars + ${grpcClients} proxyless clients`,
  );
  console.log(`  label sets ${stats.labelSets}, outbound groups ${stats.outboundScopes}, inbound groups ${stats.inboundScopes}`);
  console.log(`  every proxy connected (all groups derived)          ${ms(connectMs)} ms`);
  console.log(
    `  endpoint move: update()          p50 ${ms(percentile(endpoint.sorted, 50))} ms  p99 ${ms(percentile(endpoint.sorted, 99))} ms  derivations per change ${JSON.stringify(endpoint.per)}`,
  );
  const wide = await meshWide();
  console.log(
    `  mesh-wide change (every group): ${ms(wide.onePass.total)} ms in one pass, event loop blocked ${ms(wide.onePass.longest)} ms; yielding: ${ms(wide.yielding.total)} ms, blocked at most ${ms(wide.yielding.longest)} ms`,
  );
  console.log(
    `  VirtualService edit: update()    p50 ${ms(percentile(virtualService.sorted, 50))} ms  p99 ${ms(percentile(virtualService.sorted, 99))} ms  derivations per change ${JSON.stringify(virtualService.per)}`,
  );
}

if (process.argv[1]?.endsWith('derivation-bench.js')) {
  const services = Number(process.argv[2] ?? 1000);
  await derivationBenchmark(
    { services, namespaces: 50, podsPerService: 2, virtualServices: services / 10, authorizationPolicies: 50, strictHalf: true },
    Number(process.argv[3] ?? 200),
  );
}
