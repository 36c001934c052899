import { ResponseError } from '@backstage/errors';

/**
 * An error in one line for people: for a backend answer, the backend's own message and the HTTP
 * status (a ResponseError's `message` only says "Request failed with 403").
 */
export function errorText(error: unknown): string {
  if (ResponseError.is(error)) {
    const cause = error.cause?.message;
    return cause
      ? `${cause} (HTTP ${error.statusCode})`
      : `HTTP ${error.statusCode} ${error.statusText}`.trim();
  }
  // Duck-typed: errors from another realm (an iframe, a test environment) fail `instanceof Error`.
  const message = (error as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' ? message : String(error);
}
