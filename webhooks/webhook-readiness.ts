// Whether the API server can call weftd's webhooks right now, checked the way the API
// server calls them: a TLS handshake to 15017 that must present the certificate weftd
// loaded, verified against the caBundle of each webhook as read back from the API
// server, for the name the API server dials (`<service>.<namespace>.svc`). A pod created
// when weftd reports ready must be injected, not refused (failurePolicy Fail) nor let
// through without a sidecar (Ignore), which is what users of Istio hit when a webhook's
// caBundle or serving certificate lags the control plane's readiness.
import { X509Certificate } from 'node:crypto';
import { connect, type PeerCertificate } from 'node:tls';

/** One webhook configuration as the API server stores it (`found: false` when it does not exist). */
export interface WebhookConfigurationView {
  kind: 'MutatingWebhookConfiguration' | 'ValidatingWebhookConfiguration';
  name: string;
  found: boolean;
  /** Each webhook's name and `clientConfig.caBundle` (base64 of PEM, as the API stores it), if any. */
  webhooks: Array<{ name: string; caBundle?: string }>;
}

export interface WebhookReadinessInput {
  /** Where weftd's webhook server listens (the pod IP and 15017). */
  address: { host: string; port: number };
  /** The name the API server verifies: the webhook Service's `<name>.<namespace>.svc`. */
  serverName: string;
  /** The chain (PEM, leaf first) the webhook server was given most recently. */
  servedChainPem: string;
  configurations: WebhookConfigurationView[];
  /** Per handshake, default 2,000 ms. */
  timeoutMs?: number;
}

/** Each readiness requirement's problem, `undefined` when met. */
export interface WebhookReadiness {
  /** 15017 answers TLS with the loaded certificate. */
  serving: string | undefined;
  /** Every webhook's caBundle verifies that certificate for `serverName`. */
  caBundle: string | undefined;
}

/**
 * Checks weftd's webhook serving, as the API server would call it. `serving` is a problem when
 * nothing answers TLS on the address or it presents a leaf other than `servedChainPem`'s first
 * certificate; `caBundle` when a configuration or a webhook's caBundle is missing, or a caBundle
 * does not verify the served chain for `serverName` (Node's verification: the bundle as roots, the
 * presented intermediates, the DNS SAN, as Go's crypto/tls does in the API server's webhook client).
 * Never throws: every failure is a problem in words a user can act on.
 */
export async function checkWebhookReadiness(input: WebhookReadinessInput): Promise<WebhookReadiness> {
  const where = `${input.address.host}:${input.address.port}`;
  const timeoutMs = input.timeoutMs ?? 2_000;
  let serving: string | undefined;
  let expectedLeaf: Buffer;
  try {
    expectedLeaf = new X509Certificate(input.servedChainPem).raw;
  } catch (error) {
    return { serving: `the webhook serving certificate does not parse: ${messageOf(error)}`, caBundle: 'no serving certificate to verify' };
  }
  const unverified = await handshake(input.address, input.serverName, undefined, timeoutMs);
  if ('error' in unverified) serving = `nothing answers TLS on ${where}: ${unverified.error}`;
  else if (!unverified.leaf.equals(expectedLeaf))
    serving = `${where} presents a certificate other than the one weftd loaded (a rotation not yet served)`;

  const problems: string[] = [];
  const bundles = new Map<string, string>();
  for (const configuration of input.configurations) {
    const what = `${configuration.kind} ${configuration.name}`;
    if (!configuration.found) {
      problems.push(`${what} not found (the operator creates it; weftd sets its caBundle)`);
      continue;
    }
    if (configuration.webhooks.length === 0) problems.push(`${what} has no webhooks`);
    for (const hook of configuration.webhooks) {
      if (!hook.caBundle) problems.push(`${what} webhook ${hook.name} has no caBundle yet (weftd sets it)`);
      else if (!bundles.has(hook.caBundle)) bundles.set(hook.caBundle, `${what} webhook ${hook.name}`);
    }
  }
  // Without a server answering, a bundle cannot be checked; say so once rather than once per bundle.
  if (serving === undefined) {
    for (const [encoded, owner] of bundles) {
      const verified = await handshake(input.address, input.serverName, Buffer.from(encoded, 'base64').toString('utf8'), timeoutMs);
      if ('error' in verified)
        problems.push(
          `the caBundle of ${owner} does not verify the certificate served on ${where} for ${input.serverName}: ${verified.error}`,
        );
    }
  } else if (bundles.size > 0) {
    problems.push('the caBundle cannot be checked until the webhook serving certificate is served');
  }
  return { serving, caBundle: problems.length > 0 ? problems.join('; ') : undefined };
}

/** A TLS handshake; with `ca`, verified against it (roots) for `serverName`, else unverified. */
async function handshake(
  address: { host: string; port: number },
  serverName: string,
  ca: string | undefined,
  timeoutMs: number,
): Promise<{ leaf: Buffer } | { error: string }> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (result: { leaf: Buffer } | { error: string }) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve(result);
    };
    const socket = connect({
      host: address.host,
      port: address.port,
      servername: serverName,
      ...(ca === undefined ? { rejectUnauthorized: false } : { ca, rejectUnauthorized: true }),
      // The API server offers h2 and http/1.1; the certificate does not depend on it.
      ALPNProtocols: ['http/1.1'],
    });
    socket.setTimeout(timeoutMs, () => done({ error: `no TLS handshake within ${timeoutMs} ms` }));
    socket.once('secureConnect', () => {
      const peer: PeerCertificate = socket.getPeerCertificate();
      done(peer.raw ? { leaf: peer.raw } : { error: 'no certificate presented' });
    });
    socket.once('error', (error) => done({ error: messageOf(error) }));
  });
}

function messageOf(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' && !error.message.includes(code) ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}
