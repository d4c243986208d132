// `weft inject -f pod.yaml`: what the webhook would do, offline, like `istioctl kube-inject`.
import { readFileSync } from 'node:fs';
import type { V1Pod, V1PodTemplateSpec } from '@kubernetes/client-node';
import type { Command } from 'commander';
import { parseAllDocuments, stringify } from 'yaml';
import { decideOfflineInjection } from '../webhooks/injection/decision.js';
import { injectPod } from '../webhooks/injection/inject-pod.js';
import { defaultInjectionConfig, injectionConfigFromValues } from '../webhooks/injection/injection-config.js';

interface InjectOptions {
  filename: string;
  values?: string;
  controlPlaneNamespace: string;
  legacySidecars?: boolean;
}

type Manifest = {
  kind?: string;
  metadata?: V1Pod['metadata'];
  spec?: { template?: V1PodTemplateSpec; jobTemplate?: { spec?: { template?: V1PodTemplateSpec } } } & V1Pod['spec'];
};

export function registerInjectCommand(program: Command): void {
  program
    .command('inject')
    .description('print the manifests of a file with sidecars injected (Pods, and workloads with pod templates)')
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
      const out = parseAllDocuments(text).map((doc) => {
        const manifest = doc.toJSON() as Manifest | null;
        if (!manifest) return manifest;
        const namespace = manifest.metadata?.namespace ?? 'default';
        const template = manifest.kind === 'Pod' ? undefined : (manifest.spec?.template ?? manifest.spec?.jobTemplate?.spec?.template);
        if (manifest.kind !== 'Pod' && !template) return manifest;
        // The same pod-level rules as the webhook: what it would leave alone stays as it is, and the user is told why.
        const pod = (manifest.kind === 'Pod' ? manifest : { metadata: template?.metadata, spec: template?.spec }) as V1Pod;
        const decision = decideOfflineInjection(pod, namespace, config);
        if (!decision.inject) {
          process.stderr.write(`skipped ${manifest.kind ?? 'object'} ${namespace}/${manifest.metadata?.name ?? ''}: ${decision.reason}\n`);
          return manifest;
        }
        if (manifest.kind === 'Pod') return injectPod(manifest as V1Pod, namespace, config);
        if (!template) return manifest;
        // The workload's own name stands in for the pod name the controller would generate.
        const injected = injectPod(
          { metadata: { ...template.metadata, name: manifest.metadata?.name, namespace }, spec: template.spec },
          namespace,
          config,
        );
        const { namespace: _ns, name: _name, ...metadata } = injected.metadata ?? {};
        Object.assign(template, { metadata, spec: injected.spec });
        return manifest;
      });
      process.stdout.write(out.map((m) => stringify(m)).join('---\n'));
    });
}
