// Config propagation counts (Istio's `Reconciled` condition): which proxies an object applies
// to, how many of them are up to date with its current generation, the NACK that names it,
// and that an ACK costs O(1) while conditions are computed once per take, for what moved.
import { emptyIstioConfig, type ConfigObject, type IstioConfig } from './istio-config.js';
import type { MeshModel } from './mesh-model.js';
import { Propagation, reconciledCondition } from './propagation.js';
import type { DiscoveryNode } from '../server/discovery-types.js';

const node = (pod: string, namespace: string, labels: Record<string, string>, type = 'sidecar'): DiscoveryNode => ({
  id: `${type}~10.0.0.1~${pod}.${namespace}~${namespace}.svc.cluster.local`,
  metadata: { NAMESPACE: namespace, LABELS: labels },
});

const object = <Spec>(kind: string, namespace: string, name: string, spec: Spec, generation = 1): ConfigObject<Spec> => ({
  kind,
  namespace,
  name,
  generation,
  creationTimestamp: '2026-01-01T00:00:00Z',
  spec,
});

const model = (istio: Partial<IstioConfig>): MeshModel => ({
  clusterDomain: 'cluster.local',
  rootNamespace: 'istio-system',
  services: [],
  istio: { ...emptyIstioConfig(), ...istio },
});

const vsReviews = (generation = 1) =>
  object('VirtualService', 'shop', 'reviews', { hosts: ['reviews'], exportTo: ['.'], http: [{ route: [] }] }, generation);
const apCart = object('AuthorizationPolicy', 'shop', 'cart', { selector: { matchLabels: { app: 'cart' } } });
const routeNack = 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration';

/** Each taken condition's message, by object. */
const messages = (propagation: Propagation) =>
  Object.fromEntries(propagation.take().map((u) => [`${u.kind}/${u.name}`, `${u.condition.status} ${u.condition.message}`]));

describe('reconciledCondition', () => {
  it("says Istio's 'N/M proxies up to date.', True only when all are, with the NACK while some are not", () => {
    expect(reconciledCondition(2, 2, 3)).toEqual({
      type: 'Reconciled',
      status: 'True',
      reason: 'Reconciled',
      message: '2/2 proxies up to date.',
      observedGeneration: 3,
    });
    expect(reconciledCondition(0, 0).status).toBe('True');
    expect(reconciledCondition(1, 2)).toMatchObject({ status: 'False', reason: 'StillPropagating', message: '1/2 proxies up to date.' });
    const nack = { proxy: 'cart-1.shop', typeUrl: routeNack, error: 'x'.repeat(500) };
    const rejected = reconciledCondition(1, 2, 1, nack);
    expect(rejected.reason).toBe('Rejected');
    expect(rejected.message).toMatch(/^1\/2 proxies up to date\. Last NACK: cart-1\.shop rejected RouteConfiguration: x{200}\.\.\.$/);
  });
});

