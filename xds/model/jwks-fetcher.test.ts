import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { componentLogger } from '../../lib/logger.js';
import { JwksFetcher, jwksSources, type JwksSource } from './jwks-fetcher.js';

const log = componentLogger('jwks-fetcher-test');
const jwks = (kid: string) => JSON.stringify({ keys: [{ kty: 'RSA', kid, n: 'AQAB', e: 'AQAB' }] });

/** A real HTTP server on loopback; each path answers what `routes` says at the time of the request. */
describe('JwksFetcher', () => {
  let server: Server;
  let base: string;
  const routes = new Map<string, (res: ServerResponse) => void>();
  const hits = new Map<string, number>();
  const fetchers: JwksFetcher[] = [];

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const path = req.url ?? '';
      hits.set(path, (hits.get(path) ?? 0) + 1);
      const route = routes.get(path);
      if (route) route(res);
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(() => {
    for (const f of fetchers.splice(0)) f.stop();
    routes.clear();
    hits.clear();
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const json = (body: string) => (res: ServerResponse) => res.writeHead(200, { 'content-type': 'application/json' }).end(body);

  /** A fetcher whose onChange resolves the promise next() returns. */
  function fetcher(options: ConstructorParameters<typeof JwksFetcher>[2] = {}) {
    let waiting: (() => void) | undefined;
    let changes = 0;
    const f = new JwksFetcher(
      log,
      () => {
        changes++;
        waiting?.();
      },
      options,
    );
    fetchers.push(f);
    const next = () => new Promise<void>((resolve) => (waiting = resolve));
    return { f, next, changes: () => changes };
  }
  const uri = (path: string): JwksSource => ({ key: `${base}${path}`, url: `${base}${path}`, discovery: false });

  it('fetches each jwksUri, and an issuer through OpenID discovery; rules with inline jwks need nothing', () => {
    expect(
      jwksSources([
        {
          kind: 'RequestAuthentication',
          name: 'a',
          namespace: 'ns',
          spec: {
            jwtRules: [
              { issuer: 'https://one.example', jwksUri: 'https://one.example/keys' },
              { issuer: 'https://two.example/' },
              { issuer: 'https://three.example', jwks: jwks('k') },
            ],
          },
        },
      ]),
    ).toEqual([
      { key: 'https://one.example/keys', url: 'https://one.example/keys', discovery: false },
      { key: 'https://two.example/', url: 'https://two.example/.well-known/openid-configuration', discovery: true },
    ]);
  });

  it('fetches, caches until the refresh, and keeps the last good keys when a refresh fails', async () => {
    routes.set('/keys', json(jwks('one')));
    const { f, next } = fetcher({ refreshMs: 300 });
    expect(f.settled()).toBe(true);
    const fetched = next();
    f.want([uri('/keys')]);
    expect(f.settled()).toBe(false);
    await fetched;
    expect(f.settled()).toBe(true);
    expect(JSON.parse(f.current()[`${base}/keys`] ?? '')).toEqual(JSON.parse(jwks('one')));
    // The same set again: served from the cache.
    f.want([uri('/keys')]);
    expect(hits.get('/keys')).toBe(1);

    routes.set('/keys', (res) => res.writeHead(503).end());
    await next();
    expect(hits.get('/keys')).toBe(2);
    expect(f.current()[`${base}/keys`]).toContain('"one"');
    expect(f.errors()[`${base}/keys`]).toContain('HTTP 503');

    routes.set('/keys', json(jwks('two')));
    await next();
    expect(f.current()[`${base}/keys`]).toContain('"two"');
    expect(f.errors()).toEqual({});

    // No longer wanted: dropped.
    f.want([]);
    expect(f.current()).toEqual({});
  });

  it('refuses a document over the size cap, one that is not a key set, and an unreachable server, naming the URI', async () => {
    routes.set('/big', json(JSON.stringify({ keys: [{ kty: 'oct', k: 'x'.repeat(4096) }] })));
    routes.set('/chunked', (res) => {
      res.writeHead(200);
      for (let i = 0; i < 8; i++) res.write('x'.repeat(1024));
      res.end();
    });
    routes.set('/html', json('<html>login</html>'));
    routes.set('/nokeys', json('{"keys":[]}'));
    const { f, next } = fetcher({ maxBytes: 2048 });
    // A port nothing listens on any more.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedUri = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/keys`;
    await new Promise((resolve) => closed.close(resolve));
    const unreachable: JwksSource = { key: closedUri, url: closedUri, discovery: false };
    f.want([uri('/big'), uri('/chunked'), uri('/html'), uri('/nokeys'), unreachable]);
    while (!f.settled()) await next();
    expect(f.current()).toEqual({});
    const errors = f.errors();
    expect(errors[`${base}/big`]).toBe(`${base}/big: larger than 2048 bytes`);
    expect(errors[`${base}/chunked`]).toBe(`${base}/chunked: larger than 2048 bytes`);
    expect(errors[`${base}/html`]).toBe(`${base}/html: not JSON`);
    expect(errors[`${base}/nokeys`]).toContain('not a JSON Web Key Set');
    expect(errors[closedUri]).toMatch(new RegExp(`^${closedUri}: fetch failed: .*ECONNREFUSED`));
  });

  it('gives up on a server that does not answer within the timeout', async () => {
    routes.set('/slow', () => undefined);
    const { f, next } = fetcher({ timeoutMs: 200 });
    const failed = next();
    f.want([uri('/slow')]);
    await failed;
    expect(f.errors()[`${base}/slow`]).toBe(`${base}/slow: no answer within 200 ms`);
  });

  it("discovers an issuer's jwks_uri and keys the document by the issuer", async () => {
    routes.set('/issuer/.well-known/openid-configuration', json(JSON.stringify({ issuer: `${base}/issuer`, jwks_uri: `${base}/certs` })));
    routes.set('/certs', json(jwks('discovered')));
    const { f, next } = fetcher();
    const fetched = next();
    f.want(
      jwksSources([{ kind: 'RequestAuthentication', name: 'a', namespace: 'ns', spec: { jwtRules: [{ issuer: `${base}/issuer` }] } }]),
    );
    await fetched;
    expect(Object.keys(f.current())).toEqual([`${base}/issuer`]);
    expect(f.current()[`${base}/issuer`]).toContain('"discovered"');
  });

  it('retries a URI that never worked, sooner than the refresh, and when the set of URIs changes', async () => {
    const { f, next } = fetcher({ retryMs: 100 });
    const failed = next();
    f.want([uri('/later')]);
    await failed;
    expect(f.errors()[`${base}/later`]).toContain('HTTP 404');
    routes.set('/later', json(jwks('later')));
    await next();
    expect(f.current()[`${base}/later`]).toContain('"later"');

    routes.set('/other', json(jwks('other')));
    const { f: g, next: nextOfG } = fetcher({ retryMs: 60_000 });
    routes.delete('/later');
    const gFailed = nextOfG();
    g.want([uri('/later')]);
    await gFailed;
    routes.set('/later', json(jwks('later')));
    const both = (async () => {
      while (Object.keys(g.current()).length < 2) await nextOfG();
    })();
    g.want([uri('/later'), uri('/other')]);
    await both;
    expect(Object.keys(g.current()).sort()).toEqual([`${base}/later`, `${base}/other`]);
  });
});
