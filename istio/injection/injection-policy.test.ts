import {
  injectRequired,
  injectorWebhooks,
  multipleInjectionLabels,
  selectingWebhook,
  selectorMatches,
  type InjectionPolicy,
  type LabelSelector,
} from './injection-policy.js';

const exists = (key: string): LabelSelector => ({ matchExpressions: [{ key, operator: 'Exists' }] });
const fooBar: LabelSelector = { matchLabels: { foo: 'bar' } };
const inject = 'sidecar.istio.io/inject';

describe('injectRequired: the cases of Istio’s TestInjectRequired (pkg/kube/inject/webhook_test.go)', () => {
  type Case = [string, InjectionPolicy, { labels?: Record<string, string>; annotations?: Record<string, string> }, boolean];
  const enabled: InjectionPolicy = { policy: 'enabled' };
  const disabled: InjectionPolicy = { policy: 'disabled' };
  const cases: Case[] = [
    ['no-policy', enabled, {}, true],
    ['force-on-policy', enabled, { annotations: { [inject]: 'true' } }, true],
    ['force-off-policy', enabled, { annotations: { [inject]: 'false' } }, false],
    ['disabled no-policy', disabled, {}, false],
    ['disabled force-on-policy', disabled, { annotations: { [inject]: 'true' } }, true],
    ['disabled force-off-policy', disabled, { annotations: { [inject]: 'false' } }, false],
    ['invalid-inject-value-yes', enabled, { annotations: { [inject]: 'yes' } }, true],
    ['invalid-inject-value-on', disabled, { annotations: { [inject]: 'on' } }, false],
    ['invalid-inject-value-random (label)', enabled, { labels: { [inject]: 'random' } }, true],
    ['policy-enabled-always-inject-no-labels', { ...enabled, alwaysInjectSelector: [fooBar] }, {}, true],
    ['policy-disabled-always-inject-no-labels', { ...disabled, alwaysInjectSelector: [fooBar] }, {}, false],
    ['policy-disabled-always-inject-with-labels', { ...disabled, alwaysInjectSelector: [fooBar] }, { labels: { foo: 'bar' } }, true],
    ['policy-enabled-never-inject-no-labels', { ...enabled, neverInjectSelector: [fooBar] }, {}, true],
    ['policy-enabled-never-inject-with-labels', { ...enabled, neverInjectSelector: [fooBar] }, { labels: { foo: 'bar' } }, false],
    [
      'policy-enabled-never-inject-with-empty-label',
      { ...enabled, neverInjectSelector: [exists('foo')] },
      { labels: { foo: '', foo2: 'bar2' } },
      false,
    ],
    [
      'policy-disabled-always-never-inject-with-both-labels',
      { ...disabled, alwaysInjectSelector: [exists('always')], neverInjectSelector: [exists('never')] },
      { labels: { always: 'bar', never: 'bar2' } },
      false,
    ],
    [
      'policy-disabled-always-never-inject-with-label-returns-true',
      { ...disabled, alwaysInjectSelector: [exists('always')], neverInjectSelector: [exists('never')] },
      { labels: { always: 'bar', foo2: 'bar2' } },
      true,
    ],
    [
      'policy-enabled-annotation-true-never-inject',
      { ...enabled, neverInjectSelector: [exists('foo')] },
      { annotations: { [inject]: 'true' }, labels: { foo: '' } },
      true,
    ],
    [
      'policy-enabled-annotation-false-always-inject',
      { ...enabled, alwaysInjectSelector: [exists('foo')] },
      { annotations: { [inject]: 'false' }, labels: { foo: '' } },
      false,
    ],
    [
      'policy-enabled-never-inject-multiple-labels',
      { ...enabled, neverInjectSelector: [exists('foo'), exists('bar')] },
      { labels: { bar: 'anything' } },
      false,
    ],
    [
      'policy-disabled-label-enabled-annotation-disabled',
      disabled,
      { annotations: { [inject]: 'false' }, labels: { [inject]: 'true' } },
      true,
    ],
    [
      'policy-disabled-label-disabled-annotation-enabled',
      disabled,
      { annotations: { [inject]: 'true' }, labels: { [inject]: 'false' } },
      false,
    ],
    ['an empty neverInjectSelector matches nothing', { ...enabled, neverInjectSelector: [{}] }, { labels: { a: 'b' } }, true],
  ];
  it.each(cases)('%s', (_, policy, metadata, want) => {
    expect(injectRequired({ metadata }, 'test-namespace', policy).inject).toBe(want);
  });

  it('never injects hostNetwork pods or ignored namespaces, whatever the pod asks', () => {
    const optIn = { metadata: { labels: { [inject]: 'true' } } };
    expect(injectRequired({ ...optIn, spec: { hostNetwork: true } }, 'shop')).toEqual({
      inject: false,
      reason: expect.stringContaining('hostNetwork'),
    });
    for (const ns of ['kube-system', 'kube-public', 'kube-node-lease', 'local-path-storage'])
      expect(injectRequired(optIn, ns).inject).toBe(false);
    expect(injectRequired(optIn, 'weft-system', { ignoredNamespaces: ['weft-system'] }).inject).toBe(false);
  });
});

