import { setTimeout as sleep } from 'node:timers/promises';
import { ApiserverClient } from './apiserverClient';

/**
 * The identity both backends use, and how its requests are counted at the apiservers.
 *
 * The test bed's apiservers run without Priority and Fairness, so no metric splits requests by
 * flow. `authenticated_user_requests` does split them by user, but keeps only a few well-known
 * usernames apart and folds every other one into "other" (k8s.io/apiserver
 * pkg/endpoints/filters/metrics.go, compressUsername). `system:serviceaccount:kube-system:default`
 * is the only one of those a test bed can mint a token for, and nothing in the test bed uses it:
 * controller-manager, scheduler, kwok and the stand-ins all run as the admin, as does the bench's
 * own setup and metrics scraping. So its counter counts exactly the backends' requests.
 */
const NAMESPACE = 'kube-system';
const SERVICE_ACCOUNT = 'default';
export const BENCH_USERNAME = `system:serviceaccount:${NAMESPACE}:${SERVICE_ACCOUNT}`;
const READER = 'tailmesh-bench-reader';
const TOKEN_TTL_SECONDS = 6 * 3600;

/**
 * Lets the bench identity read everything (a platform's read-only Backstage account; the mesh
 * backend also reads `cacerts`), and returns a token for it. The token stays in memory.
 */
export async function grantBenchReader(
  client: ApiserverClient,
): Promise<string> {
  await client.create(
    '/apis/rbac.authorization.k8s.io/v1/clusterroles',
    {
      metadata: { name: READER },
      rules: [
        {
          apiGroups: ['*'],
          resources: ['*'],
          verbs: ['get', 'list', 'watch'],
        },
      ],
    },
    { alreadyExistsOk: true },
  );
  await client.create(
    '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
    {
      metadata: { name: READER },
      roleRef: {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'ClusterRole',
        name: READER,
      },
      subjects: [
        { kind: 'ServiceAccount', namespace: NAMESPACE, name: SERVICE_ACCOUNT },
      ],
    },
    { alreadyExistsOk: true },
  );
  // The service account controller creates `default` shortly after the namespace exists.
  const tokenPath = `/api/v1/namespaces/${NAMESPACE}/serviceaccounts/${SERVICE_ACCOUNT}/token`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const res = await client.create<{ status?: { token?: string } }>(
        tokenPath,
        {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenRequest',
          spec: { expirationSeconds: TOKEN_TTL_SECONDS },
        },
      );
      const token = res?.status?.token;
      if (!token)
        throw new Error(`${client.cluster}: TokenRequest returned no token`);
      return token;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await sleep(250);
    }
  }
}
