// The vendored Gateway API CRDs: the standard channel of the pinned release, every kind weftd watches
// served at the version it reads, and install.yaml carrying them unless asked not to.
import { readGatewayApiCrds, readWeftCrds } from '../api/crds.js';
import { installManifests } from '../cdk8s/install-chart.js';
import { gatewayApiVersion } from '../crds/gateway-api/vendor-gateway-api-crds.js';
import { gatewayApiKinds } from './gateway-api-config.js';

type Crd = {
  metadata: { name: string; annotations?: Record<string, string> };
  spec: { group: string; names: { plural: string }; versions: Array<{ name: string; served: boolean }> };
};

describe('vendored Gateway API CRDs', () => {
  const crds = readGatewayApiCrds() as unknown as Crd[];

  it("are the standard channel of the pinned release, unchanged (the channel's own annotations kept)", () => {
    expect(crds.length).toBeGreaterThan(0);
    for (const crd of crds) {
      expect(crd.spec.group).toBe('gateway.networking.k8s.io');
      expect(crd.metadata.annotations?.['gateway.networking.k8s.io/channel']).toBe('standard');
      expect(crd.metadata.annotations?.['gateway.networking.k8s.io/bundle-version']).toBe(gatewayApiVersion);
    }
  });

  it('serve every kind weftd watches at the version it reads', () => {
    for (const { plural, version } of gatewayApiKinds) {
      const crd = crds.find((c) => c.spec.names.plural === plural);
      expect(crd?.spec.versions.find((v) => v.name === version)?.served).toBe(true);
    }
  });

  it('go into install.yaml after Weft and Istio CRDs, and stay out when left out', () => {
    const kinds = (manifests: ReturnType<typeof installManifests>) =>
      manifests.filter((m) => m.kind === 'CustomResourceDefinition').map((m) => (m.metadata as { name: string }).name);
    const weftCrds = readWeftCrds();
    const withThem = kinds(installManifests({ version: 'test', crds: weftCrds, gatewayApiCrds: readGatewayApiCrds() }));
    const without = kinds(installManifests({ version: 'test', crds: weftCrds }));
    expect(withThem).toContain('httproutes.gateway.networking.k8s.io');
    expect(withThem.slice(0, without.length)).toEqual(without);
    expect(without.some((name) => name.endsWith('.gateway.networking.k8s.io'))).toBe(false);
  });
});
