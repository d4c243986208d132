import { describeFault, describeMatch, routeRules } from './route-rules.js';

describe('routeRules', () => {
  it("describes each HTTPMatchRequest field Istio matches on, conditions joined by 'and', alternatives by 'or'", () => {
    const [rule] = routeRules([
      {
        name: 'api',
        match: [
          {
            uri: { prefix: '/api' },
            method: { exact: 'GET' },
            headers: { 'x-canary': { regex: 'yes|true' } },
            queryParams: { debug: { exact: '1' } },
            withoutHeaders: { 'x-internal': {} },
            sourceLabels: { app: 'productpage', version: 'v1' },
            port: 9080,
          },
          { authority: { exact: 'reviews:9080' }, sourceNamespace: 'frontend' },
        ],
        route: [
          { destination: { host: 'reviews', subset: 'v2' }, weight: 75 },
          { destination: { host: 'reviews', subset: 'v3' }, weight: 25 },
        ],
      },
    ]);
    expect(rule?.match).toBe(
      'uri prefix /api and method = GET and header x-canary ~ yes|true and not header x-internal present and query debug = 1' +
        ' and port 9080 and from app=productpage,version=v1 or authority = reviews:9080 and from namespace frontend',
    );
    expect(rule?.weights).toEqual([
      { host: 'reviews', subset: 'v2', weight: 75 },
      { host: 'reviews', subset: 'v3', weight: 25 },
    ]);
  });

  it("keeps Istio's order and names unnamed routes by index; a lone destination takes 100%", () => {
    const rules = routeRules([
      { match: [{ uri: { exact: '/login' } }], route: [{ destination: { host: 'productpage' } }] },
      { route: [{ destination: { host: 'productpage', subset: 'v1' } }] },
    ]);
    expect(rules.map((r) => [r.name, r.match, r.weights[0]?.weight])).toEqual([
      ['#0', 'uri = /login', 100],
      ['#1', 'any request', 100],
    ]);
  });

  it('shows delays and aborts (percentage or the deprecated percent) and what answers instead of a destination', () => {
    expect(describeFault({ delay: { percent: 10, fixedDelay: '5s' }, abort: { percentage: { value: 0.1 }, httpStatus: 400 } })).toBe(
      'delay 10% 5s, abort 0.1% HTTP 400',
    );
    expect(describeFault({ abort: { grpcStatus: 'UNAVAILABLE' } })).toBe('abort 100% gRPC UNAVAILABLE');
    expect(describeFault(undefined)).toBeUndefined();
    const [redirect, direct] = routeRules([
      { redirect: { uri: '/v1/bookRatings', authority: 'newratings.default.svc.cluster.local' } },
      { directResponse: { status: 503 } },
    ]);
    expect(redirect?.answer).toBe('redirect newratings.default.svc.cluster.local/v1/bookRatings (301)');
    expect(redirect?.weights).toEqual([]);
    expect(direct?.answer).toBe('direct response 503');
  });

  it('says "any request" for a match with no condition (Istio matches everything)', () => {
    expect(describeMatch({})).toBe('any request');
  });
});
