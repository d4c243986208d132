// istio.v1.auth.IstioCertificateService/CreateCertificate, as istiod answers it.
// Every refusal is a gRPC status with a reason, counted, and issues nothing.
import { X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { certificatesIssued, csrCount, csrRefused, signingDuration } from '../../lib/monitoring.js';
import type { Logger } from '../../lib/logger.js';
import { repositoryFile } from '../../lib/repository-file.js';
import { CsrError, parseCsr } from '../pki/csr.js';
import { IssueError, effectiveTtlSeconds, issueWorkloadCertificate, type SigningCa, type TtlPolicy } from '../pki/workload-certificate.js';
import { AuthenticationError, type Caller } from './token-authenticator.js';

export interface CertificateServiceDeps {
  authenticate: (authorization: string | undefined) => Promise<Caller>;
  signingCa: () => SigningCa;
  trustDomain: string;
  ttl: TtlPolicy;
  log: Logger;
  /** Requests handled at once; more are refused with RESOURCE_EXHAUSTED rather than queued without bound. */
  maxInFlight?: number;
  /**
   * Requests one caller (one bearer token) has in flight at once; more are refused with
   * RESOURCE_EXHAUSTED (reason `caller_overloaded`), so a flood from one caller cannot take every
   * slot and starve the others. pilot-agent retries with backoff. Counted before the token is
   * checked, since the check is the costly part.
   */
  maxInFlightPerCaller?: number;
  /**
   * The PEM roots workloads must trust now. When given, the response ends with them as
   * one element, as istiod's does ("the root cert is the last element", its whole
   * root-cert.pem unflattened): pilot-agent serves that element as ROOTCA over SDS and
   * writes it as root-cert.pem for proxyless gRPC, so during a root rotation every
   * renewed workload trusts both roots.
   */
  trustBundle?: () => string;
  /** Told of every chain issued (leaf first), before the trust bundle is appended. */
  issued?: (chain: string[]) => void;
}

interface CertificateRequest {
  csr?: string;
  validity_duration?: string | number;
  metadata?: unknown;
}

export function certificateServiceDefinition(): grpc.ServiceDefinition {
  const definition = loadSync(repositoryFile('ca/proto/ca.proto', import.meta.url), { keepCase: true, longs: String, defaults: true });
  const service = definition['istio.v1.auth.IstioCertificateService'] as grpc.ServiceDefinition | undefined;
  if (!service) throw new Error('ca.proto does not define istio.v1.auth.IstioCertificateService');
  return service;
}

class Refusal extends Error {
  constructor(
    readonly code: grpc.status,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/** The chain with its own root (a self-signed last certificate) replaced by the whole trust bundle, as one element. */
export function withTrustBundle(chain: string[], bundle: string): string[] {
  const last = chain.at(-1);
  const top = last === undefined || chain.length < 2 ? undefined : new X509Certificate(last);
  const selfSigned = top !== undefined && top.ca && top.checkIssued(top) && top.verify(top.publicKey);
  return [...(selfSigned ? chain.slice(0, -1) : chain), bundle];
}

export function certificateServiceImplementation(deps: CertificateServiceDeps): grpc.UntypedServiceImplementation {
  let inFlight = 0;
  const maxInFlight = deps.maxInFlight ?? 256;
  const maxInFlightPerCaller = deps.maxInFlightPerCaller ?? 16;
  const inFlightByCaller = new Map<string, number>();

  const handle = async (call: grpc.ServerUnaryCall<CertificateRequest, unknown>): Promise<string[]> => {
    let caller: Caller;
    try {
      caller = await deps.authenticate(call.metadata.get('authorization')[0]?.toString());
    } catch (error) {
      if (error instanceof AuthenticationError) throw new Refusal(grpc.status.UNAUTHENTICATED, 'unauthenticated', error.message);
      throw new Refusal(
        grpc.status.UNAVAILABLE,
        'token_review_failed',
        `could not check the token with the apiserver: ${(error as Error).message}`,
      );
    }
    const stopTimer = signingDuration.startTimer();
    try {
      const csr = parseCsr(String(call.request.csr ?? ''));
      const ttlSeconds = effectiveTtlSeconds(Number(call.request.validity_duration ?? 0), deps.ttl);
      const chain = issueWorkloadCertificate({ csr, identity: { trustDomain: deps.trustDomain, ...caller }, ttlSeconds }, deps.signingCa());
      deps.issued?.(chain);
      return deps.trustBundle ? withTrustBundle(chain, deps.trustBundle()) : chain;
    } catch (error) {
      if (error instanceof CsrError) throw new Refusal(grpc.status.INVALID_ARGUMENT, 'invalid_csr', error.message);
      if (error instanceof IssueError) {
        if (error.kind === 'identity') throw new Refusal(grpc.status.PERMISSION_DENIED, 'identity_mismatch', error.message);
        if (error.kind === 'ttl') throw new Refusal(grpc.status.INVALID_ARGUMENT, 'invalid_ttl', error.message);
        throw new Refusal(grpc.status.FAILED_PRECONDITION, 'ca_expired', error.message);
      }
      throw error;
    } finally {
      stopTimer();
    }
  };

  return {
    CreateCertificate: (call: grpc.ServerUnaryCall<CertificateRequest, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      csrCount.inc();
      if (inFlight >= maxInFlight) {
        csrRefused.inc({ reason: 'overloaded' });
        callback({ code: grpc.status.RESOURCE_EXHAUSTED, details: `the CA is handling ${inFlight} requests; retry with backoff` });
        return;
      }
      const caller = call.metadata.get('authorization')[0]?.toString() ?? '';
      const callerInFlight = inFlightByCaller.get(caller) ?? 0;
      if (callerInFlight >= maxInFlightPerCaller) {
        csrRefused.inc({ reason: 'caller_overloaded' });
        callback({
          code: grpc.status.RESOURCE_EXHAUSTED,
          details: `this caller already has ${callerInFlight} certificate requests in flight; retry with backoff`,
        });
        return;
      }
      inFlight++;
      inFlightByCaller.set(caller, callerInFlight + 1);
      handle(call)
        .then(
          (chain) => {
            certificatesIssued.inc();
            callback(null, { cert_chain: chain });
          },
          (error: unknown) => {
            if (error instanceof Refusal) {
              csrRefused.inc({ reason: error.reason });
              deps.log.info({ reason: error.reason, peer: call.getPeer(), detail: error.message }, 'certificate request refused');
              callback({ code: error.code, details: error.message });
              return;
            }
            csrRefused.inc({ reason: 'internal' });
            deps.log.error({ error: error instanceof Error ? error.message : String(error) }, 'certificate request failed');
            callback({ code: grpc.status.INTERNAL, details: 'the CA failed to sign; see the control plane logs' });
          },
        )
        .finally(() => {
          inFlight--;
          const left = (inFlightByCaller.get(caller) ?? 1) - 1;
          if (left > 0) inFlightByCaller.set(caller, left);
          else inFlightByCaller.delete(caller);
        });
    },
  };
}