describe('selectorMatches (Kubernetes label selector semantics)', () => {
  it.each([
    [{ matchExpressions: [{ key: 'a', operator: 'NotIn', values: ['x'] }] }, {}, true],
    [{ matchExpressions: [{ key: 'a', operator: 'NotIn', values: ['x'] }] }, { a: 'x' }, false],
    [{ matchExpressions: [{ key: 'a', operator: 'In', values: ['x'] }] }, {}, false],
    [{ matchExpressions: [{ key: 'a', operator: 'DoesNotExist' }] }, { a: '' }, false],
    [{ matchLabels: { a: 'x' }, matchExpressions: [{ key: 'b', operator: 'Exists' }] }, { a: 'x', b: '' }, true],
    [{}, { anything: 'at all' }, true],
  ] as Array<[LabelSelector, Record<string, string>, boolean]>)('%j on %j is %s', (selector, labels, want) => {
    expect(selectorMatches(selector, labels)).toBe(want);
  });
});

describe('which revision’s webhook a pod reaches (Istio’s mutatingwebhook.yaml, with Weft’s label as istio-injection)', () => {
  const base = { namespaceLabel: 'weft-injection', excludedNamespaces: ['weft-system'] };
  const revisions = {
    default: injectorWebhooks({ ...base, revision: '' }),
    canary: injectorWebhooks({ ...base, revision: 'canary' }),
    'stable (tag prod)': injectorWebhooks({ ...base, revision: 'stable', revisionTags: ['prod'] }),
  };
  const reached = (ns: Record<string, string>, pod: Record<string, string> = {}, namespace = 'shop') =>
    Object.entries(revisions)
      .filter(([, hooks]) => selectingWebhook(hooks, namespace, ns, pod))
      .map(([name]) => name);
  it.each([
    ['istio-injection=enabled + istio.io/rev=canary', { 'istio-injection': 'enabled', 'istio.io/rev': 'canary' }, {}, ['default']],
    ['weft-injection=enabled', { 'weft-injection': 'enabled' }, {}, ['default']],
    ['istio.io/rev=canary', { 'istio.io/rev': 'canary' }, {}, ['canary']],
    ['istio.io/rev=prod (a tag)', { 'istio.io/rev': 'prod' }, {}, ['stable (tag prod)']],
    ['istio.io/rev=default', { 'istio.io/rev': 'default' }, {}, ['default']],
    ['unlabelled, pod istio.io/rev=canary', {}, { 'istio.io/rev': 'canary' }, ['canary']],
    ['unlabelled, pod inject=true', {}, { [inject]: 'true' }, ['default']],
    ['unlabelled, pod inject=true + istio.io/rev=canary', {}, { [inject]: 'true', 'istio.io/rev': 'canary' }, ['canary']],
    ['istio.io/rev=stable, pod istio.io/rev=canary', { 'istio.io/rev': 'stable' }, { 'istio.io/rev': 'canary' }, ['stable (tag prod)']],
    ['istio-injection=enabled, pod istio.io/rev=canary', { 'istio-injection': 'enabled' }, { 'istio.io/rev': 'canary' }, ['default']],
    ['istio-injection=disabled + istio.io/rev=canary', { 'istio-injection': 'disabled', 'istio.io/rev': 'canary' }, {}, []],
    ['istio.io/rev=canary, pod inject=false', { 'istio.io/rev': 'canary' }, { [inject]: 'false' }, []],
    ['unlabelled, plain pod', {}, {}, []],
  ] as Array<[string, Record<string, string>, Record<string, string>, string[]]>)('%s', (_, ns, pod, want) => {
    expect(reached(ns, pod)).toEqual(want);
  });
  it('a tag named default makes a revision the default one', () => {
    const hooks = injectorWebhooks({ ...base, revision: 'canary', revisionTags: ['default'] });
    expect(selectingWebhook(hooks, 'shop', { 'istio-injection': 'enabled' }, {})?.name).toBe('istio.namespace.sidecar-injector.weft.dev');
    expect(selectingWebhook(hooks, 'shop', { 'istio.io/rev': 'default' }, {})?.name).toBe('rev.namespace.sidecar-injector.weft.dev');
  });
  it('honorIstioLabels=false: only Weft’s label and the pod’s opt-in reach the default revision', () => {
    const hooks = injectorWebhooks({ ...base, revision: '', honorIstioLabels: false });
    expect(selectingWebhook(hooks, 'shop', { 'istio-injection': 'enabled' }, {})).toBeUndefined();
    expect(selectingWebhook(hooks, 'shop', { 'istio.io/rev': 'default' }, {})).toBeUndefined();
    expect(selectingWebhook(hooks, 'shop', { 'weft-injection': 'enabled' }, {})).toBeDefined();
  });
  it('the control plane and system namespaces are never selected', () => {
    expect(reached({ 'weft-injection': 'enabled' }, {}, 'weft-system')).toEqual([]);
    expect(reached({ 'istio.io/rev': 'canary' }, {}, 'kube-system')).toEqual([]);
  });
});

describe('multipleInjectionLabels (IST0123)', () => {
  it.each([
    [{ 'istio-injection': 'enabled', 'istio.io/rev': 'canary' }, ['istio-injection=enabled', 'istio.io/rev=canary']],
    [{ 'weft-injection': 'enabled', 'istio.io/rev': 'canary' }, ['weft-injection=enabled', 'istio.io/rev=canary']],
    [{ 'istio-injection': 'disabled', 'istio.io/rev': 'canary' }, []],
    [{ 'istio.io/rev': 'canary' }, []],
    [{ 'istio-injection': 'enabled' }, []],
  ])('%j', (labels, want) => {
    expect(multipleInjectionLabels(labels, 'weft-injection')).toEqual(want);
  });
});
