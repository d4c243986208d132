// `weft install`: install.yaml (CRDs, operator, RBAC) and a MeshInstallation,
// server-side applied; with --wait, progress until the mesh is Ready.
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { parse, stringify } from 'yaml';
import { readGatewayApiCrds, readWeftCrds } from '../api/crds.js';
import { installManifests, operatorNamespace } from '../cdk8s/install-chart.js';
import { parseDurationSeconds } from '../lib/duration.js';
import { weftVersion } from '../lib/version.js';
import { CliError } from './cli-error.js';
import type { ClusterConnection, ConnectionOptions } from './cluster-connection.js';
import { connect, print, withConnectionOptions } from './command-options.js';
import { applyOrder, meshInstallationFrom, meshInstallationSpecSchema, type Json } from './install-plan.js';
import { isHealthy, progressLines, upToDate } from './installation-status.js';
import { statusCodeOf } from './kube-error-message.js';
import { readMeshHealth } from './mesh-health-reader.js';
import { ServerSideApply, type ApiObject } from './server-side-apply.js';

export const installFieldManager = 'weft-install';

interface InstallOptions extends ConnectionOptions {
  profile?: string;
  set: string[];
  filename?: string;
  name: string;
  image?: string;
  wait?: boolean;
  timeout: string;
  dryRun?: boolean;
  /** False with --no-gateway-api-crds. */
  gatewayApiCrds: boolean;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const describe = (o: ApiObject) => `${o.kind}/${o.metadata?.name}${o.metadata?.namespace ? ` in ${o.metadata.namespace}` : ''}`;

async function waitForCrds(connection: ClusterConnection, objects: ServerSideApply, crds: ApiObject[], deadline: number): Promise<void> {
  for (const crd of crds) {
    for (;;) {
      const current = await connection.call(`reading ${describe(crd)}`, () =>
        objects.read<ApiObject & { status?: { conditions?: Array<{ type: string; status: string }> } }>(crd),
      );
      if (current?.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) break;
      if (Date.now() > deadline)
        throw new CliError(`${describe(crd)} was not Established in time; check \`kubectl get crd ${crd.metadata?.name} -o yaml\``);
      await sleep(250);
    }
  }
}

/** Right after its CRD is Established the API server may not serve a kind yet: a 404 is retried briefly. */
async function applyWhenServed(connection: ClusterConnection, objects: ServerSideApply, object: ApiObject): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      await objects.apply(object);
      return;
    } catch (error) {
      if (statusCodeOf(error) !== 404 || Date.now() > deadline) throw connection.explain(error, `applying ${describe(object)}`);
      await sleep(300);
    }
  }
}

async function waitUntilReady(connection: ClusterConnection, name: string, namespace: string, timeoutSeconds: number): Promise<void> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  let previous = new Set<string>();
  for (;;) {
    // Right after CRDs change the API server may briefly answer 503; the wait rides over it.
    const health = await readMeshHealth(connection, { only: name, allowNone: true }).catch((error: unknown) => error as Error);
    const last = health instanceof Error ? [`(${health.message})`] : progressLines(health);
    for (const line of last) if (!previous.has(line)) print(`  ${line}\n`);
    previous = new Set(last);
    if (!(health instanceof Error) && health.installations.length > 0 && upToDate(health) && isHealthy(health)) {
      print(`✔ the mesh is Ready (MeshInstallation ${name}, control plane in ${namespace})\n`);
      return;
    }
    if (Date.now() > deadline) {
      throw new CliError(
        [
          `the mesh was not Ready within ${Math.round(timeoutSeconds)} s. Last seen:`,
          ...last.map((line) => `  ${line}`),
          'Check next:',
          '  weft status',
          `  kubectl -n ${operatorNamespace} logs deployment/weft-operator`,
          `  kubectl get meshinstallation ${name} -o yaml`,
          `  kubectl -n ${namespace} get pods,events`,
        ].join('\n'),
      );
    }
    await sleep(1000);
  }
}

