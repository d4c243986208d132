import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { ConfigObject, DestinationRuleSpec, VirtualServiceSpec } from '../model/istio-config.js';
import { conflictingMeshGatewayHosts, serverCertificateVerification, unreachableRules } from './config-analyzers.js';

const testdata = join(import.meta.dirname, 'testdata', 'analyzers');
const virtualServicesOf = (file: string): Array<ConfigObject<VirtualServiceSpec>> =>
  parseAllDocuments(readFileSync(join(testdata, file), 'utf8'))
    .map((d) => d.toJS() as { kind?: string; metadata: { name: string; namespace: string }; spec: VirtualServiceSpec })
    .filter((o) => o?.kind === 'VirtualService')
    .map((o) => ({ kind: 'VirtualService', name: o.metadata.name, namespace: o.metadata.namespace, spec: o.spec }));

describe('IST0109 ConflictingMeshGatewayVirtualServiceHosts (Istio’s analyzer testdata and expectations)', () => {
  it.each([
    [
      'virtualservice_conflictingmeshgatewayhosts.yaml',
      ['bar/ratings', 'foo/bogus-productpage', 'foo/productpage', 'foo/ratings', 'team2/ratings', 'team3/ratings', 'team4/ratings'],
    ],
    [
      'virtualservice_conflictingmeshgatewayhosts_with_exportto.yaml',
      ['bar/productpage', 'bar/productpage-c', 'bar/productpage-d', 'foo/productpage', 'foo/productpage-c', 'foo/productpage-d'],
    ],
  ])('%s', (file, expected) => {
    const found = conflictingMeshGatewayHosts(virtualServicesOf(file), 'cluster.local');
    expect([...found.keys()].sort()).toEqual(expected);
    for (const messages of found.values()) expect(messages.map((m) => [m.code, m.level])).toEqual([['IST0109', 'ERROR']]);
  });
  it('names every conflicting VirtualService and the scoped host, as istioctl does', () => {
    const vs = (namespace: string, name: string): ConfigObject<VirtualServiceSpec> => ({
      kind: 'VirtualService',
      namespace,
      name,
      spec: { hosts: ['productpage.default.svc.cluster.local'], http: [{ route: [{ destination: { host: 'productpage' } }] }] },
    });
    const found = conflictingMeshGatewayHosts([vs('team1', 'productpage'), vs('team2', 'productpage')], 'cluster.local');
    expect(found.get('team1/productpage')?.[0]?.message).toBe(
      'The VirtualServices team1/productpage,team2/productpage associated with mesh gateway define the same host */productpage.default.svc.cluster.local which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource.',
    );
    // Bound to a gateway only, a VirtualService does not configure the mesh: no conflict.
    const gatewayOnly = { ...vs('team2', 'productpage'), spec: { ...vs('x', 'y').spec, gateways: ['istio-system/ingress'] } };
    expect(conflictingMeshGatewayHosts([vs('team1', 'productpage'), gatewayOnly], 'cluster.local').size).toBe(0);
  });
});

