// The CRDs install.yaml carries, read from crds/ (shipped beside dist/ in the image): Weft's own
// (crds/*.yaml) and Istio's, vendored unchanged (crds/istio/*.yaml, see crds/istio/vendor-istio-crds.ts),
// and the Kubernetes Gateway API's standard channel (crds/gateway-api/, see vendor-gateway-api-crds.ts).
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

function readCrdFiles(dir: URL): Array<Record<string, unknown>> {
  return readdirSync(dir)
    .filter((file) => file.endsWith('.yaml'))
    .sort()
    .flatMap((file) => parseAllDocuments(readFileSync(new URL(file, dir), 'utf8')).map((doc) => doc.toJSON() as Record<string, unknown>));
}

/** Weft's own CRDs first, then Istio's (networking, security, telemetry). */
export function readWeftCrds(): Array<Record<string, unknown>> {
  const dir = crdDirectory();
  return [...readCrdFiles(dir), ...readCrdFiles(new URL('istio/', dir))];
}

/**
 * The Kubernetes Gateway API's standard channel CRDs (crds/gateway-api/), kept apart from readWeftCrds
 * because a cluster may already have them (another controller's, or a newer release): install.yaml
 * carries them unless `weft manifests --no-gateway-api-crds` says otherwise.
 */
export function readGatewayApiCrds(): Array<Record<string, unknown>> {
  return readCrdFiles(new URL('gateway-api/', crdDirectory()));
}
