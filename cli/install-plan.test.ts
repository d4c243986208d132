import { readWeftCrds } from '../api/crds.js';
import { CliError } from './cli-error.js';
import { applyOrder, meshInstallationFrom, meshInstallationSpecSchema } from './install-plan.js';

const schema = meshInstallationSpecSchema(readWeftCrds());

describe('weft install plan', () => {
  it('builds a MeshInstallation from --profile and --set, typed by the CRD schema', () => {
    expect(
      meshInstallationFrom(
        {
          name: 'default',
          profile: 'minimal',
          sets: ['meshConfig.trustDomain=example.org', 'controlPlane.replicas=3', 'injection.cni=true', 'revision=1'],
        },
        schema,
      ),
    ).toEqual({
      apiVersion: 'mesh.weft.dev/v1alpha1',
      kind: 'MeshInstallation',
      metadata: { name: 'default' },
      spec: {
        profile: 'minimal',
        meshConfig: { trustDomain: 'example.org' },
        controlPlane: { replicas: 3 },
        injection: { cni: true },
        revision: '1',
      },
    });
  });

  it('starts from -f (a MeshInstallation or a spec), flags on top', () => {
    const base = {
      apiVersion: 'mesh.weft.dev/v1alpha1',
      kind: 'MeshInstallation',
      metadata: { name: 'canary' },
      spec: { profile: 'demo', revision: 'canary' },
    };
    expect(meshInstallationFrom({ name: 'default', sets: ['profile=minimal'], base }, schema)).toMatchObject({
      metadata: { name: 'canary' },
      spec: { profile: 'minimal', revision: 'canary' },
    });
  });

  it('refuses unknown fields, wrong types and values outside the enum, naming the field', () => {
    const attempt = (sets: string[], profile?: string) => () =>
      meshInstallationFrom({ name: 'default', sets, ...(profile ? { profile } : {}) }, schema);
    expect(attempt(['meshConfig.trustDomian=x'])).toThrow(CliError);
    expect(attempt(['meshConfig.trustDomian=x'])).toThrow(/spec.meshConfig has no field trustDomian \(it has: .*trustDomain/);
    expect(attempt(['controlPlane.replicas=two'])).toThrow('--set controlPlane.replicas=two: expected an integer');
    expect(attempt(['meshConfig.mtls.mode=LOOSE'])).toThrow('--set meshConfig.mtls.mode=LOOSE: must be one of STRICT, PERMISSIVE');
    expect(attempt([], 'huge')).toThrow('must be one of default, demo, minimal');
    expect(attempt(['novalue'])).toThrow('expected path=value');
    expect(() => meshInstallationFrom({ name: 'x', sets: [], base: { spec: { bogus: 1 } } }, schema)).toThrow(
      '-f: spec has no field bogus',
    );
  });

  it('applies CRDs before everything else', () => {
    const order = applyOrder([{ kind: 'Namespace' }, { kind: 'CustomResourceDefinition' }, { kind: 'Deployment' }]);
    expect(order).toEqual({ crds: [{ kind: 'CustomResourceDefinition' }], rest: [{ kind: 'Namespace' }, { kind: 'Deployment' }] });
  });
});
