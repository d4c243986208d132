// The xDS load generator (testing/xds-load, Go) is built on demand into the
// per-user cache, under a folder named by a digest of its source: an edited
// source never runs a stale binary, and an unchanged one is never rebuilt.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, mkdirSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { weftCacheDir } from '../cluster/binaries.js';

/** testing/xds-load in the source tree (this file runs from testing/bench or dist/testing/bench). */
export function xdsLoadSourceDir(): string {
  return fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../../testing/xds-load/' : '../xds-load/', import.meta.url));
}

function sourceDigest(dir: string): string {
  const hash = createHash('sha256');
  for (const file of readdirSync(dir).sort()) {
    if (!file.endsWith('.go') && file !== 'go.mod' && file !== 'go.sum') continue;
    hash
      .update(file)
      .update('\0')
      .update(readFileSync(join(dir, file)))
      .update('\0');
  }
  return hash.digest('hex').slice(0, 16);
}

/**
 * The load generator's path, built first if needed. Inside the network sandbox
 * (`offline`) Go may use only its module cache, so a missing module fails fast.
 */
export function ensureXdsLoad(progress: (line: string) => void = () => {}, options: { offline?: boolean } = {}): string {
  const source = xdsLoadSourceDir();
  const dest = join(weftCacheDir(), 'bin', `xds-load-${sourceDigest(source)}`);
  const binary = join(dest, 'xds-load');
  try {
    accessSync(binary, constants.X_OK);
    return binary;
  } catch {
    // not built for this source yet
  }
  progress(`building the xDS load generator (testing/xds-load) into ${dest}`);
  const partial = `${dest}.partial-${process.pid}`;
  mkdirSync(partial, { recursive: true });
  const built = spawnSync('go', ['build', '-trimpath', '-o', join(partial, 'xds-load'), '.'], {
    cwd: source,
    encoding: 'utf8',
    env: {
      ...process.env,
      CGO_ENABLED: '0',
      GOFLAGS: '-mod=readonly',
      GOTOOLCHAIN: 'local',
      ...(options.offline ? { GOPROXY: 'off' } : {}),
    },
  });
  if (built.error || built.status !== 0) {
    rmSync(partial, { recursive: true, force: true });
    throw new Error(`building testing/xds-load failed: ${built.error?.message ?? built.stderr.trim()}`);
  }
  // Published by rename so that a concurrent or interrupted build never leaves half a binary.
  rmSync(dest, { recursive: true, force: true });
  renameSync(partial, dest);
  // Builds of older sources are never run again (a running one keeps its open file).
  for (const entry of readdirSync(dirname(dest))) {
    if (/^xds-load-[0-9a-f]{16}$/.test(entry) && join(dirname(dest), entry) !== dest)
      rmSync(join(dirname(dest), entry), { recursive: true, force: true });
  }
  return binary;
}
