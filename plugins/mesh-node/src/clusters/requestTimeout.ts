import { Config } from '@backstage/config';
import { InputError } from '@backstage/errors';
import {
  KubeConfig,
  Middleware,
  ServerConfiguration,
  createConfiguration,
} from '@kubernetes/client-node';

/**
 * Default of `mesh.clusterRequestTimeoutSeconds`: long enough for a page of a big list over a
 * tailnet, short enough that a cluster that accepts connections but never answers shows as
 * `timeout` within seconds.
 *
 * @public
 */
export const DEFAULT_CLUSTER_REQUEST_TIMEOUT_SECONDS = 10;

/**
 * `mesh.clusterRequestTimeoutSeconds` in milliseconds; a clear error when it is not positive.
 *
 * @public
 */
export function readClusterRequestTimeoutMs(config: Config): number {
  const seconds =
    config.getOptionalNumber('mesh.clusterRequestTimeoutSeconds') ??
    DEFAULT_CLUSTER_REQUEST_TIMEOUT_SECONDS;
  if (!(seconds > 0)) {
    throw new InputError(
      `mesh.clusterRequestTimeoutSeconds must be a positive number of seconds, got ${seconds}`,
    );
  }
  return seconds * 1000;
}

/**
 * The error a request to a cluster fails with when it took longer than its timeout;
 * `describeClusterError` calls it a `timeout`.
 *
 * @public
 */
export function clusterRequestTimeoutError(timeoutMs: number): Error {
  return Object.assign(new Error(`no answer in ${timeoutMs} ms`), {
    name: 'TimeoutError',
    code: 'ETIMEDOUT',
  });
}

/**
 * A client-node API client (`CoreV1Api`, `AppsV1Api`, ...) like `kc.makeApiClient`, whose every
 * request, body included, is aborted after `timeoutMs`: the generated clients have no timeout of
 * their own, so an apiserver that accepts the connection and never answers would hang forever.
 *
 * @public
 */
export function makeApiClientWithTimeout<T>(
  kc: KubeConfig,
  ApiClientType: new (config: ReturnType<typeof createConfiguration>) => T,
  timeoutMs: number,
): T {
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new Error('No active cluster in the kubeconfig');
  const timeout: Middleware = {
    async pre(context) {
      context.setSignal(AbortSignal.timeout(timeoutMs));
      return context;
    },
    async post(context) {
      return context;
    },
  };
  return new ApiClientType(
    createConfiguration({
      baseServer: new ServerConfiguration(server, {}),
      authMethods: { default: kc },
      promiseMiddleware: [timeout],
    }),
  );
}
