// Structured JSON logs on stderr, one child logger per component.
import { pino, type Logger } from 'pino';

const root: Logger = pino(
  {
    level: process.env['WEFT_LOG_LEVEL'] ?? 'info',
    base: { app: 'weft' },
    // Never let a key or token reach a log line, whatever a caller passes.
    redact: { paths: ['*.privateKey', '*.privateKeyPem', '*.token', '*.password', 'privateKey', 'token'], censor: '[redacted]' },
  },
  pino.destination(2),
);

export type { Logger };

export function componentLogger(component: string): Logger {
  return root.child({ component });
}
