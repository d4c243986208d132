// `weft manifests`: prints install.yaml (CRDs, operator, RBAC) for `kubectl apply -f`.
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { readWeftCrds } from '../api/crds.js';
import { installManifests } from '../cdk8s/install-chart.js';
import { weftVersion } from '../lib/version.js';

export function registerManifestsCommand(program: Command): void {
  program
    .command('manifests')
    .description('print install.yaml: the CRDs, the operator and its RBAC')
    .option('--image <image>', 'operator image (default ghcr.io/weft-mesh/weft:<version>)')
    .action((options: { image?: string }) => {
      const manifests = installManifests({
        version: weftVersion,
        crds: readWeftCrds(),
        ...(options.image ? { image: options.image } : {}),
      });
      process.stdout.write(manifests.map((manifest) => stringify(manifest)).join('---\n'));
    });
}
