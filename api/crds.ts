// Weft's own CRDs, read from crds/ (shipped beside dist/ in the image).
import { readFileSync, readdirSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';

function crdDirectory(): URL {
  // From source (api/) and from the build (dist/api/), crds/ sits at the repository root.
  for (const relative of ['../crds/', '../../crds/']) {
    const url = new URL(relative, import.meta.url);
    try {
      readdirSync(url);
      return url;
    } catch {
      // try the next location
    }
  }
  throw new Error('crds/ not found beside the weft installation');
}

export function readWeftCrds(): Array<Record<string, unknown>> {
  const dir = crdDirectory();
  return readdirSync(dir)
    .filter((file) => file.endsWith('.yaml'))
    .sort()
    .flatMap((file) => parseAllDocuments(readFileSync(new URL(file, dir), 'utf8')).map((doc) => doc.toJSON() as Record<string, unknown>));
}
