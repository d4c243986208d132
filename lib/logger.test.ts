import type { AddressInfo } from 'node:net';
import { componentLogger, LogLevels } from './logger.js';
import { DebugRequestError, logLevelEndpoint, startMonitoringServer } from './monitoring.js';

function capture(): { lines: Array<Record<string, unknown>>; stream: { write(line: string): void } } {
  const lines: Array<Record<string, unknown>> = [];
  return { lines, stream: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) } };
}

describe('per-component log levels', () => {
  it('changes the level of loggers already made, their children, and later ones', () => {
    const { lines, stream } = capture();
    const levels = new LogLevels('info', stream);
    const model = levels.root.child({ component: 'xds-model' });
    const perInstallation = model.child({ installation: 'default' });
    const ads = levels.root.child({ component: 'ads' });
    model.debug('hidden');
    levels.setLevel('xds-model', 'debug');
    model.debug('model debug');
    perInstallation.debug('child debug');
    ads.debug('ads stays at info');
    levels.root.child({ component: 'xds-model' }).debug('later logger');
    expect(lines.map((l) => l['msg'])).toEqual(['model debug', 'child debug', 'later logger']);
    expect(levels.list()).toEqual({ ads: 'info', 'xds-model': 'debug' });
  });

  it('a component of its own nested under another follows its own level', () => {
    const { lines, stream } = capture();
    const levels = new LogLevels('info', stream);
    const election = levels.root.child({ component: 'operator' }).child({ component: 'leader-election' });
    levels.setLevel('operator', 'error');
    election.info('still at info');
    levels.setLevel('leader-election', 'warn');
    election.info('now hidden');
    expect(lines.map((l) => l['msg'])).toEqual(['still at info']);
    expect(lines[0]?.['component']).toBe('leader-election');
  });

  it('writes each field once: a nested component replaces the one above it', () => {
    const raw: string[] = [];
    const levels = new LogLevels('info', { write: (line: string) => void raw.push(line) });
    const ca = levels.root.child({ component: 'control-plane' }).child({ component: 'ca' });
    ca.child({ namespace: 'a' }).child({ namespace: 'b' }).info('nested');
    levels.root.child({ component: 'plain' }).info('plain');
    expect(raw).toHaveLength(2);
    expect(raw[0]?.match(/"component"/g)).toHaveLength(1);
    expect(raw[0]?.match(/"namespace"/g)).toHaveLength(1);
    expect(JSON.parse(raw[0] as string)).toMatchObject({ app: 'weft', component: 'ca', namespace: 'b', msg: 'nested' });
    expect(JSON.parse(raw[1] as string)).toMatchObject({ app: 'weft', component: 'plain', msg: 'plain' });
  });

  it('without a component, sets every component and the default', () => {
    const { lines, stream } = capture();
    const levels = new LogLevels('info', stream);
    const a = levels.root.child({ component: 'a' });
    levels.setLevel('a', 'debug');
    levels.setLevel(undefined, 'error');
    a.warn('hidden');
    levels.root.child({ component: 'b' }).warn('hidden too');
    expect(lines).toEqual([]);
    expect(levels.list()).toEqual({ a: 'error', b: 'error' });
  });

  it('/debug/loglevel lists, sets and refuses bad levels', () => {
    const levels = new LogLevels('info', capture().stream);
    levels.root.child({ component: 'xds-model' });
    const endpoint = logLevelEndpoint(levels);
    expect(endpoint(new URLSearchParams(), 'GET')).toEqual({ 'xds-model': 'info' });
    expect(endpoint(new URLSearchParams('component=xds-model&level=debug'), 'PUT')).toEqual({ 'xds-model': 'debug' });
    expect(() => endpoint(new URLSearchParams('component=xds-model&level=loud'), 'PUT')).toThrow(DebugRequestError);
    expect(() => endpoint(new URLSearchParams(), 'DELETE')).toThrow(/use GET/);
  });

  it('is served on the monitoring port for the process-wide loggers', async () => {
    const log = componentLogger('loglevel-test');
    const server = await startMonitoringServer('127.0.0.1', 0, () => true);
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/debug/loglevel`;
      const put = await fetch(`${base}?component=loglevel-test&level=trace`, { method: 'PUT' });
      expect(put.status).toBe(200);
      expect(await put.json()).toEqual({ 'loglevel-test': 'trace' });
      expect(log.level).toBe('trace');
      const listed = (await (await fetch(base)).json()) as Record<string, string>;
      expect(listed['loglevel-test']).toBe('trace');
      const bad = await fetch(`${base}?component=loglevel-test&level=loud`, { method: 'PUT' });
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { error: string }).error).toMatch(/level must be one of/);
    } finally {
      server.close();
    }
  });
});