describe('IST0130 VirtualServiceUnreachableRule and IST0131 VirtualServiceIneffectiveMatch', () => {
  const to = { route: [{ destination: { host: 'reviews' } }] };
  const texts = (spec: VirtualServiceSpec) => unreachableRules(spec).map((m) => `${m.code} ${m.level} ${m.message}`);
  it('a rule after a catch-all rule is never used', () => {
    expect(texts({ hosts: ['reviews'], http: [to, to] })).toEqual([
      'IST0130 WARNING VirtualService rule #1 not used (only the last rule can have no matches).',
    ]);
    expect(texts({ hosts: ['reviews'], http: [to, { match: [{ uri: { exact: '/a' } }], ...to }] })).toEqual([
      'IST0130 WARNING VirtualService rule #1 not used (route without matches defined before).',
    ]);
  });
  it('a match repeated from an earlier rule is ineffective, and a rule of only such matches unreachable (names quoted)', () => {
    const match = { headers: { 'end-user': { exact: 'jason' } } };
    expect(
      texts({
        hosts: ['reviews'],
        http: [{ name: 'jason', match: [match], ...to }, { name: 'jason-again', match: [{ ...match, name: 'same' }], ...to }, to],
      }),
    ).toEqual([
      'IST0131 INFO VirtualService rule "jason-again" match "same" is not used (duplicate/overlapping match in rule "jason").',
      'IST0130 WARNING VirtualService rule "jason-again" not used (all matches used by prior rules).',
    ]);
  });
  it('a URI prefix an earlier prefix covers is ineffective', () => {
    expect(
      texts({
        hosts: ['reviews'],
        http: [{ match: [{ uri: { prefix: '/debug' } }], ...to }, { match: [{ uri: { prefix: '/debugs' } }], ...to }, to],
      }),
    ).toEqual([
      'IST0131 INFO VirtualService rule #1 match #0 of prefix /debugs is not used (duplicate/overlapping match in rule #0 of prefix /debug on #0).',
    ]);
    // Different methods: both are used.
    expect(
      texts({
        hosts: ['reviews'],
        http: [
          { match: [{ uri: { prefix: '/debug' }, method: { exact: 'POST' } }], ...to },
          { match: [{ uri: { prefix: '/debugs' } }], ...to },
        ],
      }),
    ).toEqual([]);
  });
  it('checks TCP and TLS rules too', () => {
    const tcp = { match: [{ port: 27017 }], route: [{ destination: { host: 'mongo' } }] };
    expect(texts({ hosts: ['mongo'], tcp: [tcp, tcp] })).toEqual([
      'IST0131 INFO VirtualService rule #1 match #0 is not used (duplicate/overlapping match in rule #0).',
      'IST0130 WARNING VirtualService rule #1 not used (all matches used by prior rules).',
    ]);
  });
  it('says nothing about a VirtualService whose every rule can match', () => {
    expect(texts({ hosts: ['reviews'], http: [{ match: [{ uri: { prefix: '/a' } }], ...to }, to] })).toEqual([]);
  });
});

describe('IST0128 and IST0129: TLS origination without server certificate verification', () => {
  const rule = (spec: DestinationRuleSpec): ConfigObject<DestinationRuleSpec> => ({
    kind: 'DestinationRule',
    namespace: 'shop',
    name: 'db',
    spec,
  });
  it.each([
    ['SIMPLE without caCertificates', { host: 'db.example.com', trafficPolicy: { tls: { mode: 'SIMPLE' } } }, ['IST0128']],
    [
      'MUTUAL without caCertificates',
      { host: 'db.example.com', trafficPolicy: { tls: { mode: 'MUTUAL', clientCertificate: '/c', privateKey: '/k' } } },
      ['IST0128'],
    ],
    [
      'SIMPLE with caCertificates',
      { host: 'db.example.com', trafficPolicy: { tls: { mode: 'SIMPLE', caCertificates: '/etc/ca.pem' } } },
      [],
    ],
    ['ISTIO_MUTUAL', { host: 'db.example.com', trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } }, []],
    [
      'credentialName with a workloadSelector',
      {
        host: 'db.example.com',
        workloadSelector: { matchLabels: { app: 'gw' } },
        trafficPolicy: { tls: { mode: 'SIMPLE', credentialName: 'db-ca' } },
      },
      [],
    ],
    [
      'port level',
      { host: 'db.example.com', trafficPolicy: { portLevelSettings: [{ port: { number: 5432 }, tls: { mode: 'SIMPLE' } }] } },
      ['IST0129'],
    ],
  ] as Array<[string, DestinationRuleSpec, string[]]>)('%s', (_, spec, codes) => {
    expect(serverCertificateVerification(rule(spec)).map((m) => m.code)).toEqual(codes);
  });
  it('says so in Istio’s words', () => {
    expect(serverCertificateVerification(rule({ host: 'db.example.com', trafficPolicy: { tls: { mode: 'SIMPLE' } } }))[0]?.message).toBe(
      'DestinationRule shop/db in namespace shop has TLS mode set to SIMPLE but no caCertificates are set to validate server identity for host: db.example.com',
    );
  });
});
