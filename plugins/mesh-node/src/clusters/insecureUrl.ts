import { Config } from '@backstage/config';

/** Config key that lets `http:` URLs through: for a local test bed on loopback only. */
export const ALLOW_INSECURE_HTTP_KEY = 'mesh.allowInsecureHttp';

/**
 * Why `url` may not be used, or undefined when it may. Bearer tokens, kubeconfigs and the OAuth
 * client secret travel on these connections, so they must be `https:`; `http:` only when
 * `mesh.allowInsecureHttp` is true (a local test bed), never by default.
 */
export function insecureUrlProblem(
  url: string,
  config: Config,
): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'not a valid URL';
  }
  if (parsed.protocol === 'https:') return undefined;
  if (parsed.protocol === 'http:') {
    return config.getOptionalBoolean(ALLOW_INSECURE_HTTP_KEY) === true
      ? undefined
      : `must be https (credentials travel on it); http is allowed only with ${ALLOW_INSECURE_HTTP_KEY}: true, for a local test bed`;
  }
  return `must be https, got ${parsed.protocol}`;
}
