// `weft analyze`: istioctl analyze for Weft. Live (the cluster's Services, Istio
// config, namespaces and pods), offline (`-f` files and directories), or files
// over the live cluster (`-f ... --use-kube`). Thin I/O around mesh-analysis.ts.
import { gatewayApiKinds } from '../gatewayapi/gateway-api-config.js';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { CoreV1Api, CustomObjectsApi, DiscoveryV1Api } from '@kubernetes/client-node';
import { Option, type Command } from 'commander';
import { parseAllDocuments } from 'yaml';
import { meshInstallationApi, type MeshInstallation } from '../api/mesh-installation.js';
import { operatorNamespace } from '../cdk8s/install-chart.js';
import { isNotFound, statusCode } from '../kube/client.js';
import { analysisReport } from './analysis-output.js';
import type { ClusterConnection, ConnectionOptions } from './cluster-connection.js';
import { connect, withConnectionOptions } from './command-options.js';
import {
  analyzeMesh,
  analyzersAsString,
  carriesWorkloads,
  credentialSecretsToRead,
  type AnalysisOptions,
  messageLevels,
  type KubeObject,
  type MessageLevel,
  type SourcedObject,
} from './mesh-analysis.js';

interface AnalyzeOptions extends ConnectionOptions {
  filename: string[];
  useKube?: boolean;
  namespace?: string;
  allNamespaces?: boolean;
  output: 'log' | 'json' | 'yaml';
  failureThreshold: string;
  outputThreshold: string;
  istioNamespace?: string;
  listAnalyzers?: boolean;
}

const fileExtensions = new Set(['.yaml', '.yml', '.json']);
const istioGroups = [
  {
    group: 'networking.istio.io',
    plurals: ['virtualservices', 'destinationrules', 'serviceentries', 'workloadentries', 'workloadgroups', 'sidecars', 'gateways'],
  },
  { group: 'security.istio.io', plurals: ['peerauthentications', 'authorizationpolicies', 'requestauthentications'] },
  { group: 'telemetry.istio.io', plurals: ['telemetries'] },
];

function levelOf(value: string, flag: string): MessageLevel {
  const level = messageLevels.find((l) => l.toLowerCase() === value.toLowerCase());
  if (!level) throw new Error(`--${flag} must be one of ${messageLevels.join(', ')}`);
  return level;
}

/** Files named, and the .yaml/.yml/.json files under directories named. */
function gatherFiles(paths: readonly string[]): string[] {
  return paths.flatMap((path) => {
    if (!statSync(path).isDirectory()) return [path];
    return readdirSync(path, { recursive: true, encoding: 'utf8' })
      .map((entry) => join(path, entry))
      .filter((file) => fileExtensions.has(extname(file)) && statSync(file).isFile())
      .sort();
  });
}

