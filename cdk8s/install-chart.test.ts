import { isDeepStrictEqual } from 'node:util';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { readWeftCrds } from '../api/crds.js';
import { expectMatchesGolden } from '../testing/jest/golden.js';
import { installManifests } from './install-chart.js';
import { operatorClusterRules, weftdClusterRules } from './rbac.js';

const testdata = join(import.meta.dirname, 'testdata');

interface Crd {
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec: { group: string; names: { kind: string }; versions: Array<{ name: string; served: boolean; storage: boolean }> };
}

describe('install chart', () => {
  const crds = readWeftCrds();
  const manifests = installManifests({ version: '0.1.0', crds });

  it('synthesizes install.yaml exactly as reviewed (CRDs by name and versions; their schemas are crds/)', () => {
    const summarized = manifests.map((m) => {
      if (m.kind !== 'CustomResourceDefinition') return m;
      const crd = m as unknown as Crd;
      return {
        apiVersion: m.apiVersion,
        kind: m.kind,
        metadata: crd.metadata,
        spec: {
          group: crd.spec.group,
          kind: crd.spec.names.kind,
          versions: crd.spec.versions.map((v) => ({ name: v.name, served: v.served, storage: v.storage })),
        },
      };
    });
    expectMatchesGolden(join(testdata, 'install.yaml'), summarized.map((m) => stringify(m)).join('---\n'));
  });

  it("installs Istio's networking, security and telemetry CRDs unchanged, with every served version", () => {
    const installed = manifests.filter((m) => m.kind === 'CustomResourceDefinition') as unknown as Crd[];
    const istio = installed.filter((crd) => crd.spec.group.endsWith('.istio.io'));
    expect(istio.map((crd) => `${crd.spec.names.kind}.${crd.spec.group}`).sort()).toEqual(
      [
        'AuthorizationPolicy.security.istio.io',
        'DestinationRule.networking.istio.io',
        'Gateway.networking.istio.io',
        'PeerAuthentication.security.istio.io',
        'RequestAuthentication.security.istio.io',
        'ServiceEntry.networking.istio.io',
        'Sidecar.networking.istio.io',
        'Telemetry.telemetry.istio.io',
        'VirtualService.networking.istio.io',
        'WorkloadEntry.networking.istio.io',
        'WorkloadGroup.networking.istio.io',
      ].sort(),
    );
    const vs = istio.find((crd) => crd.spec.names.kind === 'VirtualService');
    expect(vs?.spec.versions.filter((v) => v.served).map((v) => v.name)).toEqual(['v1', 'v1alpha3', 'v1beta1']);
    // Synthesis leaves the vendored objects untouched (schemas, CEL rules).
    for (const crd of istio) {
      const source = crds.find((c) => (c as unknown as Crd).metadata.name === crd.metadata.name) as unknown as Crd;
      expect(isDeepStrictEqual(crd.spec, source.spec)).toBe(true);
      expect(crd.metadata.labels).toEqual({ 'app.kubernetes.io/part-of': 'weft' });
    }
    expect(JSON.stringify(vs)).toContain('x-kubernetes-validations');
  });

  it('grants weftd (and so the operator) read access to Istio config and write access to its status only', () => {
    for (const rules of [weftdClusterRules, operatorClusterRules]) {
      const istioRules = rules.filter((r) => r.apiGroups?.some((g) => g.endsWith('.istio.io')));
      expect(istioRules.flatMap((r) => r.resources ?? []).filter((r) => r.includes('*'))).toEqual([]);
      for (const rule of istioRules) {
        const status = (rule.resources ?? []).every((r) => r.endsWith('/status'));
        expect(rule.verbs).toEqual(status ? ['update', 'patch'] : ['get', 'list', 'watch']);
      }
      expect(istioRules.flatMap((r) => r.resources ?? [])).toEqual(
        expect.arrayContaining(['virtualservices', 'virtualservices/status', 'authorizationpolicies/status', 'telemetries']),
      );
    }
  });
});
