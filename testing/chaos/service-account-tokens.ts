// ServiceAccount tokens, real and hostile. Real ones come from the API server's
// TokenRequest; hostile ones are JWTs re-made from a real token's header and claims:
// re-signed with the cluster's own signing key but with claims the API server would
// never issue (expired, not yet valid, another issuer, another account's name with the
// first one's uid), or signed by nobody (alg none), by a stranger's key, or by the
// public key as an HMAC secret (algorithm confusion).
import { createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';

export interface JwtParts {
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
}

const b64url = (value: Buffer | string) => Buffer.from(value).toString('base64url');

export function decodeJwt(token: string): JwtParts {
  const [header, claims] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(header ?? '', 'base64url').toString('utf8')) as Record<string, unknown>,
    claims: JSON.parse(Buffer.from(claims ?? '', 'base64url').toString('utf8')) as Record<string, unknown>,
  };
}

/** A JWS compact token: RS256 with `key`, HS256 with a secret, or `alg: none` with no signature. */
export function encodeJwt(parts: JwtParts, signer: { rsa: KeyObject } | { hmac: Buffer } | 'none'): string {
  const alg = signer === 'none' ? 'none' : 'rsa' in signer ? 'RS256' : 'HS256';
  const input = `${b64url(JSON.stringify({ ...parts.header, alg }))}.${b64url(JSON.stringify(parts.claims))}`;
  if (signer === 'none') return `${input}.`;
  const signature =
    'rsa' in signer ? sign('sha256', Buffer.from(input), signer.rsa) : createHmac('sha256', signer.hmac).update(input).digest();
  return `${input}.${b64url(signature)}`;
}

export async function requestToken(
  kubeConfig: KubeConfig,
  namespace: string,
  serviceAccount: string,
  options: { audiences?: string[]; pod?: { name: string; uid: string } } = {},
): Promise<string> {
  const response = await kubeConfig.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
    name: serviceAccount,
    namespace,
    body: {
      spec: {
        audiences: options.audiences ?? ['istio-ca'],
        expirationSeconds: 3600,
        ...(options.pod ? { boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: options.pod.name, uid: options.pod.uid } } : {}),
      },
    },
  });
  const token = response.status?.token;
  if (!token) throw new Error(`TokenRequest for ${namespace}/${serviceAccount} returned no token`);
  return token;
}

/** Tokens a hostile caller could present, made from one real token of the CA's audience. */
export function hostileTokens(realToken: string, signingKeyPem: string, otherAccount: string): Record<string, string> {
  const real = decodeJwt(realToken);
  const clusterKey = createPrivateKey(signingKeyPem);
  const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const now = Math.floor(Date.now() / 1000);
  const claims = real.claims;
  const k8s = (claims['kubernetes.io'] ?? {}) as { namespace?: string; serviceaccount?: { name?: string; uid?: string } };
  const withClaims = (changes: Record<string, unknown>) => ({ header: real.header, claims: { ...claims, ...changes } });
  const [header, payload] = realToken.split('.');
  const tamperedClaims = b64url(
    JSON.stringify({
      ...claims,
      sub: `system:serviceaccount:${k8s.namespace}:${otherAccount}`,
      'kubernetes.io': { ...k8s, serviceaccount: { ...k8s.serviceaccount, name: otherAccount } },
    }),
  );
  return {
    'expired (signed by the cluster key)': encodeJwt(withClaims({ iat: now - 7200, nbf: now - 7200, exp: now - 3600 }), {
      rsa: clusterKey,
    }),
    'not yet valid (signed by the cluster key)': encodeJwt(withClaims({ iat: now + 3600, nbf: now + 3600, exp: now + 7200 }), {
      rsa: clusterKey,
    }),
    'another issuer (signed by the cluster key)': encodeJwt(withClaims({ iss: 'https://issuer.attacker.example' }), { rsa: clusterKey }),
    "another account's name with this account's uid (signed by the cluster key)": encodeJwt(
      withClaims({
        sub: `system:serviceaccount:${k8s.namespace}:${otherAccount}`,
        'kubernetes.io': { ...k8s, serviceaccount: { ...k8s.serviceaccount, name: otherAccount } },
      }),
      { rsa: clusterKey },
    ),
    'claims edited, signature kept': `${header}.${tamperedClaims}.${realToken.split('.')[2]}`,
    'signed by a stranger key': encodeJwt(withClaims({}), { rsa: stranger }),
    'unsigned (alg none)': encodeJwt(withClaims({}), 'none'),
    'HS256 with the public key as secret': encodeJwt(withClaims({}), {
      hmac: createPublicKey(clusterKey).export({ type: 'spki', format: 'pem' }) as Buffer,
    }),
    'signature stripped': `${header}.${payload}.`,
    truncated: realToken.slice(0, Math.floor(realToken.length / 2)),
    'not a JWT': 'this-is-not-a-token',
    'empty claims': encodeJwt({ header: real.header, claims: {} }, { rsa: stranger }),
    'oversized (4 KiB of claims)': encodeJwt(withClaims({ padding: 'x'.repeat(4 * 1024) }), { rsa: stranger }),
  };
}
