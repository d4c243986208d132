import { describePath, fieldPaths, fuzzCases, loadSeeds } from './admission-fuzz.js';
import { seededRandom } from './seeded-random.js';

const root = process.cwd();

describe('admission fuzzing', () => {
  const seeds = loadSeeds(root);

  it('starts from real pods for the injector and Istio objects of every validated kind', () => {
    expect(seeds.filter((s) => s.path === '/inject').length).toBeGreaterThan(10);
    const kinds = new Set(
      seeds.filter((s) => s.path === '/validate').map((s) => (s.review['request'] as { kind: { kind: string } }).kind.kind),
    );
    for (const kind of [
      'VirtualService',
      'DestinationRule',
      'ServiceEntry',
      'Sidecar',
      'PeerAuthentication',
      'AuthorizationPolicy',
      'RequestAuthentication',
    ])
      expect(kinds).toContain(kind);
  });

  it('is the same for the same seed, and differs for another', () => {
    const run = (seed: number) => [...fuzzCases(seeds, seededRandom(seed), 200)].map((c) => JSON.stringify(c.review));
    expect(run(7)).toEqual(run(7));
    expect(run(7)).not.toEqual(run(8));
  });

  it('gives every field of every seed, the envelope included, a wrong JSON type before any field gets a second one', () => {
    const some = [...seeds.filter((s) => s.path === '/inject').slice(0, 2), ...seeds.filter((s) => s.path === '/validate').slice(0, 3)];
    const fields = some.reduce((sum, seed) => sum + fieldPaths(seed.review).length, 0);
    const cases = [...fuzzCases(some, seededRandom(1), Math.ceil(fields / 0.6) + 10)];
    const swept = new Set(cases.filter((c) => c.wrongTypeField).map((c) => `${c.mutation.split(':')[0]} ${c.wrongTypeField}`));
    expect(swept.size).toBe(fields);
    expect(swept.size).toBe(new Set(some.flatMap((s) => fieldPaths(s.review).map((p) => `${s.name} ${describePath(p)}`))).size);
    expect(swept).toContain('deployment-pod request.uid');
    expect(swept).toContain('deployment-pod request.object.spec.containers[0].ports');
    // The field really has another type in the review sent.
    const ports = cases.find((c) => c.mutation.startsWith('deployment-pod: request.object.spec.containers[0].ports as'));
    const sent = (ports?.review as { request: { object: { spec: { containers: Array<{ ports: unknown }> } } } }).request.object.spec
      .containers[0]?.ports;
    expect(Array.isArray(sent)).toBe(false);
  });

  it('gives each review its own uid unless the uid itself is the mutated field', () => {
    const cases = [...fuzzCases(seeds, seededRandom(3), 300)];
    const uids = cases.map((c) => (c.review as { request?: { uid?: unknown } }).request?.uid).filter((uid) => typeof uid === 'string');
    expect(uids.filter((uid) => uid === 'seed')).toEqual([]);
    expect(new Set(uids).size).toBe(uids.length);
  });
});
