import { generateKeyPairSync } from 'node:crypto';
import { CsrError, parseCsr } from '../../ca/pki/csr.js';
import { buildCsr } from '../fixtures/csr.js';
import { mutateCsr } from './csr-mutations.js';
import { seededRandom } from './seeded-random.js';

describe('CSR mutation', () => {
  const csr = buildCsr(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }));

  it('changes the request, and the CA parser refuses (or, rarely, accepts) every mutation with a CsrError, never another exception', () => {
    const random = seededRandom(11);
    const mutations = new Set<string>();
    let refused = 0;
    for (let i = 0; i < 500; i++) {
      const { pem, mutation } = mutateCsr(csr, random);
      mutations.add(mutation.replace(/^node \d+: /, ''));
      try {
        parseCsr(pem);
      } catch (error) {
        expect(error).toBeInstanceOf(CsrError);
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(400);
    expect(mutations.size).toBeGreaterThan(10);
  });
});
