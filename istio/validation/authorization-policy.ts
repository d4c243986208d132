// AuthorizationPolicy (security.istio.io), after Istio's ValidateAuthorizationPolicy and
// pkg/config/security (condition keys and values).
import type { IAuthorizationPolicy } from '@kubernetes-models/istio/security.istio.io/v1/AuthorizationPolicy';
import { isSet, items, type Issues } from './field-issues.js';
import { ipOrCidrProblem } from './hostnames.js';
import { validatePolicyTarget } from './workload-selector.js';

type Spec = NonNullable<IAuthorizationPolicy['spec']>;
type Rule = NonNullable<Spec['rules']>[number];
type Source = NonNullable<NonNullable<Rule['from']>[number]['source']> & { serviceAccounts?: string[]; notServiceAccounts?: string[] };
type Operation = NonNullable<NonNullable<Rule['to']>[number]['operation']>;

// Condition keys Istio knows (pkg/config/security): exact keys and map keys written key[name].
const exactKeys = new Set([
  'source.ip',
  'remote.ip',
  'source.namespace',
  'source.serviceAccount',
  'source.principal',
  'source.trustDomain',
  'request.auth.principal',
  'request.auth.audiences',
  'request.auth.presenter',
  'destination.ip',
  'destination.port',
  'connection.sni',
]);
const mapKeys = ['request.headers', 'request.auth.claims', 'experimental.envoy.filters.'];

function conditionKeyProblem(key: string): string | undefined {
  if (exactKeys.has(key)) return undefined;
  const map = mapKeys.find((prefix) => key.startsWith(prefix));
  if (map) {
    const open = key.indexOf('[');
    return key.endsWith(']') && open > 0 && open < key.length - 2 ? undefined : `bad key "${key}": should have format a[b]`;
  }
  if (key === 'destination.namespace') return `"${key}" is replaced by the policy's namespace (metadata.namespace)`;
  if (key.startsWith('destination.labels')) return `"${key}" is replaced by the workload selector`;
  if (key === 'destination.name' || key === 'destination.user') return `"${key}" was only supported in v1alpha1`;
  return `unknown condition key "${key}"`;
}

function valuesProblem(key: string, values: string[]): string | undefined {
  if (values.some((value) => value === '')) return 'empty value not allowed';
  if (key === 'source.ip' || key === 'remote.ip' || key === 'destination.ip') {
    for (const value of values) {
      const problem = ipOrCidrProblem(value);
      if (problem) return problem;
    }
  }
  if (key === 'destination.port') {
    const bad = values.find((value) => !/^\d+$/.test(value) || Number(value) > 65535);
    if (bad !== undefined) return `bad port "${bad}"`;
  }
  if (key === 'source.serviceAccount') return serviceAccountsProblem(values);
  return undefined;
}

function serviceAccountsProblem(values: string[]): string | undefined {
  if (values.length > 16) return 'may not have more than 16 values';
  for (const value of values) {
    if (value.includes('*')) return `wildcard not allowed in "${value}"`;
    const parts = value.split('/');
    if (parts.length > 2 || parts.some((part) => part === ''))
      return `expected serviceAccount or namespace/serviceAccount, found "${value}"`;
  }
  return undefined;
}

const listFields = (source: Record<string, unknown>, names: string[]) =>
  names.filter((name) => items(source[name] as unknown[]).length > 0);

