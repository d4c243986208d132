import { join } from 'node:path';
import { expectMatchesGolden } from '../testing/jest/golden.js';
import { analysisReport, exitAnalyzerFoundIssues, exitFileParseError } from './analysis-output.js';
import { readObjectFiles } from './analyze-command.js';
import { analyzeMesh, carriesWorkloads, credentialSecretsToRead, type SourcedObject } from './mesh-analysis.js';

// Relative paths: they are printed as each message's origin.
const mesh = 'cli/testdata/analyze/mesh.yaml';
const clean = 'cli/testdata/analyze/clean.yaml';
const golden = (name: string) => join(import.meta.dirname, 'testdata', 'analyze', name);

describe('weft analyze', () => {
  const { objects, parseErrors } = readObjectFiles([mesh]);
  const messages = analyzeMesh(objects, { workloadsKnown: carriesWorkloads(objects), rootNamespace: 'weft-system' });

  it('finds each kind of problem with Istio codes, printed as istioctl analyze does', () => {
    expect(parseErrors).toEqual([]);
    expect(new Set(messages.map((m) => m.code))).toEqual(
      new Set([
        'IST0101',
        'IST0102',
        'IST0103',
        'IST0106',
        'IST0107',
        'IST0108',
        'IST0109',
        'IST0118',
        'IST0123',
        'IST0127',
        'IST0128',
        'IST0130',
        // DestinationRule shop/external-tls originates TLS, which proxyless gRPC clients do not (they connect in plaintext).
        'WEFT0005',
      ]),
    );
    const report = analysisReport(messages, { format: 'log', target: mesh });
    expectMatchesGolden(golden('mesh.txt'), report.stdout);
    expect(report.exitCode).toBe(exitAnalyzerFoundIssues);
    expect(report.stderr).toMatch(/^Error: Analyzers found issues when analyzing cli\/testdata\/analyze\/mesh.yaml\.\nSee https/);
  });

  it('renders the same messages as JSON and YAML, with istioctl field names', () => {
    expectMatchesGolden(golden('mesh.json'), analysisReport(messages, { format: 'json', target: mesh }).stdout);
    expectMatchesGolden(
      golden('mesh-errors.yaml'),
      analysisReport(messages, { format: 'yaml', target: mesh, outputThreshold: 'Error' }).stdout,
    );
    // Structured output never fails the command, as with istioctl.
    expect(analysisReport(messages, { format: 'json', target: mesh }).exitCode).toBe(0);
  });

  it('scopes to namespaces, and the thresholds decide what prints and what fails', () => {
    const plain = analyzeMesh(objects, { namespaces: new Set(['plain']) });
    expect(plain.map((m) => `${m.code} ${m.resource.kind} ${m.resource.name}`)).toEqual(['IST0102 Namespace plain']);
    const infoOnly = analysisReport(plain, { format: 'log', target: 'namespace: plain' });
    expect(infoOnly.exitCode).toBe(0);
    expect(analysisReport(plain, { format: 'log', target: 'namespace: plain', failureThreshold: 'Info' }).exitCode).toBe(
      exitAnalyzerFoundIssues,
    );
    expect(analysisReport(plain, { format: 'log', target: 'namespace: plain', outputThreshold: 'Warning' }).stdout).toBe('');
  });

  it('says so when there is nothing to report, and exits 65 on files that do not parse', () => {
    const ok = readObjectFiles([clean]);
    const report = analysisReport(analyzeMesh(ok.objects), { format: 'log', target: clean });
    expect(report).toEqual({ stdout: '', stderr: `\u2714 No validation issues found when analyzing ${clean}.\n`, exitCode: 0 });
    const broken = readObjectFiles(['cli/testdata/analyze/does-not-exist.yaml']);
    expect(broken.parseErrors).toHaveLength(1);
    expect(analysisReport([], { format: 'log', target: 'x', parseErrors: broken.parseErrors }).exitCode).toBe(exitFileParseError);
  });

  it('without workloads to check against, selectors are not judged', () => {
    const configOnly = objects.filter(({ object }) => object.kind !== 'Pod');
    expect(analyzeMesh(configOnly, { workloadsKnown: carriesWorkloads(configOnly) }).some((m) => m.code === 'IST0127')).toBe(false);
  });

  describe("gateway.SecretAnalyzer: a Gateway's credentialName Secret, in its workloads' namespace", () => {
    const gateway = (selector: Record<string, string>): SourcedObject => ({
      object: {
        apiVersion: 'networking.istio.io/v1',
        kind: 'Gateway',
        metadata: { name: 'edge', namespace: 'shop' },
        spec: {
          selector,
          servers: [
            {
              port: { number: 443, name: 'https', protocol: 'HTTPS' },
              hosts: ['shop.example.com'],
              tls: { mode: 'SIMPLE', credentialName: 'shop-cert' },
            },
          ],
        },
      },
    });
    const pod: SourcedObject = {
      object: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'edge-0', namespace: 'gateways', labels: { app: 'edge' } } },
    };
    const secret = (namespace: string): SourcedObject => ({
      object: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'shop-cert', namespace } },
    });
    const ist0101 = (objects: SourcedObject[], options: Parameters<typeof analyzeMesh>[1] = {}) =>
      analyzeMesh(objects, { workloadsKnown: true, secretsKnown: true, ...options })
        .filter((m) => m.code === 'IST0101' && m.resource.kind === 'Gateway')
        .map((m) => m.message);

    it("reports a Secret missing from the namespace of the selected pods, in Istio's words", () => {
      expect(ist0101([gateway({ app: 'edge' }), pod, secret('shop')])).toContain('Referenced credentialName not found: "shop-cert"');
      expect(ist0101([gateway({ app: 'edge' }), pod, secret('gateways')])).not.toContain(
        'Referenced credentialName not found: "shop-cert"',
      );
    });

    it('says nothing of Secrets it could not read, or when the Secrets are unknown', () => {
      const objects = [gateway({ app: 'edge' }), pod];
      expect(ist0101(objects, { unreadableSecrets: new Set(['gateways/shop-cert']) })).not.toContain(
        'Referenced credentialName not found: "shop-cert"',
      );
      expect(ist0101(objects, { secretsKnown: false })).not.toContain('Referenced credentialName not found: "shop-cert"');
    });

    it('prints a selector no pod matches once, though two analyzers find it', () => {
      expect(ist0101([gateway({ app: 'nothing' }), pod])).toEqual(['Referenced selector not found: "app=nothing"']);
    });

    it('lists the Secrets to read by name, and only those the input lacks', () => {
      expect(credentialSecretsToRead([gateway({ app: 'edge' }), pod])).toEqual([{ namespace: 'gateways', name: 'shop-cert' }]);
      expect(credentialSecretsToRead([gateway({ app: 'edge' }), pod, secret('gateways')])).toEqual([]);
      expect(credentialSecretsToRead([gateway({ app: 'edge' }), pod], { namespaces: new Set(['other']) })).toEqual([]);
    });
  });
});
