import { ApiException } from '@kubernetes/client-node';
import { ApiStatusError, connectionFailure, describeKubeError } from './kube-error-message.js';

const server = 'https://10.0.0.1:6443';

describe('Kubernetes errors for people', () => {
  it('names the API server and the low-level cause when it cannot be reached', () => {
    const refused = new TypeError('fetch failed', {
      cause: Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:6443'), { code: 'ECONNREFUSED', syscall: 'connect' }),
    });
    expect(connectionFailure(refused)).toBe('connect ECONNREFUSED 10.0.0.1:6443');
    expect(describeKubeError(refused, server, 'listing MeshInstallations')).toBe(
      'cannot reach the Kubernetes API at https://10.0.0.1:6443: connect ECONNREFUSED 10.0.0.1:6443; check your kubeconfig/context',
    );
    const tls = Object.assign(new Error('unable to verify the first certificate'), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
    expect(describeKubeError(tls, server, 'x')).toMatch(/^cannot reach the Kubernetes API at .*: unable to verify the first certificate;/);
  });

  it('says credentials were refused, or what was forbidden, in the API server words', () => {
    expect(
      describeKubeError(new ApiException(401, 'Unauthorized', '{"message":"Unauthorized"}', {}), server, 'listing MeshInstallations'),
    ).toBe(
      'the Kubernetes API at https://10.0.0.1:6443 did not accept your credentials (401 Unauthorized) while listing MeshInstallations; check your kubeconfig/context',
    );
    const forbidden = ApiStatusError.from(
      403,
      JSON.stringify({ kind: 'Status', message: 'pods "weftd-1" is forbidden: User "dev" cannot get resource "pods/proxy"' }),
    );
    expect(describeKubeError(forbidden, server, 'reading /debug/syncz')).toBe(
      'reading /debug/syncz: forbidden: pods "weftd-1" is forbidden: User "dev" cannot get resource "pods/proxy"',
    );
    expect(describeKubeError(ApiStatusError.from(500, 'oops'), server, 'applying X')).toBe('applying X: oops');
  });
});