export function registerInstallCommand(program: Command): void {
  withConnectionOptions(program.command('install'))
    .description('install Weft: server-side apply install.yaml (CRDs, operator, RBAC) and a MeshInstallation')
    .addOption(
      new Option('--profile <profile>', 'preset of defaults (default: the CRD default, `default`)').choices(['default', 'demo', 'minimal']),
    )
    .option(
      '--set <path=value>',
      'a MeshInstallation spec field, e.g. meshConfig.trustDomain=example.org (repeatable)',
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .option('-f, --filename <file>', 'a MeshInstallation (or its spec) to start from; --profile and --set apply on top')
    .option('--name <name>', 'name of the MeshInstallation', 'default')
    .option('--image <image>', `operator image (default ghcr.io/weft-mesh/weft:${weftVersion})`)
    .option('--wait', 'wait until the MeshInstallation is Ready and weftd serves, printing progress')
    .option('--timeout <duration>', 'how long --wait waits', '5m')
    .option('--dry-run', 'print what would be applied, apply nothing')
    .option('--no-gateway-api-crds', "leave out the Kubernetes Gateway API's CRDs (for a cluster that already has them)")
    .action(async (options: InstallOptions) => {
      const crds = readWeftCrds();
      let base: Json | undefined;
      if (options.filename) {
        try {
          base = parse(readFileSync(options.filename, 'utf8')) as Json;
        } catch (error) {
          throw new CliError(`cannot read ${options.filename}: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
      const installation = meshInstallationFrom(
        { name: options.name, sets: options.set, ...(options.profile ? { profile: options.profile } : {}), ...(base ? { base } : {}) },
        meshInstallationSpecSchema(crds),
      ) as unknown as ApiObject & { spec: { namespace?: string } };
      const manifests = installManifests({
        version: weftVersion,
        crds,
        ...(options.gatewayApiCrds ? { gatewayApiCrds: readGatewayApiCrds() } : {}),
        ...(options.image ? { image: options.image } : {}),
      }) as ApiObject[];
      const timeoutSeconds = (() => {
        try {
          return parseDurationSeconds(options.timeout);
        } catch (error) {
          throw new CliError(`--timeout: ${(error as Error).message}`);
        }
      })();
      if (options.dryRun) {
        print([...manifests, installation].map((m) => stringify(m)).join('---\n'));
        return;
      }

      const connection = connect(options);
      const objects = new ServerSideApply(connection, installFieldManager);
      const { crds: crdObjects, rest } = applyOrder(manifests);
      const deadline = Date.now() + timeoutSeconds * 1000;
      print(`Installing Weft ${weftVersion} on ${connection.server}\n`);
      for (const crd of crdObjects) await applyWhenServed(connection, objects, crd);
      await waitForCrds(connection, objects, crdObjects, deadline);
      print(`✔ ${crdObjects.length} CustomResourceDefinitions applied and established\n`);
      for (const object of rest) await applyWhenServed(connection, objects, object);
      print(`✔ operator applied (${rest.map(describe).join(', ')})\n`);
      await applyWhenServed(connection, objects, installation);
      const namespace =
        ((
          await connection.call('reading the MeshInstallation', () =>
            objects.read<ApiObject & { spec?: { namespace?: string } }>(installation),
          )
        )?.spec?.namespace ??
          installation.spec.namespace) ||
        'weft-system';
      print(`✔ MeshInstallation ${installation.metadata?.name} applied (control plane in ${namespace})\n`);
      if (!options.wait) {
        print('The operator now installs the control plane; follow it with `weft status` (or install with --wait).\n');
        return;
      }
      print('Waiting for the mesh to be Ready:\n');
      await waitUntilReady(connection, installation.metadata?.name ?? options.name, namespace, Math.max(1, (deadline - Date.now()) / 1000));
    });
}
