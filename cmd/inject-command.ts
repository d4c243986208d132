// `weft inject -f pod.yaml`: what the webhook would do, offline, like `istioctl kube-inject`.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { InjectInputError, injectManifests } from '../webhooks/injection/inject-manifests.js';
import { defaultInjectionConfig, injectionConfigFromValues } from '../webhooks/injection/injection-config.js';

interface InjectOptions {
  filename: string;
  values?: string;
  controlPlaneNamespace: string;
  legacySidecars?: boolean;
}

export function registerInjectCommand(program: Command): void {
  program
    .command('inject')
    .description(
      'print a YAML stream with sidecars injected, as istioctl kube-inject: Pods, Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs, in Lists too; everything else unchanged',
    )
    .requiredOption('-f, --filename <file>', 'YAML file; - for standard input')
    .option(
      '--values <file>',
      "the injector ConfigMap's values (JSON), e.g. from kubectl get cm weft-sidecar-injector -o jsonpath='{.data.values}'",
    )
    .option('--control-plane-namespace <ns>', 'namespace of the control plane', 'weft-system')
    .option('--legacy-sidecars', 'put the proxy in containers instead of a native sidecar (Kubernetes before 1.29)')
    .action((options: InjectOptions) => {
      const text = readFileSync(options.filename === '-' ? 0 : options.filename, 'utf8');
      const native = !options.legacySidecars;
      const config = options.values
        ? injectionConfigFromValues(readFileSync(options.values, 'utf8'), options.controlPlaneNamespace, native)
        : { ...defaultInjectionConfig, controlPlaneNamespace: options.controlPlaneNamespace, nativeSidecars: native };
      let result;
      try {
        result = injectManifests(text, config);
      } catch (error) {
        // Nothing half-injected goes to stdout (it is usually piped to kubectl apply).
        if (!(error instanceof InjectInputError)) throw error;
        process.stderr.write(`error: ${options.filename}: ${error.message}\n`);
        process.exitCode = 1;
        return;
      }
      // What was left alone, and why, as istioctl kube-inject's "Skipping injection because ..." lines.
      for (const line of result.skipped) process.stderr.write(`${line}\n`);
      process.stdout.write(result.output);
    });
}
