import type { AddressInfo } from 'node:net';
import { startMonitoringServer } from './monitoring.js';
import { ReadinessGate, readinessBody, type ReadinessReport } from './readiness.js';

const requirements = [
  { requirement: 'mesh model', problem: 'informers not started' },
  { requirement: 'webhook caBundle', problem: 'not yet read back from the API server' },
];

describe('ReadinessGate', () => {
  it('is ready only once every declared requirement is met, and names the missing ones in order', () => {
    const gate = new ReadinessGate(requirements);
    expect(gate.report()).toEqual({ ready: false, missing: requirements });
    gate.met('webhook caBundle');
    expect(gate.report()).toEqual({ ready: false, missing: [requirements[0]] });
    gate.met('mesh model');
    expect(gate.report()).toEqual({ ready: true, missing: [] });
    // What stops holding makes it unready again, with the new reason.
    gate.miss('webhook caBundle', 'MutatingWebhookConfiguration x webhook y has no caBundle yet');
    expect(gate.report()).toEqual({
      ready: false,
      missing: [{ requirement: 'webhook caBundle', problem: 'MutatingWebhookConfiguration x webhook y has no caBundle yet' }],
    });
  });

  it('tells listeners of each change once, never of a repeated state', () => {
    const gate = new ReadinessGate(requirements);
    const heard: ReadinessReport[] = [];
    gate.onChange((report) => heard.push(report));
    gate.miss('mesh model', 'informers not started');
    gate.miss('mesh model', 'informers not synced: pods');
    gate.miss('mesh model', 'informers not synced: pods');
    gate.met('mesh model');
    gate.met('webhook caBundle');
    gate.met('webhook caBundle');
    expect(heard.map((r) => r.missing.map((m) => m.problem))).toEqual([
      ['informers not synced: pods', 'not yet read back from the API server'],
      ['not yet read back from the API server'],
      [],
    ]);
  });

  it('refuses requirements declared twice or never declared (a bug, not a state)', () => {
    expect(() => new ReadinessGate([...requirements, requirements[0]!])).toThrow(/mesh model is declared twice/);
    expect(() => new ReadinessGate(requirements).met('injector config')).toThrow(/injector config was never declared/);
  });
});

describe('/ready', () => {
  it('answers 503 naming each missing requirement, then 200 once all are met', async () => {
    const gate = new ReadinessGate(requirements);
    const server = await startMonitoringServer('127.0.0.1', 0, () => gate.report());
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ready`;
      const before = await fetch(url);
      expect(before.status).toBe(503);
      expect(await before.text()).toBe(
        'not ready\nmesh model: informers not started\nwebhook caBundle: not yet read back from the API server\n',
      );
      gate.met('mesh model');
      gate.met('webhook caBundle');
      const after = await fetch(url);
      expect(after.status).toBe(200);
      expect(await after.text()).toBe('ready');
    } finally {
      server.close();
    }
  });

  it('keeps a plain flag working (the operator: ready while leader)', async () => {
    let leader = false;
    const server = await startMonitoringServer('127.0.0.1', 0, () => leader);
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ready`;
      expect((await fetch(url)).status).toBe(503);
      leader = true;
      expect((await fetch(url)).status).toBe(200);
    } finally {
      server.close();
    }
  });

  it('has a body a user can read', () => {
    expect(readinessBody({ ready: true, missing: [] })).toBe('ready');
  });
});