function validateSource(issues: Issues, field: string, source: Source, action: string | undefined): void {
  const lists = source as unknown as Record<string, string[] | undefined>;
  const all = [
    'principals',
    'notPrincipals',
    'requestPrincipals',
    'notRequestPrincipals',
    'namespaces',
    'notNamespaces',
    'serviceAccounts',
    'notServiceAccounts',
    'ipBlocks',
    'notIpBlocks',
    'remoteIpBlocks',
    'notRemoteIpBlocks',
  ];
  const set = listFields(lists, all);
  if (set.length === 0) issues.error(field, 'from.source must not be empty');
  if (
    listFields(lists, ['principals', 'notPrincipals', 'namespaces', 'notNamespaces']).length > 0 &&
    listFields(lists, ['serviceAccounts', 'notServiceAccounts']).length > 0
  ) {
    issues.error(field, 'cannot set serviceAccounts together with namespaces or principals');
  }
  for (const name of all) {
    items(lists[name]).forEach((value, i) => {
      if (value === '') issues.error(`${field}.${name}[${i}]`, 'empty value not allowed');
    });
  }
  // Principals are <trust domain>/ns/<namespace>/sa/<service account>: Istio adds spiffe:// itself,
  // so a value that carries it never matches.
  for (const name of ['principals', 'notPrincipals']) {
    items(lists[name]).forEach((value, i) => {
      if (value.startsWith('spiffe://'))
        issues.error(`${field}.${name}[${i}]`, `"${value}" must not start with spiffe://; write ${value.slice('spiffe://'.length)}`);
    });
  }
  for (const name of ['namespaces', 'notNamespaces']) {
    items(lists[name]).forEach((value, i) => {
      if (value.startsWith('spiffe://') || value.includes('/'))
        issues.error(`${field}.${name}[${i}]`, `"${value}" is not a namespace name (principals take SPIFFE identities)`);
    });
  }
  for (const name of ['ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks']) {
    items(lists[name]).forEach((value, i) => {
      const problem = value ? ipOrCidrProblem(value) : undefined;
      if (problem) issues.error(`${field}.${name}[${i}]`, problem);
    });
  }
  for (const name of ['serviceAccounts', 'notServiceAccounts']) {
    const problem = serviceAccountsProblem(items(lists[name]).filter(Boolean));
    if (problem) issues.error(`${field}.${name}`, problem);
  }
  if (action === 'CUSTOM') {
    for (const name of listFields(
      lists,
      all.filter((n) => !n.toLowerCase().includes('ipblocks')),
    )) {
      issues.error(`${field}.${name}`, `${name} is not supported with action CUSTOM`);
    }
  }
}

function validateOperation(issues: Issues, field: string, operation: Operation): void {
  const lists = operation as unknown as Record<string, string[] | undefined>;
  const all = ['hosts', 'notHosts', 'ports', 'notPorts', 'methods', 'notMethods', 'paths', 'notPaths'];
  if (listFields(lists, all).length === 0) issues.error(field, 'to.operation must not be empty');
  for (const name of all) {
    items(lists[name]).forEach((value, i) => {
      if (value === '') issues.error(`${field}.${name}[${i}]`, 'empty value not allowed');
      else if ((name === 'ports' || name === 'notPorts') && (!/^\d+$/.test(value) || Number(value) > 65535)) {
        issues.error(`${field}.${name}[${i}]`, `bad port "${value}"`);
      } else if (name === 'paths' || name === 'notPaths') {
        const problem = pathTemplateProblem(value);
        if (problem) issues.error(`${field}.${name}[${i}]`, problem);
      }
    });
  }
}

