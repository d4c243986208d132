// HTTPS for the admission webhooks on 15017. Thin: parse, hand to the pure
// reviewers, answer. Bodies are bounded and requests time out well inside the
// webhook configuration's timeoutSeconds.
import { createServer, type Server } from 'node:https';
import type { Logger } from '../lib/logger.js';
import type { AdmissionReviewOut } from './admission-review.js';

export const maxAdmissionBytes = 3 * 1024 * 1024;

export interface WebhookRoutes {
  [path: string]: (body: unknown) => AdmissionReviewOut;
}

export interface ServingCertificate {
  certChainPem: string;
  privateKeyPem: string;
}

export class WebhookServer {
  private readonly server: Server;
  private certificate: ServingCertificate;

  constructor(certificate: ServingCertificate, routes: WebhookRoutes, log: Logger) {
    this.certificate = certificate;
    this.server = createServer({ cert: certificate.certChainPem, key: certificate.privateKeyPem, minVersion: 'TLSv1.2' }, (req, res) => {
      const route = routes[(req.url ?? '').split('?')[0] ?? ''];
      const answer = (status: number, body: unknown) => {
        res.statusCode = status;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(body));
      };
      if (req.method !== 'POST' || !route) {
        answer(404, { message: `no webhook at ${req.method} ${req.url}; use POST ${Object.keys(routes).join(' or ')}` });
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxAdmissionBytes) {
          if (!res.headersSent) {
            res.setHeader('connection', 'close');
            answer(413, { message: `AdmissionReview larger than ${maxAdmissionBytes} bytes` });
            res.on('finish', () => req.destroy());
          }
          return;
        }
        chunks.push(chunk);
      });
      req.on('end', () => {
        if (res.writableEnded) return;
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          answer(400, { message: 'the request body is not JSON' });
          return;
        }
        try {
          answer(200, route(body));
        } catch (error) {
          log.error({ path: req.url, error: error instanceof Error ? error.message : String(error) }, 'webhook failed');
          answer(500, { message: 'the webhook failed; see the control plane logs' });
        }
      });
    });
    this.server.requestTimeout = 8_000;
    this.server.headersTimeout = 5_000;
  }

  async listen(host: string, port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, resolve);
    });
  }

  /** New certificate for new connections (rotation without a restart). */
  rotate(certificate: ServingCertificate): void {
    this.server.setSecureContext({ cert: certificate.certChainPem, key: certificate.privateKeyPem });
    this.certificate = certificate;
  }

  /** The chain (PEM, leaf first) new connections are served: what the readiness check expects to see on 15017. */
  get servedChainPem(): string {
    return this.certificate.certChainPem;
  }

  get port(): number {
    const address = this.server.address();
    return address && typeof address === 'object' ? address.port : 0;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
