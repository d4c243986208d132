import { virtualHostDomains } from './host-names.js';

const base = { clusterDomain: 'cluster.local' };

describe("virtualHostDomains (Istio's generateVirtualHostDomains)", () => {
  it('gives a caller in the service namespace the bare short name, others only the namespaced ones', () => {
    const hostname = 'reviews.bookinfo.svc.cluster.local';
    expect(virtualHostDomains({ ...base, hostname, callerNamespace: 'bookinfo' })).toEqual([
      hostname,
      `${hostname}.`,
      'reviews',
      'reviews.bookinfo.svc',
      'reviews.bookinfo',
    ]);
    expect(virtualHostDomains({ ...base, hostname, callerNamespace: 'shop' })).toEqual([
      hostname,
      `${hostname}.`,
      'reviews.bookinfo',
      'reviews.bookinfo.svc',
    ]);
  });

  it('adds the cluster IP, and `*.` forms for a headless Service (its pods are called by name)', () => {
    const hostname = 'db.data.svc.cluster.local';
    expect(virtualHostDomains({ ...base, hostname, callerNamespace: 'data', addresses: ['10.96.3.4', 'fd00::4'] })).toEqual([
      hostname,
      `${hostname}.`,
      'db',
      'db.data.svc',
      'db.data',
      '10.96.3.4',
      '[fd00::4]',
    ]);
    expect(virtualHostDomains({ ...base, hostname, callerNamespace: 'web', headless: true })).toEqual([
      hostname,
      `${hostname}.`,
      'db.data',
      'db.data.svc',
      `*.${hostname}`,
      `*.${hostname}.`,
      '*.db.data',
      '*.db.data.svc',
    ]);
  });

  it('never shortens a ServiceEntry host outside the cluster domain, whatever the caller', () => {
    for (const hostname of ['api.example.com', '*.wikipedia.org']) {
      expect(virtualHostDomains({ ...base, hostname, callerNamespace: 'example', addresses: ['240.0.0.7'] })).toEqual([
        hostname,
        `${hostname}.`,
        '240.0.0.7',
      ]);
    }
  });

  it('follows each name with `name:port` for proxyless gRPC', () => {
    expect(virtualHostDomains({ ...base, hostname: 'echo.shop.svc.cluster.local', callerNamespace: 'shop', port: 80 })).toEqual([
      'echo.shop.svc.cluster.local',
      'echo.shop.svc.cluster.local:80',
      'echo.shop.svc.cluster.local.',
      'echo.shop.svc.cluster.local.:80',
      'echo',
      'echo:80',
      'echo.shop.svc',
      'echo.shop.svc:80',
      'echo.shop',
      'echo.shop:80',
    ]);
  });
});
