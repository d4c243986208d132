// Golden files: expected output kept beside the test in testdata/, reviewed in
// diffs. `UPDATE_GOLDEN=1 make test-unit` rewrites them.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export function expectMatchesGolden(path: string, actual: string): void {
  if (process.env['UPDATE_GOLDEN'] === '1') {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, actual);
    return;
  }
  if (!existsSync(path)) throw new Error(`golden file ${path} is missing; create it with UPDATE_GOLDEN=1 make test-unit and review it`);
  expect(actual).toBe(readFileSync(path, 'utf8'));
}