/** Path templates `{*}` and `{**}` (the latter last); other braces are not allowed in a templated path. */
function pathTemplateProblem(path: string): string | undefined {
  if (!path.includes('{*}') && !path.includes('{**}')) return undefined;
  let matchAny = false;
  for (const glob of path.replace(/^\/+|\/+$/g, '').split('/')) {
    if (glob === '{*}' || glob === '{**}') {
      if (matchAny) return `{**} must be the last operator in "${path}"`;
      matchAny = glob === '{**}';
      continue;
    }
    if (/[{}]/.test(glob)) return `"${path}" contains { or } outside a {*} or {**} template`;
    if (!/^[a-zA-Z0-9\-._~%!$&'()+,;:@=]+$/.test(glob)) return `"${path}" has the invalid segment "${glob}"`;
  }
  return undefined;
}

export function validateAuthorizationPolicy(issues: Issues, spec: Spec): void {
  validatePolicyTarget(issues, spec);
  const action = spec.action ?? 'ALLOW';
  const provider = spec.provider;
  if (action === 'CUSTOM') {
    if (!isSet(spec.rules))
      issues.error('spec.rules', 'action CUSTOM without rules never applies; add an empty rule {} to apply it to every request');
    if (!provider?.name) issues.error('spec.provider.name', 'action CUSTOM needs provider.name (an extension provider in the mesh config)');
  } else if (isSet(provider)) {
    issues.error('spec.provider', `provider is only for action CUSTOM, found ${action}`);
  }
  if (action === 'DENY' && !isSet(spec.rules)) {
    issues.error('spec.rules', 'action DENY without rules never applies; add an empty rule {} to deny every request');
  }
  items(spec.rules).forEach((rule, i) => {
    const field = `spec.rules[${i}]`;
    if (!rule || typeof rule !== 'object') return issues.error(field, 'rule may not be null');
    if (isSet(rule.from) && items(rule.from).length === 0) issues.error(`${field}.from`, 'from must not be empty');
    if (isSet(rule.to) && items(rule.to).length === 0) issues.error(`${field}.to`, 'to must not be empty');
    // As Istio warns: a DENY rule matching on HTTP attributes only also denies TCP traffic.
    let fromExists = false;
    let toExists = false;
    let tcpInFrom = false;
    let tcpInTo = false;
    items(rule.from).forEach((from, j) => {
      const at = `${field}.from[${j}]`;
      if (!from?.source) return issues.error(`${at}.source`, 'from.source must be set');
      fromExists = true;
      validateSource(issues, `${at}.source`, from.source as Source, action);
      const tcpFields = [
        'principals',
        'notPrincipals',
        'namespaces',
        'notNamespaces',
        'ipBlocks',
        'notIpBlocks',
        'remoteIpBlocks',
        'notRemoteIpBlocks',
      ];
      if (listFields(from.source as Record<string, unknown>, [...tcpFields, 'serviceAccounts', 'notServiceAccounts']).length > 0)
        tcpInFrom = true;
    });
    items(rule.to).forEach((to, j) => {
      const at = `${field}.to[${j}]`;
      if (!to?.operation) return issues.error(`${at}.operation`, 'to.operation must be set');
      toExists = true;
      validateOperation(issues, `${at}.operation`, to.operation);
      if (listFields(to.operation as Record<string, unknown>, ['ports', 'notPorts']).length > 0) tcpInTo = true;
    });
    items(rule.when).forEach((condition, j) => {
      const at = `${field}.when[${j}]`;
      if (!condition || typeof condition !== 'object') return issues.error(at, 'condition may not be null');
      const key = condition.key ?? '';
      if (!key) return issues.error(`${at}.key`, 'key must not be empty');
      const keyProblem = conditionKeyProblem(key);
      if (keyProblem) issues.error(`${at}.key`, keyProblem);
      const values = items(condition.values);
      const notValues = items(condition.notValues);
      if (values.length === 0 && notValues.length === 0) issues.error(at, `at least one of values or notValues must be set for key ${key}`);
      if (!keyProblem) {
        const valueProblem = valuesProblem(key, values);
        if (valueProblem) issues.error(`${at}.values`, valueProblem);
        const notValueProblem = valuesProblem(key, notValues);
        if (notValueProblem) issues.error(`${at}.notValues`, notValueProblem);
      }
      if (action === 'CUSTOM' && ((key.startsWith('source.') && key !== 'source.ip') || key.startsWith('request.auth.'))) {
        issues.error(`${at}.key`, `${key} is not supported with action CUSTOM`);
      }
    });
    if (action === 'DENY' && ((fromExists && !toExists && !tcpInFrom) || (toExists && !tcpInTo))) {
      issues.warn(field, 'a DENY rule with only HTTP attributes denies all traffic to TCP ports in its scope; consider setting ports');
    }
  });
}
