import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { expectMatchesGolden } from '../testing/jest/golden.js';
import { expandConfigDump, type ConfigDump } from './config-dump.js';
import { proxyConfigData, proxyConfigTable, type ResourceKind } from './proxy-config-tables.js';
import { maskPrivateKeys, redacted } from './secret-masking.js';
import { renderTable } from './table.js';

const testdata = join(import.meta.dirname, 'testdata');
const dumpOf = (name: string) =>
  maskPrivateKeys(expandConfigDump(JSON.parse(readFileSync(join(testdata, `config-dump-${name}.json`), 'utf8')) as ConfigDump));
const now = new Date('2027-01-01T00:00:00Z');

describe('proxy-config tables', () => {
  // Fixtures are weftd config dumps (generated resources, encoded and decoded as /debug/config_dump does).
  it.each([
    ['sidecar', 'clusters'],
    ['sidecar', 'listeners'],
    ['sidecar', 'routes'],
    ['sidecar', 'endpoints'],
    ['sidecar', 'secrets'],
    ['grpc', 'clusters'],
    ['grpc', 'listeners'],
    ['grpc', 'routes'],
    ['grpc', 'endpoints'],
  ] as Array<[string, ResourceKind]>)('%s %s match their golden table', (proxy, kind) => {
    expectMatchesGolden(join(testdata, `${proxy}-${kind}.txt`), renderTable(proxyConfigTable(dumpOf(proxy), kind, now)));
  });

  it('unpacks typed configs so the raw output reads like Envoy config', () => {
    expectMatchesGolden(join(testdata, 'grpc-listeners.yaml'), stringify(proxyConfigData(dumpOf('grpc'), 'listeners')));
  });

  it('never prints a private key, in tables or raw output', () => {
    const raw = JSON.parse(readFileSync(join(testdata, 'config-dump-sidecar.json'), 'utf8')) as ConfigDump;
    const secretKey = (raw.configs.at(-1)?.resources[0] as any).tls_certificate.private_key.inline_bytes as string;
    expect(Buffer.from(secretKey, 'base64').toString()).toContain('PRIVATE KEY');
    const dump = dumpOf('sidecar');
    const everything = JSON.stringify(proxyConfigData(dump, 'all'));
    expect(everything).not.toContain(secretKey);
    expect(everything).not.toContain('PRIVATE KEY');
    expect((proxyConfigData(dump, 'secrets') as any[])[0].tls_certificate.private_key).toBe(redacted);
    expect(renderTable(proxyConfigTable(dump, 'secrets', now))).not.toContain(secretKey.slice(0, 20));
  });

  it('masks keys hidden in PEM strings and base64 bytes anywhere', () => {
    const pem = '-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n';
    const masked = maskPrivateKeys({
      a: [{ inline_string: pem }],
      b: { value: Buffer.from(`xx${pem}yy`).toString('base64') },
      keep: 'hello',
    });
    expect(masked).toEqual({ a: [{ inline_string: redacted }], b: { value: redacted }, keep: 'hello' });
  });
});
