// Fetches the JWKS of RequestAuthentication rules, as istiod does, so that the
// keys are inlined into the proxies' jwt_authn config (request-authentication.ts)
// and no proxy needs a route to the identity provider. A rule's `jwksUri` is
// fetched as is; a rule with only an `issuer` goes through OpenID discovery
// (`<issuer>/.well-known/openid-configuration`, then its `jwks_uri`) and is keyed
// by the issuer. Each document is refreshed every 20 minutes (istiod's
// PILOT_JWT_PUB_KEY_REFRESH_INTERVAL); a failed refresh keeps the last good keys.
// Thin I/O: what to fetch comes from jwksSources(), which is pure.
import type { Logger } from '../../lib/logger.js';
import type { ConfigObject, RequestAuthenticationSpec } from './istio-config.js';

export interface JwksSource {
  /** The key of `current()` (and of request-authentication.ts's `fetchedJwks`): the jwksUri, or the issuer for discovery. */
  key: string;
  /** What to fetch: the JWKS itself, or the issuer's OpenID configuration naming it. */
  url: string;
  discovery: boolean;
}

export interface JwksFetcherOptions {
  /** Per HTTP request. */
  timeoutMs?: number;
  /** A larger document is refused. */
  maxBytes?: number;
  refreshMs?: number;
  /** The first retry of a URI that never succeeded; doubled on each failure, up to refreshMs. */
  retryMs?: number;
}

const discoverySuffix = '/.well-known/openid-configuration';

/** What the rules need fetched: rules with inline `jwks` need nothing. Pure. */
export function jwksSources(policies: ReadonlyArray<ConfigObject<RequestAuthenticationSpec>>): JwksSource[] {
  const sources = new Map<string, JwksSource>();
  for (const policy of policies) {
    for (const rule of policy.spec.jwtRules ?? []) {
      if (rule.jwks) continue;
      const jwksUri = rule.jwksUri ?? rule.jwks_uri;
      if (jwksUri) sources.set(jwksUri, { key: jwksUri, url: jwksUri, discovery: false });
      else if (rule.issuer && !sources.has(rule.issuer))
        sources.set(rule.issuer, { key: rule.issuer, url: rule.issuer.replace(/\/+$/, '') + discoverySuffix, discovery: true });
    }
  }
  return [...sources.values()].sort((a, b) => a.key.localeCompare(b.key));
}

interface Entry {
  source: JwksSource;
  document?: string;
  error?: string;
  /** Whether a fetch has completed, well or not. */
  attempted: boolean;
  failures: number;
  timer?: NodeJS.Timeout;
  abort?: AbortController;
}

export class JwksFetcher {
  private readonly entries = new Map<string, Entry>();
  private readonly timeoutMs: number;
  private readonly maxBytes: number;
  private readonly refreshMs: number;
  private readonly retryMs: number;
  private stopped = false;

  constructor(
    private readonly log: Logger,
    /** Called when a fetch changed current(), errors() or settled() (not from want(): its caller reads them after). */
    private readonly onChange: () => void,
    options: JwksFetcherOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 5_000;
    this.maxBytes = options.maxBytes ?? 1024 * 1024;
    this.refreshMs = options.refreshMs ?? 20 * 60_000;
    this.retryMs = options.retryMs ?? 15_000;
  }

  /** The documents to keep fetched: new ones are fetched now, ones no longer wanted dropped; failed ones are retried. */
  want(sources: ReadonlyArray<JwksSource>): void {
    if (this.stopped) return;
    const wanted = new Map(sources.map((s) => [s.key, s]));
    let changed = false;
    for (const [key, entry] of this.entries) {
      const source = wanted.get(key);
      if (source && source.url === entry.source.url) continue;
      this.drop(entry);
      this.entries.delete(key);
      changed = true;
    }
    for (const source of wanted.values()) {
      if (this.entries.has(source.key)) continue;
      const entry: Entry = { source, attempted: false, failures: 0 };
      this.entries.set(source.key, entry);
      void this.refresh(entry);
      changed = true;
    }
    // A new set of URIs is a good moment to try again what failed.
    if (changed) for (const entry of this.entries.values()) if (entry.error && !entry.abort) void this.refresh(entry);
  }

  /** The good documents by key (jwksUri, or issuer for discovery). */
  current(): Record<string, string> {
    return Object.fromEntries(
      [...this.entries].flatMap(([key, entry]) => (entry.document !== undefined ? [[key, entry.document] as const] : [])),
    );
  }

  /** Why the last fetch of a key failed (its last good document, if any, is still in current()). */
  errors(): Record<string, string> {
    return Object.fromEntries([...this.entries].flatMap(([key, entry]) => (entry.error ? [[key, entry.error] as const] : [])));
  }

  /** Whether every wanted document has been tried at least once (before that, a missing one is not yet a failure). */
  settled(): boolean {
    return [...this.entries.values()].every((entry) => entry.attempted);
  }

