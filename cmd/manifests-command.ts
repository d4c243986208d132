// `weft manifests`: prints install.yaml (CRDs, operator, RBAC) for `kubectl apply -f`.
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { readGatewayApiCrds, readWeftCrds } from '../api/crds.js';
import { installManifests } from '../cdk8s/install-chart.js';
import { weftVersion } from '../lib/version.js';

export function registerManifestsCommand(program: Command): void {
  program
    .command('manifests')
    .description('print install.yaml: the CRDs, the operator and its RBAC')
    .option('--image <image>', 'operator image (default ghcr.io/weft-mesh/weft:<version>)')
    .option('--no-gateway-api-crds', "leave out the Kubernetes Gateway API's CRDs (for a cluster that already has them)")
    .action((options: { image?: string; gatewayApiCrds: boolean }) => {
      const manifests = installManifests({
        version: weftVersion,
        crds: readWeftCrds(),
        ...(options.gatewayApiCrds ? { gatewayApiCrds: readGatewayApiCrds() } : {}),
        ...(options.image ? { image: options.image } : {}),
      });
      process.stdout.write(manifests.map((manifest) => stringify(manifest)).join('---\n'));
    });
}
