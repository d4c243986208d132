// Private keys never reach the terminal: weftd's config dump should hold none
// (workload keys stay with the agent), but whatever arrives is masked first.
export const redacted = '[redacted]';

const privateKeyField = /^private_?key$/i;
const pemPrivateKey = /PRIVATE KEY/;

function holdsPrivateKey(text: string): boolean {
  if (pemPrivateKey.test(text)) return true;
  // bytes fields arrive base64-encoded; a PEM key (or a message carrying one) shows after decoding.
  return text.length >= 40 && /^[A-Za-z0-9+/=\s]+$/.test(text) && pemPrivateKey.test(Buffer.from(text, 'base64').toString('latin1'));
}

export function maskPrivateKeys<T>(value: T): T {
  const walk = (node: unknown): unknown => {
    if (typeof node === 'string') return holdsPrivateKey(node) ? redacted : node;
    if (Array.isArray(node)) return node.map(walk);
    if (!node || typeof node !== 'object') return node;
    return Object.fromEntries(Object.entries(node).map(([key, child]) => [key, privateKeyField.test(key) ? redacted : walk(child)]));
  };
  return walk(value) as T;
}
