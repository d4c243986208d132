// What schema validation cannot see, found by reading the whole model: routes to
// hosts that do not exist, subsets no DestinationRule defines, rules for hosts
// nothing serves. Each networking object gets a verdict for its status, with
// Istio's analyzer codes. Pure.
import type { ConfigObject, DestinationRuleSpec, HttpDestination, VirtualServiceSpec } from '../model/istio-config.js';
import { emptyIstioConfig } from '../model/istio-config.js';
import { serviceHost, type MeshModel } from '../model/mesh-model.js';
import { hostMatches, resolveHost } from './host-names.js';

export interface AnalysisMessage {
  /** Istio's analyzer code and name, e.g. IST0101 ReferencedResourceNotFound. */
  code: string;
  name: string;
  level: 'ERROR' | 'WARNING';
  message: string;
}

export interface ConfigVerdict {
  kind: string;
  namespace: string;
  name: string;
  generation?: number;
  accepted: boolean;
  messages: AnalysisMessage[];
}

const notFound = (message: string, level: AnalysisMessage['level'] = 'ERROR'): AnalysisMessage => ({
  code: 'IST0101',
  name: 'ReferencedResourceNotFound',
  level,
  message,
});

export function analyzeNetworking(model: MeshModel): ConfigVerdict[] {
  const config = model.istio ?? emptyIstioConfig();
  const hosts = model.services.map((service) => serviceHost(service, model.clusterDomain));
  const hostExists = (host: string) => hosts.some((known) => hostMatches(host, known) || hostMatches(known, host));
  const subsetsOf = (host: string) =>
    new Set(
      config.destinationRules
        .filter((rule) => hostMatches(resolveHost(rule.spec.host, rule.namespace, model.clusterDomain), host))
        .flatMap((rule) => (rule.spec.subsets ?? []).map((subset) => subset.name)),
    );

  const verdicts: ConfigVerdict[] = [];
  for (const rule of config.virtualServices) verdicts.push(verdict(rule, virtualServiceMessages(rule, model, hostExists, subsetsOf)));
  for (const rule of config.destinationRules) verdicts.push(verdict(rule, destinationRuleMessages(rule, model, hostExists)));
  for (const rule of [...config.serviceEntries, ...config.workloadEntries, ...config.sidecars]) verdicts.push(verdict(rule, []));
  return verdicts;
}

function verdict(rule: ConfigObject<unknown>, messages: AnalysisMessage[]): ConfigVerdict {
  return {
    kind: rule.kind,
    namespace: rule.namespace,
    name: rule.name,
    ...(rule.generation !== undefined ? { generation: rule.generation } : {}),
    accepted: !messages.some((m) => m.level === 'ERROR'),
    messages,
  };
}

function virtualServiceMessages(
  rule: ConfigObject<VirtualServiceSpec>,
  model: MeshModel,
  hostExists: (host: string) => boolean,
  subsetsOf: (host: string) => Set<string>,
): AnalysisMessage[] {
  const messages: AnalysisMessage[] = [];
  const check = (destination: HttpDestination['destination'], field: string) => {
    const host = resolveHost(destination.host, rule.namespace, model.clusterDomain);
    if (!hostExists(host)) {
      messages.push(notFound(`${field}.host: "${destination.host}" (${host}) is not a Service or ServiceEntry host in the mesh`));
      return;
    }
    if (destination.subset && !subsetsOf(host).has(destination.subset)) {
      messages.push(notFound(`${field}.subset: no DestinationRule for ${host} defines subset "${destination.subset}"`));
    }
  };
  (rule.spec.http ?? []).forEach((http, i) => {
    (http.route ?? []).forEach((route, j) => check(route.destination, `spec.http[${i}].route[${j}].destination`));
    if (http.mirror) check(http.mirror, `spec.http[${i}].mirror`);
  });
  for (const [protocol, routes] of [
    ['tcp', rule.spec.tcp],
    ['tls', rule.spec.tls],
  ] as const) {
    (routes ?? []).forEach((entry, i) =>
      (entry.route ?? []).forEach((route, j) => check(route.destination, `spec.${protocol}[${i}].route[${j}].destination`)),
    );
  }
  return messages;
}

function destinationRuleMessages(
  rule: ConfigObject<DestinationRuleSpec>,
  model: MeshModel,
  hostExists: (host: string) => boolean,
): AnalysisMessage[] {
  const host = resolveHost(rule.spec.host, rule.namespace, model.clusterDomain);
  // A rule for a host nothing serves yet is allowed (it may come later): a warning, not a refusal.
  return hostExists(host)
    ? []
    : [notFound(`spec.host: "${rule.spec.host}" (${host}) is not a Service or ServiceEntry host in the mesh`, 'WARNING')];
}

/** The status weftd writes: an Accepted condition saying why not, and Istio-style validation messages. */
export function statusOf(verdict: ConfigVerdict, previous: Record<string, unknown> | undefined, now: string): Record<string, unknown> {
  const status = verdict.accepted ? 'True' : 'False';
  const errors = verdict.messages.filter((m) => m.level === 'ERROR');
  const previousCondition = ((previous?.['conditions'] as Array<Record<string, unknown>> | undefined) ?? []).find(
    (c) => c['type'] === 'Accepted',
  );
  return {
    ...(verdict.generation !== undefined ? { observedGeneration: verdict.generation } : {}),
    conditions: [
      {
        type: 'Accepted',
        status,
        reason: verdict.accepted ? 'Accepted' : (errors[0]?.name ?? 'Invalid'),
        message: verdict.accepted
          ? verdict.messages.length > 0
            ? `accepted with warnings: ${verdict.messages.map((m) => m.message).join('; ')}`
            : 'accepted and distributed to the proxies it applies to'
          : errors.map((m) => m.message).join('; '),
        lastTransitionTime: previousCondition?.['status'] === status ? (previousCondition['lastTransitionTime'] ?? now) : now,
        ...(verdict.generation !== undefined ? { observedGeneration: verdict.generation } : {}),
      },
    ],
    validationMessages: verdict.messages.map((m) => ({
      type: { code: m.code, name: m.name },
      level: m.level,
      documentationUrl: `https://istio.io/latest/docs/reference/config/analysis/${m.code.toLowerCase()}/`,
    })),
  };
}