/** Every object of every document of the files (List items unpacked); files that do not parse are named. */
export function readObjectFiles(files: readonly string[]): { objects: SourcedObject[]; parseErrors: string[] } {
  const objects: SourcedObject[] = [];
  const parseErrors: string[] = [];
  for (const file of files) {
    try {
      for (const document of parseAllDocuments(readFileSync(file, 'utf8'))) {
        if (document.errors.length > 0) throw new Error(document.errors[0]?.message);
        const value = document.toJS() as (KubeObject & { items?: KubeObject[] }) | null;
        if (!value || typeof value !== 'object') continue;
        for (const object of value.kind === 'List' || value.kind?.endsWith('List') ? (value.items ?? []) : [value])
          if (object?.kind) objects.push({ object, origin: file });
      }
    } catch (error) {
      parseErrors.push(`${file}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return { objects, parseErrors };
}

interface LiveState {
  objects: SourcedObject[];
  controlPlaneNamespaces: Set<string>;
  injectionLabel?: string;
  rootNamespace?: string;
  revisions?: string[];
  honorIstioLabels?: boolean;
  meshTelemetry?: AnalysisOptions['meshTelemetry'];
}

/** What the analysis needs from the cluster; Istio kinds whose CRD is not installed are skipped. */
async function readCluster(connection: ClusterConnection): Promise<LiveState> {
  const core = connection.config.makeApiClient(CoreV1Api);
  const custom = connection.config.makeApiClient(CustomObjectsApi);
  const discovery = connection.config.makeApiClient(DiscoveryV1Api);
  const typed = <T extends object>(kind: string, items: T[]) =>
    items.map((object): SourcedObject => ({ object: { apiVersion: 'v1', kind, ...object } as KubeObject }));
  // A CRD just established answers 503 ("storage is (re)initializing") for a moment: retried, as kubectl's client would.
  const listCustom = async (group: string, version: string, plural: string): Promise<KubeObject[]> => {
    for (let attempt = 0; ; attempt++) {
      try {
        const list = (await custom.listClusterCustomObject({ group, version, plural })) as { items?: KubeObject[] };
        return list.items ?? [];
      } catch (error) {
        if (isNotFound(error)) return [];
        const code = statusCode(error);
        const transient = code === 503 || code === 429 || /storage is \(re\)initializing/.test(String((error as Error).message ?? error));
        if (!transient || attempt >= 20) throw error;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  };
  // A CRD just established answers 503 ("storage is (re)initializing") for a moment: retried, as kubectl's
  // client would; an optional kind still unreadable after that is left out of the analysis rather than failing it.
  const listOptional = async (group: string, version: string, plural: string): Promise<KubeObject[]> => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await listCustom(group, version, plural);
      } catch (error) {
        const code = statusCode(error);
        if (code !== 503 && code !== 429) throw error;
        if (attempt >= 10) return [];
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  };
  const [namespaces, pods, services, slices, installations, ...istio] = await connection.call('reading the cluster for analysis', () =>
    Promise.all([
      core.listNamespace(),
      core.listPodForAllNamespaces(),
      core.listServiceForAllNamespaces(),
      // The endpoints make the workloads the model knows, as weftd's: what selectors and policies are checked against.
      discovery.listEndpointSliceForAllNamespaces(),
      listCustom(meshInstallationApi.group, meshInstallationApi.version, meshInstallationApi.plural),
      ...istioGroups.flatMap(({ group, plurals }) => plurals.map((plural) => listCustom(group, 'v1', plural))),
      // The Gateway API, where its CRDs are installed: its statuses are checked as weftd computes them.
      ...gatewayApiKinds.map(({ plural, version }) => listOptional('gateway.networking.k8s.io', version, plural)),
    ]),
  );
  const meshes = installations as unknown as MeshInstallation[];
  const controlPlaneNamespaces = new Set([
    operatorNamespace,
    ...meshes.map((m) => m.spec?.namespace ?? 'weft-system'),
    ...namespaces.items.filter((n) => n.metadata?.labels?.['app.kubernetes.io/part-of'] === 'weft').map((n) => n.metadata?.name ?? ''),
  ]);
  const injectionLabel = meshes.find((m) => m.spec?.injection?.namespaceLabel)?.spec.injection?.namespaceLabel;
  const rootNamespace = meshes[0]?.spec?.namespace;
  // The mesh's telemetry providers, as weftd reads them (the MeshInstallation's meshConfig).
  const meshConfig = meshes[0]?.spec?.meshConfig;
  const meshTelemetry = meshConfig
    ? {
        ...(meshConfig.extensionProviders ? { extensionProviders: meshConfig.extensionProviders } : {}),
        ...(meshConfig.defaultProviders ? { defaultProviders: meshConfig.defaultProviders } : {}),
      }
    : undefined;
  const honorIstioLabels = meshes.find((m) => m.spec?.injection?.honorIstioLabels !== undefined)?.spec.injection?.honorIstioLabels;
  return {
    objects: [
      ...typed('Namespace', namespaces.items),
      ...typed('Pod', pods.items),
      ...typed('Service', services.items),
      ...slices.items.map((slice): SourcedObject => ({
        object: { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', ...slice } as KubeObject,
      })),
      ...istio.flat().map((object) => ({ object })),
    ],
    controlPlaneNamespaces,
    ...(injectionLabel ? { injectionLabel } : {}),
    ...(rootNamespace ? { rootNamespace } : {}),
    ...(meshes.length > 0 ? { revisions: [...new Set(meshes.map((m) => m.spec?.revision ?? ''))] } : {}),
    ...(honorIstioLabels !== undefined ? { honorIstioLabels } : {}),
    ...(meshTelemetry ? { meshTelemetry } : {}),
  };
}

/** The API server's metadata-only representation (client-go's metadata client asks the same): a Secret read this way carries no `data`. */
const metadataOnly = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1';

/**
 * The Secrets Gateways name (`credentialName`), each read by name as PartialObjectMetadata, so that
 * no key material leaves the API server (RBAC: `get` on `secrets` in the gateways' namespaces).
 * A Secret that is not found is left out (IST0101); one that cannot be read is returned in
 * `unreadable` with a warning naming it and the status, and is not reported on.
 */
async function readCredentialSecrets(
  connection: ClusterConnection,
  wanted: ReadonlyArray<{ namespace: string; name: string }>,
): Promise<{ secrets: SourcedObject[]; unreadable: Set<string>; warnings: string[] }> {
  const secrets: SourcedObject[] = [];
  const unreadable = new Set<string>();
  const warnings: string[] = [];
  await Promise.all(
    wanted.map(async ({ namespace, name }) => {
      const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(name)}`;
      const response = await connection.call(`reading Secret ${namespace}/${name}`, () => connection.get(path, 15_000, metadataOnly));
      if (response.statusCode === 404) return;
      if (response.statusCode === 200) {
        secrets.push({ object: { apiVersion: 'v1', kind: 'Secret', metadata: { namespace, name } } });
        return;
      }
      unreadable.add(`${namespace}/${name}`);
      const why = response.statusCode === 403 ? 'forbidden: weft analyze needs get on secrets there' : `HTTP ${response.statusCode}`;
      warnings.push(`Warning: cannot read Secret ${namespace}/${name} (${why}); its Gateway credentialName is not checked\n`);
    }),
  );
  return { secrets, unreadable, warnings: warnings.sort() };
}

