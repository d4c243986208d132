import { emptyIstioConfig } from '../model/istio-config.js';
import type { MeshModel } from '../model/mesh-model.js';
import { istioConfigOf } from '../model/mesh-model-of.js';
import { analyzeNetworking, rejectedVerdicts, statusOf } from './config-analysis.js';

const model = (istio: Partial<NonNullable<MeshModel['istio']>>): MeshModel => ({
  clusterDomain: 'cluster.local',
  services: [
    { name: 'reviews', namespace: 'bookinfo', ports: [{ name: 'http', port: 9080, protocol: 'TCP' }], endpoints: [] },
    { name: 'httpbin.example.com', namespace: 'egress', hostname: 'httpbin.example.com', ports: [], endpoints: [], resolution: 'DNS' },
  ],
  istio: { ...emptyIstioConfig(), ...istio },
});

const reviewsRule = {
  kind: 'DestinationRule',
  name: 'reviews',
  namespace: 'bookinfo',
  spec: { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }] },
};

describe('networking analysis', () => {
  it('refuses routes to unknown hosts and to subsets no DestinationRule defines, naming the field', () => {
    const [verdict] = analyzeNetworking(
      model({
        destinationRules: [reviewsRule],
        virtualServices: [
          {
            kind: 'VirtualService',
            name: 'reviews',
            namespace: 'bookinfo',
            generation: 3,
            spec: {
              hosts: ['reviews'],
              http: [
                {
                  route: [
                    { destination: { host: 'reviews', subset: 'v1' }, weight: 50 },
                    { destination: { host: 'reviews', subset: 'v9' }, weight: 25 },
                    { destination: { host: 'ratings' }, weight: 25 },
                  ],
                },
              ],
            },
          },
        ],
      }),
    );
    expect(verdict).toMatchObject({ kind: 'VirtualService', accepted: false, generation: 3 });
    expect(verdict?.messages.map((m) => m.message)).toEqual([
      'spec.http[0].route[1].destination.subset: no DestinationRule for reviews.bookinfo.svc.cluster.local defines subset "v9"',
      'spec.http[0].route[2].destination.host: "ratings" (ratings.bookinfo.svc.cluster.local) is not a Service or ServiceEntry host in the mesh',
    ]);
  });

  it('accepts routes to Services and ServiceEntry hosts, and only warns about rules for hosts not served yet', () => {
    const verdicts = analyzeNetworking(
      model({
        destinationRules: [reviewsRule, { kind: 'DestinationRule', name: 'later', namespace: 'bookinfo', spec: { host: 'later' } }],
        virtualServices: [
          {
            kind: 'VirtualService',
            name: 'ok',
            namespace: 'bookinfo',
            spec: {
              hosts: ['reviews'],
              http: [
                { match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [{ destination: { host: 'reviews', subset: 'v1' } }] },
                { route: [{ destination: { host: 'httpbin.example.com' } }] },
              ],
            },
          },
        ],
      }),
    );
    expect(verdicts.map((v) => [v.name, v.accepted, v.messages.map((m) => m.level)])).toEqual([
      ['ok', true, []],
      ['reviews', true, []],
      ['later', true, ['WARNING']],
    ]);
  });

  it('writes an Accepted condition that keeps its transition time while its status holds, and Istio-style messages', () => {
    const verdict = {
      kind: 'VirtualService',
      namespace: 'ns',
      name: 'vs',
      generation: 2,
      accepted: false,
      messages: [{ code: 'IST0101', name: 'ReferencedResourceNotFound', level: 'ERROR' as const, message: 'x' }],
    };
    const first = statusOf(verdict, undefined, '2026-01-01T00:00:00Z');
    expect(first).toEqual({
      observedGeneration: 2,
      conditions: [
        {
          type: 'Accepted',
          status: 'False',
          reason: 'ReferencedResourceNotFound',
          message: 'x',
          lastTransitionTime: '2026-01-01T00:00:00Z',
          observedGeneration: 2,
        },
      ],
      validationMessages: [
        {
          type: { code: 'IST0101', name: 'ReferencedResourceNotFound' },
          level: 'ERROR',
          documentationUrl: 'https://istio.io/latest/docs/reference/config/analysis/ist0101/',
        },
      ],
    });
    const again = statusOf(verdict, first, '2026-02-02T00:00:00Z') as { conditions: Array<{ lastTransitionTime: string }> };
    expect(again.conditions[0]?.lastTransitionTime).toBe('2026-01-01T00:00:00Z');
    const fixed = statusOf({ ...verdict, accepted: true, messages: [] }, first, '2026-03-03T00:00:00Z') as {
      conditions: Array<{ status: string; lastTransitionTime: string }>;
    };
    expect(fixed.conditions[0]).toMatchObject({ status: 'True', lastTransitionTime: '2026-03-03T00:00:00Z' });
  });
});

describe('objects that got in without the webhook', () => {
  it('leaves invalid ones out of the config and reports them, keeps the rest, and reads a missing spec as empty', () => {
    const config = istioConfigOf({
      virtualservices: [
        {
          metadata: { name: 'bad', namespace: 'shop', generation: 2 },
          spec: {
            hosts: ['echo'],
            http: [
              {
                route: [
                  { destination: { host: 'echo', subset: 'a' }, weight: 0 },
                  { destination: { host: 'echo', subset: 'b' }, weight: 0 },
                ],
              },
            ],
          },
        },
        {
          metadata: { name: 'good', namespace: 'shop' },
          spec: { hosts: ['echo'], http: [{ route: [{ destination: { host: 'echo' } }] }] },
        },
      ],
      // No spec: Istio's "allow nothing", which must not be read as "no policy".
      authorizationpolicies: [{ metadata: { name: 'deny-all', namespace: 'shop' } }],
    });
    expect(config.virtualServices.map((v) => v.name)).toEqual(['good']);
    expect(config.authorizationPolicies).toEqual([{ kind: 'AuthorizationPolicy', name: 'deny-all', namespace: 'shop', spec: {} }]);
    const [verdict] = rejectedVerdicts({ clusterDomain: 'cluster.local', services: [], istio: config });
    expect(verdict).toMatchObject({ kind: 'VirtualService', name: 'bad', generation: 2, accepted: false });
    expect(verdict?.messages[0]).toMatchObject({ code: 'IST0106', level: 'ERROR' });
    expect(verdict?.messages[0]?.message).toContain('spec.http[0].route');
  });
});
