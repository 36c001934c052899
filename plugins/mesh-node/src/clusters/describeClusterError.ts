import { ClusterError } from '@tailmesh/plugin-mesh-common';

const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'EPROTO',
]);
const TIMEOUT_CODES = new Set([
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'ABORT_ERR',
]);
const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN']);
const REFUSED_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
]);

/** Walks an error and its causes for the first Node/undici error code. */
function errorCode(e: unknown): string | undefined {
  for (let cur = e, depth = 0; cur && depth < 5; depth++) {
    const { code, cause } = cur as { code?: unknown; cause?: unknown };
    if (typeof code === 'string') return code;
    cur = cause;
  }
  return undefined;
}

function httpStatus(e: unknown): number | undefined {
  const code =
    (e as { code?: unknown; statusCode?: unknown })?.code ??
    (e as { statusCode?: unknown })?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

/**
 * Says why a cluster could not be read, in words a platform engineer acts on. Never includes
 * request headers or bodies, so no credential can leak through it.
 *
 * @public
 */
export function describeClusterError(
  cluster: string,
  url: string | undefined,
  e: unknown,
): ClusterError {
  const status = httpStatus(e);
  const server = url ?? 'its API server';
  if (status === 401) {
    return {
      kind: 'unauthorized',
      message: `${cluster}: the API server${url ? ` at ${url}` : ''} rejected the credentials (401 Unauthorized); check the service account token`,
    };
  }
  if (status === 403) {
    return {
      kind: 'forbidden',
      message: `${cluster}: the credentials are valid but not allowed to read what Tailmesh needs (403 Forbidden); check the RBAC binding`,
    };
  }
  const code = errorCode(e);
  if (code && TLS_CODES.has(code)) {
    return {
      kind: 'tls',
      message: `${cluster}: TLS verification of ${server} failed (${code}); check caData/caFile and tlsServerName`,
    };
  }
  if (
    (code && TIMEOUT_CODES.has(code)) ||
    (e as Error)?.name === 'TimeoutError' ||
    (e as Error)?.name === 'AbortError'
  ) {
    return {
      kind: 'timeout',
      message: `${cluster}: ${server} did not answer in time`,
    };
  }
  if (code && DNS_CODES.has(code)) {
    return {
      kind: 'dns',
      message: `${cluster}: the host of ${server} does not resolve (${code})`,
    };
  }
  if (code && REFUSED_CODES.has(code)) {
    return {
      kind: 'connection-refused',
      message: `${cluster}: cannot connect to ${server} (${code}); is the API server up?`,
    };
  }
  if (status) {
    return {
      kind: 'unknown',
      message: `${cluster}: the API server answered HTTP ${status}`,
    };
  }
  const message = e instanceof Error ? e.message : String(e);
  // Unknown errors could in theory quote a request; keep only the first line and cap it.
  const first = message.split('\n')[0];
  return {
    kind: 'unknown',
    message: `${cluster}: ${(url ? first : withoutAddresses(first)).slice(0, 200)}`,
  };
}

/** Replaces URLs and IPv4 addresses (with their ports) in a message. */
function withoutAddresses(message: string): string {
  return message
    .replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s'"),]+/gi, '<address>')
    .replace(/\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b/g, '<address>');
}

/**
 * {@link describeClusterError} for people who read mesh status: the same words, but without the
 * cluster's URL or any address in it, which stay in the backend's log.
 *
 * @public
 */
export function describeClusterErrorForReaders(
  cluster: string,
  e: unknown,
): ClusterError {
  return describeClusterError(cluster, undefined, e);
}