  stop(): void {
    this.stopped = true;
    for (const entry of this.entries.values()) this.drop(entry);
    this.entries.clear();
  }

  private drop(entry: Entry): void {
    if (entry.timer) clearTimeout(entry.timer);
    entry.abort?.abort();
    entry.timer = entry.abort = undefined;
  }

  private async refresh(entry: Entry): Promise<void> {
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = undefined;
    const abort = new AbortController();
    entry.abort = abort;
    let document: string | undefined;
    let error: string | undefined;
    try {
      document = await this.fetchJwks(entry.source, abort.signal);
    } catch (e) {
      const cause = isError(e) && isError(e.cause) ? e.cause.message : undefined;
      error = isError(e) ? (cause ? `${e.message}: ${cause}` : e.message) : String(e);
    }
    // Dropped or replaced meanwhile: nothing to report.
    if (abort.signal.aborted || this.entries.get(entry.source.key) !== entry) return;
    entry.abort = undefined;
    const before = JSON.stringify([entry.document, entry.error, entry.attempted]);
    entry.attempted = true;
    if (document !== undefined) {
      entry.document = document;
      entry.error = undefined;
      entry.failures = 0;
    } else {
      entry.error = error;
      entry.failures++;
      this.log.warn(
        {
          uri: entry.source.url,
          ...(entry.source.discovery ? { issuer: entry.source.key } : {}),
          error,
          keepingLastGood: entry.document !== undefined,
        },
        'could not fetch the JWKS of a RequestAuthentication rule: check that the URI is right and reachable from the control plane, ' +
          'and that it serves a JSON Web Key Set' +
          (entry.source.discovery ? ' (the issuer must serve OpenID discovery, or the rule must set jwksUri or jwks)' : ''),
      );
    }
    const delay =
      document !== undefined || entry.document !== undefined
        ? this.refreshMs
        : Math.min(this.refreshMs, this.retryMs * 2 ** Math.min(entry.failures - 1, 16));
    entry.timer = setTimeout(() => void this.refresh(entry), delay);
    entry.timer.unref();
    if (before !== JSON.stringify([entry.document, entry.error, entry.attempted])) this.onChange();
  }

  private async fetchJwks(source: JwksSource, signal: AbortSignal): Promise<string> {
    let url = source.url;
    if (source.discovery) {
      const configuration = parseJson(await this.get(url, signal), url);
      const jwksUri = (configuration as { jwks_uri?: unknown }).jwks_uri;
      if (typeof jwksUri !== 'string' || !jwksUri) throw new Error(`${url}: the OpenID configuration has no jwks_uri`);
      url = jwksUri;
    }
    const jwks = parseJson(await this.get(url, signal), url) as { keys?: unknown };
    if (!Array.isArray(jwks.keys) || jwks.keys.length === 0)
      throw new Error(`${url}: not a JSON Web Key Set (no "keys" array with at least one key)`);
    if (!jwks.keys.every((k) => typeof k === 'object' && k !== null && typeof (k as { kty?: unknown }).kty === 'string'))
      throw new Error(`${url}: every key of a JSON Web Key Set needs a "kty"`);
    return JSON.stringify(jwks);
  }

  /** One GET: http(s) only, within the timeout, at most maxBytes. */
  private async get(url: string, signal: AbortSignal): Promise<string> {
    const protocol = URL.canParse(url) ? new URL(url).protocol : '';
    if (protocol !== 'https:' && protocol !== 'http:') throw new Error(`${url}: not an http(s) URL`);
    const response = await fetch(url, {
      signal: AbortSignal.any([signal, AbortSignal.timeout(this.timeoutMs)]),
      headers: { accept: 'application/json' },
      redirect: 'follow',
    }).catch((error: unknown) => {
      if (isError(error) && error.name === 'TimeoutError') throw new Error(`${url}: no answer within ${this.timeoutMs} ms`);
      throw isError(error) ? new Error(`${url}: ${error.message}`, { cause: error.cause }) : error;
    });
    const tooLarge = () => new Error(`${url}: larger than ${this.maxBytes} bytes`);
    if (!response.ok) {
      await response.body?.cancel();
      throw new Error(`${url}: HTTP ${response.status}`);
    }
    if (Number(response.headers.get('content-length') ?? 0) > this.maxBytes) {
      await response.body?.cancel();
      throw tooLarge();
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    if (response.body) {
      const reader = response.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.byteLength;
        if (size > this.maxBytes) {
          await reader.cancel();
          throw tooLarge();
        }
        chunks.push(value);
      }
    }
    return Buffer.concat(chunks).toString('utf8');
  }
}

/** Errors from fetch (undici) may come from another realm (a DOMException, or an Error of Node's own context). */
function isError(value: unknown): value is Error {
  return typeof value === 'object' && value !== null && typeof (value as { message?: unknown }).message === 'string';
}

function parseJson(text: string, url: string): object {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`${url}: not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${url}: not a JSON object`);
  return value;
}
