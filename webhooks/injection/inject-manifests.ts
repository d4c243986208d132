// `weft inject -f`: a YAML stream in, the same stream out with sidecars in the pods
// and pod templates the injector would inject, as `istioctl kube-inject -f` does
// (pkg/kube/inject/inject.go IntoResourceFile/IntoObject). Pure: text in, text out.
import type { V1Pod } from '@kubernetes/client-node';
import { isMap, parseDocument, type Document } from 'yaml';
import { decideOfflineInjection } from './decision.js';
import { injectPod, podShapeProblem } from './inject-pod.js';
import type { InjectionConfig } from './injection-config.js';

/** Where each kind keeps its pod: the Pod itself, a pod template, or a CronJob's job template's pod template. */
const podPaths: Record<string, readonly string[]> = {
  Pod: [],
  Deployment: ['spec', 'template'],
  StatefulSet: ['spec', 'template'],
  DaemonSet: ['spec', 'template'],
  ReplicaSet: ['spec', 'template'],
  ReplicationController: ['spec', 'template'],
  Job: ['spec', 'template'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template'],
};

export interface InjectedManifests {
  /** The stream with injected documents rewritten; every other document exactly as it was. */
  output: string;
  /** One line per object left alone, e.g. `skipped Deployment shop/web: pod opted out with label sidecar.istio.io/inject=false`. */
  skipped: string[];
  /** One line per object injected, e.g. `injected Deployment shop/web`. */
  injected: string[];
}

/** A refusal: the input cannot be injected as a whole; nothing is printed. */
export class InjectInputError extends Error {}

type Manifest = { apiVersion?: string; kind?: string; metadata?: { name?: string; namespace?: string }; items?: unknown[] };

/**
 * Injects every Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController,
 * Job and CronJob of a multi-document YAML stream (and the items of `List` documents) that
 * the offline decision injects. Documents with nothing injected are copied byte for byte
 * (comments, quoting, order); injected ones keep their comments and untouched fields.
 * Throws InjectInputError, naming the document and field, for YAML that does not parse or
 * a pod whose shape is wrong (e.g. `spec.template.spec.containers[0].ports is not a list`).
 */
export function injectManifests(text: string, config: InjectionConfig): InjectedManifests {
  const skipped: string[] = [];
  const injected: string[] = [];
  const chunks = splitDocuments(text);
  const output = chunks
    .map((chunk, index) => {
      if (chunk.separator || chunk.body.trim() === '') return chunk.body;
      const doc = parseDocument(chunk.body);
      if (doc.errors.length > 0) throw new InjectInputError(`document ${index + 1}: ${doc.errors[0]?.message ?? 'YAML error'}`);
      const manifest = doc.toJS() as Manifest | null;
      if (!manifest || typeof manifest !== 'object') return chunk.body;
      let changed = false;
      if (manifest.kind === 'List' || (manifest.kind?.endsWith('List') && Array.isArray(manifest.items))) {
        (manifest.items ?? []).forEach((item, i) => {
          if (injectObject(doc, ['items', i], item as Manifest, config, skipped, injected)) changed = true;
        });
      } else if (injectObject(doc, [], manifest, config, skipped, injected)) changed = true;
      return changed ? String(doc) : chunk.body;
    })
    .join('');
  return { output, skipped, injected };
}

/** Injects one object at `at` of `doc` in place; whether it did. */
function injectObject(
  doc: Document,
  at: Array<string | number>,
  manifest: Manifest,
  config: InjectionConfig,
  skipped: string[],
  injected: string[],
): boolean {
  const kind = manifest?.kind ?? 'object';
  const namespace = manifest?.metadata?.namespace ?? 'default';
  const label = `${kind} ${namespace}/${manifest?.metadata?.name ?? ''}`;
  const path = podPaths[kind];
  if (!path || !manifest || typeof manifest !== 'object') {
    skipped.push(`skipped ${label}: not a Pod or a workload with a pod template`);
    return false;
  }
  const podLike = path.reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], manifest);
  const where = path.length ? `${path.join('.')}.` : '';
  const problem = podShapeProblem(podLike, where);
  if (problem) throw new InjectInputError(`${label}: ${problem}`);
  const template = podLike as V1Pod;
  // A template's pod takes the workload's name, as the controller would name it (and Istio's kube-inject does).
  const pod: V1Pod =
    kind === 'Pod'
      ? (manifest as V1Pod)
      : {
          metadata: {
            ...template.metadata,
            name: manifest.metadata?.name,
            namespace,
            // The workload stands as the pod's controller, so the agent's ISTIO_META_OWNER and WORKLOAD_NAME
            // name it (kubernetes://apis/apps/v1/.../deployments/<name>), as istioctl kube-inject writes them.
            ownerReferences: [
              {
                apiVersion: String(manifest.apiVersion ?? 'v1'),
                kind: String(kind),
                name: String(manifest.metadata?.name ?? ''),
                uid: '',
                controller: true,
              },
            ],
          },
          spec: template.spec,
        };
  const decision = decideOfflineInjection(pod, namespace, config);
  if (!decision.inject) {
    skipped.push(`skipped ${label}: ${decision.reason}`);
    return false;
  }
  const result = injectPod(pod, namespace, config);
  if (kind === 'Pod') {
    doc.setIn([...at, 'metadata'], doc.createNode(result.metadata));
    doc.setIn([...at, 'spec'], doc.createNode(result.spec));
  } else {
    const { name: _name, namespace: _ns, ownerReferences: _owners, ...metadata } = result.metadata ?? {};
    const templateNode = doc.getIn([...at, ...path]);
    if (!isMap(templateNode)) throw new InjectInputError(`${label}: ${path.join('.')} is not a map`);
    templateNode.set('metadata', doc.createNode(metadata));
    templateNode.set('spec', doc.createNode(result.spec));
  }
  injected.push(`injected ${label}`);
  return true;
}

/**
 * The stream cut at document markers (`---` at the start of a line), keeping every byte:
 * the markers are their own chunks. A marker at column 0 always ends a document in YAML,
 * even inside a block scalar, so a line scan is exact.
 */
function splitDocuments(text: string): Array<{ body: string; separator: boolean }> {
  const chunks: Array<{ body: string; separator: boolean }> = [];
  let current = '';
  for (const line of text.match(/[^\n]*\n|[^\n]+$/g) ?? []) {
    if (/^---(?:[ \t]|\r?\n|$)/.test(line)) {
      chunks.push({ body: current, separator: false });
      // `--- ` may carry content on the marker line: that content belongs to the next document.
      const rest = line.slice(3);
      if (rest.trim() === '') {
        chunks.push({ body: line, separator: true });
        current = '';
      } else {
        chunks.push({ body: '---', separator: true });
        current = rest;
      }
    } else current += line;
  }
  chunks.push({ body: current, separator: false });
  return chunks;
}