describe('Propagation', () => {
  it('counts the proxies an object applies to and those that ACKed its generation', () => {
    const p = new Propagation();
    p.modelApplied(model({ virtualServices: [vsReviews()], authorizationPolicies: [apCart] }));
    p.connected(1, node('cart-1', 'shop', { app: 'cart' }));
    p.connected(2, node('web-1', 'shop', { app: 'web' }));
    // Another namespace: the VirtualService is exported to its own only, the policy selects in shop only.
    p.connected(3, node('ads-1', 'ads', { app: 'cart' }));
    expect(messages(p)).toEqual({
      'VirtualService/reviews': 'False 0/2 proxies up to date.',
      'AuthorizationPolicy/cart': 'False 0/1 proxies up to date.',
    });
    p.synced(1, true);
    expect(messages(p)).toEqual({
      'VirtualService/reviews': 'False 1/2 proxies up to date.',
      'AuthorizationPolicy/cart': 'True 1/1 proxies up to date.',
    });
    p.synced(3, true); // moves no count of these objects
    expect(messages(p)).toEqual({});
    p.synced(2, true);
    expect(messages(p)).toEqual({ 'VirtualService/reviews': 'True 2/2 proxies up to date.' });
    p.disconnected(2);
    expect(messages(p)).toEqual({ 'VirtualService/reviews': 'True 1/1 proxies up to date.' });
    expect(p.condition('VirtualService', 'shop', 'reviews')?.observedGeneration).toBe(1);
  });

  it('counts a new generation from the model holding it: a proxy pushed before it counts once it ACKs', () => {
    const p = new Propagation();
    p.modelApplied(model({ virtualServices: [vsReviews(1)], authorizationPolicies: [apCart] }));
    p.connected(1, node('cart-1', 'shop', { app: 'cart' }));
    p.connected(2, node('web-1', 'shop', { app: 'web' }));
    p.synced(1, true);
    p.synced(2, true);
    p.take();
    // The push of generation 2 leaves cart-1 out of sync before the model is counted (as ProxyGroups announces it).
    p.synced(1, false);
    p.modelApplied(model({ virtualServices: [vsReviews(2)], authorizationPolicies: [apCart] }));
    // web-1 got nothing new (its config did not change): in sync, so up to date with generation 2.
    expect(messages(p)).toEqual({ 'VirtualService/reviews': 'False 1/2 proxies up to date.' });
    expect(p.condition('VirtualService', 'shop', 'reviews')?.observedGeneration).toBe(2);
    // The policy was ACKed by cart-1 before the push: still up to date.
    expect(p.condition('AuthorizationPolicy', 'shop', 'cart')?.message).toBe('1/1 proxies up to date.');
    p.synced(1, true);
    expect(messages(p)).toEqual({ 'VirtualService/reviews': 'True 2/2 proxies up to date.' });
  });

  it('names the NACKing proxy on the objects it had not ACKed, until their next generation', () => {
    const catalog = object('DestinationRule', 'shop', 'catalog', { host: 'catalog' });
    const p = new Propagation();
    p.modelApplied(model({ virtualServices: [vsReviews(1)], destinationRules: [catalog], authorizationPolicies: [apCart] }));
    p.connected(1, node('cart-1', 'shop', { app: 'cart' }));
    p.connected(2, node('web-1', 'shop', { app: 'web' }));
    p.synced(1, true);
    expect(messages(p)['DestinationRule/catalog']).toBe('False 1/2 proxies up to date.');
    p.synced(1, false);
    p.modelApplied(model({ virtualServices: [vsReviews(2)], destinationRules: [catalog], authorizationPolicies: [apCart] }));
    p.nacked(1, routeNack, 'Proto constraint validation failed: timeout: value must be positive');
    // The DestinationRule and the policy were ACKed by cart-1 before: the NACK is not theirs.
    expect(messages(p)).toEqual({
      'VirtualService/reviews':
        'False 0/2 proxies up to date. Last NACK: cart-1.shop rejected RouteConfiguration: Proto constraint validation failed: timeout: value must be positive',
    });
    expect(p.condition('VirtualService', 'shop', 'reviews')?.reason).toBe('Rejected');
    // A fixed generation that cart-1 ACKs: the NACK was of another generation.
    p.modelApplied(model({ virtualServices: [vsReviews(3)], destinationRules: [catalog], authorizationPolicies: [apCart] }));
    p.synced(1, true);
    expect(messages(p)).toEqual({ 'VirtualService/reviews': 'False 1/2 proxies up to date.' });
  });

  it('applies Gateways and the VirtualServices bound to them to the gateway proxies they select, and a Sidecar to its proxies', () => {
    const gateway = object('Gateway', 'edge', 'public', { selector: { istio: 'ingressgateway' }, servers: [] });
    const bound = object('VirtualService', 'edge', 'site', { hosts: ['site.example.com'], gateways: ['public'] });
    const sidecar = object('Sidecar', 'shop', 'default', { egress: [{ hosts: ['./*'] }] });
    const p = new Propagation();
    p.modelApplied(model({ gateways: [gateway], virtualServices: [bound], sidecars: [sidecar] }));
    p.connected(1, node('ingress-1', 'edge', { istio: 'ingressgateway' }, 'router'));
    p.connected(2, node('cart-1', 'shop', { app: 'cart' }));
    expect(messages(p)).toEqual({
      'Gateway/public': 'False 0/1 proxies up to date.',
      'VirtualService/site': 'False 0/1 proxies up to date.',
      'Sidecar/default': 'False 0/1 proxies up to date.',
    });
    // The Gateway no longer selects the proxy: neither it nor its VirtualService applies to it.
    p.modelApplied(model({ gateways: [{ ...gateway, spec: { selector: { istio: 'egress' }, servers: [] } }], virtualServices: [bound] }));
    expect(messages(p)).toEqual({
      'Gateway/public': 'True 0/0 proxies up to date.',
      'VirtualService/site': 'True 0/0 proxies up to date.',
    });
  });

  it("gives every object's counts for a replica summing them, without taking them, and takes all again after retake()", () => {
    const p = new Propagation();
    p.modelApplied(model({ virtualServices: [vsReviews(2)], authorizationPolicies: [apCart] }));
    p.connected(1, node('web-1', 'shop', { app: 'web' }));
    p.connected(2, node('web-2', 'shop', { app: 'web' }));
    p.synced(1, true);
    p.synced(2, false);
    p.nacked(2, routeNack, 'bad route');
    expect(p.counts()).toEqual({
      'VirtualService/shop/reviews': {
        generation: 2,
        up: 1,
        total: 2,
        nack: { proxy: 'web-2.shop', typeUrl: routeNack, error: 'bad route' },
      },
      'AuthorizationPolicy/shop/cart': { generation: 1, up: 0, total: 0 },
    });
    // counts() consumed nothing: take() still returns both conditions, then none until retake().
    expect(Object.keys(messages(p))).toEqual(['VirtualService/reviews', 'AuthorizationPolicy/cart']);
    expect(messages(p)).toEqual({});
    p.retake();
    expect(Object.keys(messages(p))).toHaveLength(2);
  });

  it('costs O(1) per ACK: 2,000 proxies syncing cause one condition per object at the next take, and no selector checks', () => {
    const objects = Array.from({ length: 50 }, (_, i) =>
      object('DestinationRule', 'shop', `dr-${i}`, { host: `svc-${i}.shop.svc.cluster.local` }),
    );
    const p = new Propagation();
    p.modelApplied(model({ destinationRules: objects }));
    for (let id = 1; id <= 2_000; id++) p.connected(id, node(`cart-${id}`, 'shop', { app: 'cart' }));
    p.take();
    // One class (same kind, namespace and labels): each object checked against it once.
    expect(p.work.appliesChecks).toBe(50);
    const before = { ...p.work };
    // Each proxy ACKs, is pushed again and NACKs, then ACKs again: 8,000 events.
    for (let id = 1; id <= 2_000; id++) {
      p.synced(id, true);
      p.synced(id, false);
      p.nacked(id, routeNack, 'bad');
      p.synced(id, true);
    }
    const taken = p.take();
    expect(taken).toHaveLength(50);
    expect(taken[0]?.condition.message).toBe('2000/2000 proxies up to date.');
    expect(p.work.conditionsComputed - before.conditionsComputed).toBe(50);
    expect(p.work.appliesChecks).toBe(before.appliesChecks);
    // Nothing moved since: nothing computed, nothing to write.
    expect(p.take()).toEqual([]);
    expect(p.work.conditionsComputed - before.conditionsComputed).toBe(50);
    // A changed object is checked against each class once, and only it is computed again.
    p.modelApplied(model({ destinationRules: [...objects.slice(1), { ...objects[0]!, generation: 2 }] }));
    expect(p.work.appliesChecks).toBe(before.appliesChecks + 1);
    expect(p.take().map((u) => [u.name, u.condition.observedGeneration])).toEqual([['dr-0', 2]]);
    expect(p.work.conditionsComputed - before.conditionsComputed).toBe(51);
  });
});