const keyOf = ({ object }: SourcedObject) => `${object.kind}/${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`;

export function registerAnalyzeCommand(program: Command): void {
  withConnectionOptions(program.command('analyze'))
    .description(
      'check Istio and Weft config like istioctl analyze: unknown hosts and subsets, selectors matching nothing, injection (IST codes)',
    )
    .argument('[files...]', 'files or directories to analyze (as -f)')
    .option(
      '-f, --filename <path>',
      'a file or directory of YAML/JSON to analyze offline; repeatable',
      (v: string, all: string[]) => [...all, v],
      [],
    )
    .option('-k, --use-kube', 'with files: analyze them over the live cluster, as if applied (without files the cluster is always read)')
    .option('-n, --namespace <namespace>', "namespace to analyze (default: the context's); for files, the namespace of objects without one")
    .option('-A, --all-namespaces', 'analyze every namespace')
    .option('-i, --istio-namespace <namespace>', "the mesh's root namespace (default: the MeshInstallation's, else weft-system)")
    .addOption(new Option('-o, --output <format>', 'output format').choices(['log', 'json', 'yaml']).default('log'))
    .option('--failure-threshold <level>', 'the least severe level that makes the exit code 79: Error, Warning or Info', 'Error')
    .option('--output-threshold <level>', 'the least severe level printed: Error, Warning or Info', 'Info')
    .option('-L, --list-analyzers', 'list the analyzers weft analyze runs, with the codes each reports')
    .action(async (files: string[], options: AnalyzeOptions) => {
      if (options.listAnalyzers) {
        process.stdout.write(analyzersAsString());
        return;
      }
      const failureThreshold = levelOf(options.failureThreshold, 'failure-threshold');
      const outputThreshold = levelOf(options.outputThreshold, 'output-threshold');
      const paths = [...options.filename, ...files];
      const { objects: fileObjects, parseErrors } = readObjectFiles(gatherFiles(paths));
      const live = paths.length === 0 || options.useKube;
      const connection = live ? connect(options) : undefined;
      const state = connection ? await readCluster(connection) : undefined;
      // Objects from files replace the cluster's of the same kind, namespace and name.
      const fromFiles = new Set(fileObjects.map(keyOf));
      const merged = [...(state?.objects.filter((o) => !fromFiles.has(keyOf(o))) ?? []), ...fileObjects];

      const namespace = options.namespace ?? connection?.defaultNamespace ?? 'default';
      const scoped = live && !options.allNamespaces;
      // The files' own objects are always analyzed, whatever namespace they name (else a file's
      // mistakes could pass unseen because the context points elsewhere).
      const fileNamespaces = fileObjects.map(({ object }) => object.metadata?.namespace ?? options.namespace ?? 'default');
      const inScope = new Set([namespace, ...fileNamespaces]);
      const target = scoped
        ? `namespace${inScope.size > 1 ? 's' : ''}: ${[...inScope].join(', ')}`
        : live
          ? 'all namespaces'
          : paths.join(', ');
      // The Secrets the Gateways name, by name only, from the cluster (files may carry their own).
      const credentials = connection
        ? await readCredentialSecrets(
            connection,
            credentialSecretsToRead(merged, {
              ...(scoped ? { namespaces: inScope } : {}),
              defaultNamespace: options.namespace ?? 'default',
            }),
          )
        : undefined;
      const objects = [...merged, ...(credentials?.secrets ?? [])];
      process.stderr.write(credentials?.warnings.join('') ?? '');
      const messages = analyzeMesh(objects, {
        ...(scoped ? { namespaces: inScope } : {}),
        defaultNamespace: options.namespace ?? 'default',
        rootNamespace: options.istioNamespace ?? state?.rootNamespace ?? 'weft-system',
        injectionLabels: [...new Set([state?.injectionLabel ?? 'weft-injection', 'weft-injection', 'istio-injection'])],
        controlPlaneNamespaces: state?.controlPlaneNamespaces ?? new Set([operatorNamespace]),
        ...(state?.revisions ? { revisions: state.revisions } : {}),
        ...(state?.honorIstioLabels !== undefined ? { honorIstioLabels: state.honorIstioLabels } : {}),
        ...(state?.meshTelemetry ? { meshTelemetry: state.meshTelemetry } : {}),
        workloadsKnown: Boolean(live) || carriesWorkloads(fileObjects),
        secretsKnown: Boolean(live) || fileObjects.some(({ object }) => object.kind === 'Secret'),
        ...(credentials ? { unreadableSecrets: credentials.unreadable } : {}),
      });
      const report = analysisReport(messages, { format: options.output, target, failureThreshold, outputThreshold, parseErrors });
      process.stdout.write(report.stdout);
      process.stderr.write(report.stderr);
      process.exitCode = report.exitCode;
    });
}
