import { readFileSync } from 'node:fs';

function readVersion(): string {
  // package.json sits at the repository root, two levels above both lib/ and dist/lib/.
  for (const relative of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(relative, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'weft' && pkg.version) return pkg.version;
    } catch {
      // try the next location
    }
  }
  return '0.0.0-unknown';
}

export const weftVersion = readVersion();
