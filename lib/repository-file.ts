import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * A file shipped with Weft (a proto, a CRD), found from a module both when run
 * from source (x/y.ts) and from the build (dist/x/y.js), by walking up.
 */
export function repositoryFile(relativePath: string, fromModuleUrl: string): string {
  let dir = new URL('./', fromModuleUrl);
  for (let depth = 0; depth < 6; depth++) {
    const candidate = new URL(relativePath, dir);
    if (existsSync(candidate)) return fileURLToPath(candidate);
    dir = new URL('../', dir);
  }
  throw new Error(`${relativePath} not found above ${fileURLToPath(fromModuleUrl)}; is the installation complete?`);
}
