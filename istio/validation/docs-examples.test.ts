// Every example of Istio's reference documentation (testdata/istio-docs/, taken from istio.io/api)
// is accepted without an error, whatever its kind.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { errorsOf, validateIstioObject } from './validate-istio-object.js';

const dir = join(import.meta.dirname, 'testdata', 'istio-docs');
const examples = readdirSync(dir)
  .filter((file) => file.endsWith('.yaml'))
  .flatMap((file) =>
    parseAllDocuments(readFileSync(join(dir, file), 'utf8')).map((doc, i) => {
      const object = doc.toJSON() as { kind: string; metadata?: { name?: string } };
      return [`${file} #${i} ${object.kind} ${object.metadata?.name ?? ''}`, object] as const;
    }),
  );

describe("Istio's documentation examples", () => {
  it('are all here', () => {
    expect(examples.length).toBeGreaterThan(60);
  });

  it.each(examples)('accepts %s', (_name, object) => {
    expect(errorsOf(validateIstioObject(object))).toEqual([]);
  });
});
