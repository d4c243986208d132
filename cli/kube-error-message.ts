// Kubernetes client failures, said in a sentence that names the API server and
// the next thing to check. Pure: the I/O layer passes the error and where it went.
import { ApiException } from '@kubernetes/client-node';

const networkCode = /^(E[A-Z0-9_]+|UNABLE_TO_|CERT_|DEPTH_ZERO|SELF_SIGNED|ERR_TLS|ERR_SSL|UND_ERR)/;

/** The low-level cause of a connection failure (undici wraps it in "fetch failed"), if this is one. */
export function connectionFailure(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current; depth++) {
    const { code, message } = current as { code?: unknown; message?: unknown };
    if (typeof code === 'string' && networkCode.test(code) && typeof message === 'string') return message;
    current = (current as { cause?: unknown }).cause;
  }
  if (error instanceof TypeError && error.message === 'fetch failed') return 'fetch failed';
  return undefined;
}

/** The API server's own message from a Status body, else the error's. */
export function apiServerMessage(error: unknown): string {
  if (error instanceof ApiException) {
    const body = error.body as unknown;
    try {
      const parsed = (typeof body === 'string' ? JSON.parse(body) : body) as { message?: string } | null;
      if (parsed?.message) return parsed.message;
    } catch {
      if (typeof body === 'string' && body.trim()) return body.trim();
    }
    return `HTTP ${error.code}`;
  }
  return error instanceof Error ? error.message : String(error);
}

/** A failed raw request: the API server's Status message and code. */
export class ApiStatusError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }

  static from(statusCode: number, body: string): ApiStatusError {
    try {
      const status = JSON.parse(body) as { message?: string };
      if (status.message) return new ApiStatusError(statusCode, status.message);
    } catch {
      // not a Status
    }
    return new ApiStatusError(statusCode, body.trim().slice(0, 300) || `HTTP ${statusCode}`);
  }
}

export function statusCodeOf(error: unknown): number | undefined {
  if (error instanceof ApiException) return error.code;
  const code = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

/**
 * What to tell the user when `doing` (e.g. "listing MeshInstallations") failed
 * against the API server at `server`.
 */
export function describeKubeError(error: unknown, server: string, doing: string, hint = ''): string {
  const unreachable = connectionFailure(error);
  if (unreachable) return `cannot reach the Kubernetes API at ${server}: ${unreachable}; check your kubeconfig/context${hint}`;
  const status = statusCodeOf(error);
  if (status === 401) {
    return `the Kubernetes API at ${server} did not accept your credentials (401 Unauthorized) while ${doing}; check your kubeconfig/context`;
  }
  if (status === 403) return `${doing}: forbidden: ${apiServerMessage(error)}`;
  return `${doing}: ${apiServerMessage(error)}`;
}
