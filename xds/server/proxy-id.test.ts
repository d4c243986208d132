import { parseProxyId } from './proxy-id.js';

describe('parseProxyId', () => {
  it("reads Istio's sidecar and router node ids", () => {
    expect(parseProxyId('sidecar~10.244.1.5~reviews-v1-7d8f9c6b5-abcde.bookinfo~bookinfo.svc.cluster.local')).toEqual({
      type: 'sidecar',
      ip: '10.244.1.5',
      pod: 'reviews-v1-7d8f9c6b5-abcde',
      namespace: 'bookinfo',
      domain: 'bookinfo.svc.cluster.local',
    });
    expect(parseProxyId('router~10.244.0.9~istio-ingressgateway-5b9.istio-system~istio-system.svc.cluster.local')?.type).toBe('router');
  });

  it('says nothing of ids in other shapes', () => {
    for (const id of ['', 'client-1', 'sidecar~10.0.0.1~nodots~ns.svc', 'a~b~c']) expect(parseProxyId(id)).toBeUndefined();
  });
});
