import { readFileSync } from 'node:fs';
import { crdPath, generateTypes, typesPath } from './generate-types.js';

describe('MeshInstallation types', () => {
  it('are generated from the current CRD schema (run `make generate` when this fails)', async () => {
    const generated = await generateTypes(readFileSync(crdPath, 'utf8'));
    expect(readFileSync(typesPath, 'utf8')).toBe(generated);
  });
});
