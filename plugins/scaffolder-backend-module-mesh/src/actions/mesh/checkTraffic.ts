import { ConflictError, InputError, NotAllowedError } from '@backstage/errors';
import { LoggerService } from '@backstage/backend-plugin-api';
import { createTemplateAction } from '@backstage/plugin-scaffolder-node';
import {
  BatchV1Api,
  CoreV1Api,
  DiscoveryV1Api,
  V1Pod,
} from '@kubernetes/client-node';
import {
  DNS1123_LABEL_MAX_LENGTH,
  DNS1123_LABEL_PATTERN,
  isMeshMember,
  validateClusterName,
  validateDnsLabel,
} from '@tailmesh/plugin-mesh-common';
import { makeApiClientWithTimeout } from '@tailmesh/plugin-mesh-node';
import {
  MeshActionDeps,
  readConfiguredSnapshots,
  targetCluster,
} from '../../service/MeshActionDeps';
import { clusterFailure, isNotFound } from '../../service/kubeErrors';
import { waitUntil } from '../../service/waitUntil';
import { assertClusterList, checkInputs, clusterInput } from '../inputs';
import { examples } from './checkTraffic.examples';
import {
  DEFAULT_TRAFFIC_CHECK_IMAGE,
  MAX_TRAFFIC_CHECK_REQUESTS,
  ServiceEndpoints,
  TRAFFIC_CHECK_CONTAINER,
  TrafficCheckSpec,
  TrafficCheckSummary,
  describeTrafficCheck,
  parseTrafficCheckOutput,
  serviceEndpoints,
  summarizeTrafficCheck,
  trafficCheckJob,
  trafficCheckUrl,
} from './trafficCheckJob';

/** @public */
export const MESH_CHECK_TRAFFIC_ACTION_ID = 'mesh:check-traffic';

const DEFAULT_CHECK_TIMEOUT_SECONDS = 180;
/** curl's limit per request: a request the mesh drops fails in this time, not the Job's. */
const REQUEST_TIMEOUT_SECONDS = 5;
/** A name an image reference may have: registry, path, tag and digest characters only. */
const IMAGE_PATTERN = /^[a-z0-9][a-z0-9._\-/:@]*[a-zA-Z0-9_]$/;

const hasSidecar = (pod: V1Pod) =>
  [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])].some(
    c => c.name === 'istio-proxy',
  );

/** What the client's pod is at, in words, while the Job runs. */
function podProgress(pod: V1Pod | undefined): string {
  if (!pod) return 'the Job has no pod yet';
  const statuses = [
    ...(pod.status?.initContainerStatuses ?? []),
    ...(pod.status?.containerStatuses ?? []),
  ];
  const waiting = statuses
    .filter(s => s.state?.waiting?.reason)
    .map(s => `${s.name} ${s.state!.waiting!.reason}`);
  return `pod ${pod.metadata?.name} is ${pod.status?.phase ?? 'Pending'}${waiting.length ? ` (${waiting.join(', ')})` : ''}`;
}

/**
 * Runs one check Job in `cluster` and returns its termination message; deletes the Job (and so
 * its pod) whatever happens.
 */
async function runCheckJob(
  deps: MeshActionDeps,
  spec: TrafficCheckSpec,
  logger: LoggerService,
  timeoutSeconds: number,
  signal?: AbortSignal,
): Promise<string> {
  const target = targetCluster(deps, spec.cluster);
  const server = target.kc.getCurrentCluster()?.server ?? '';
  const timeoutMs = deps.clusters.requestTimeoutMs;
  const batch = makeApiClientWithTimeout(target.kc, BatchV1Api, timeoutMs);
  const core = makeApiClientWithTimeout(target.kc, CoreV1Api, timeoutMs);
  const created = await batch
    .createNamespacedJob({
      namespace: spec.namespace,
      body: trafficCheckJob(spec),
    })
    .catch(e => {
      throw clusterFailure(spec.cluster, server, 'Creating the check Job', e);
    });
  const name = created.metadata!.name!;
  logger.info(`Job ${spec.namespace}/${name} started in ${spec.cluster}`);
  try {
    return await waitUntil<string>(
      async () => {
        const pods = await core.listNamespacedPod({
          namespace: spec.namespace,
          labelSelector: `batch.kubernetes.io/job-name=${name}`,
        });
        const pod = pods.items[0];
        if (pod && !hasSidecar(pod)) {
          throw new NotAllowedError(
            `The check's pod in ${spec.cluster} got no istio-proxy sidecar, so its requests would not go through the mesh: is istiod's injector running there, and is namespace ${spec.namespace} labelled istio-injection=disabled? Nothing was checked`,
          );
        }
        const client = pod?.status?.containerStatuses?.find(
          s => s.name === TRAFFIC_CHECK_CONTAINER,
        );
        const done = client?.state?.terminated;
        if (done) {
          if (done.exitCode !== 0)
            throw new NotAllowedError(
              `The check's client in ${spec.cluster} exited with ${done.exitCode} (${done.reason ?? 'no reason given'})`,
            );
          return { done: true, value: done.message ?? '' };
        }
        const job = await batch.readNamespacedJob({
          name,
          namespace: spec.namespace,
        });
        const failed = job.status?.conditions?.find(
          c => c.type === 'Failed' && c.status === 'True',
        );
        if (failed)
          throw new NotAllowedError(
            `The check Job in ${spec.cluster} failed: ${failed.reason ?? ''} ${failed.message ?? ''} (${podProgress(pod)})`,
          );
        return { done: false, progress: podProgress(pod) };
      },
      {
        what: `the check Job ${spec.namespace}/${name} in ${spec.cluster}`,
        timeoutSeconds,
        logger,
        signal,
        intervalMs: 1000,
      },
    );
  } finally {
    await batch
      .deleteNamespacedJob({
        name,
        namespace: spec.namespace,
        propagationPolicy: 'Background',
      })
      .catch(e => {
        if (!isNotFound(e))
          logger.warn(
            `The check Job ${spec.namespace}/${name} in ${spec.cluster} could not be deleted (${clusterFailure(spec.cluster, server, 'Deleting it', e).message}); it removes itself 10 minutes after it finished`,
          );
      });
  }
}

/**
 * The default `members`: every configured cluster that is a member of `cluster`'s mesh (istiod
 * installed, the same mesh id), read as the join's own check reads them.
 */
async function meshOf(
  deps: MeshActionDeps,
  cluster: string,
  logger: LoggerService,
): Promise<string[]> {
  const snapshots = await readConfiguredSnapshots(deps);
  const own = snapshots.find(s => s.cluster === cluster);
  if (!own || !isMeshMember(own))
    throw new ConflictError(
      `${cluster} is not a mesh member${own?.error ? ` (${own.error.message})` : ''}, so its requests would not go through a mesh. Join it first, or name the clusters to expect in members; nothing was created`,
    );
  for (const s of snapshots.filter(x => x.error))
    logger.warn(
      `${s.cluster} could not be read, so its answers are not expected: ${s.error!.message}`,
    );
  return snapshots
    .filter(s => isMeshMember(s) && s.meshId === own.meshId)
    .map(s => s.cluster);
}

/**
 * The recipe's last step, for real: from a short-lived Job with a sidecar in `cluster`, send
 * requests to a Service's cluster-local name and say which clusters' pods answered. Fails unless
 * every given cluster with a ready pod of the Service answered, retrying with a new Job until the
 * timeout (a peer that just joined takes istiod a moment to list).
 *
 * @public
 */
export function createMeshCheckTrafficAction(deps: MeshActionDeps) {
  return createTemplateAction({
    id: MESH_CHECK_TRAFFIC_ACTION_ID,
    description:
      "Runs the recipe's traffic check: a short-lived Job with an Istio sidecar in the cluster sends requests to <service>.<namespace>.svc.cluster.local and reports which clusters' pods answered (by the pod name Istio's echo app reports, or a body that is a cluster's name, as the recipe's http-echo answers). Fails unless every listed cluster with a ready pod of the Service answered. Needs, in the cluster: create, get and delete Jobs and list Pods in the namespace; in every listed cluster: list EndpointSlices there. Creates only the Job, and deletes it.",
    examples,
    supportsDryRun: true,
    schema: {
      input: {
        cluster: z => clusterInput(z, 'The cluster the requests are sent from'),
        service: z =>
          z
            .string()
            .min(1)
            .max(DNS1123_LABEL_MAX_LENGTH)
            .regex(DNS1123_LABEL_PATTERN, 'must be a Service name')
            .describe('The Service to send requests to'),
        namespace: z =>
          z
            .string()
            .min(1)
            .max(DNS1123_LABEL_MAX_LENGTH)
            .regex(DNS1123_LABEL_PATTERN, 'must be a namespace name')
            .default('default')
            .describe(
              "The Service's namespace, where the check's Job runs (default default)",
            ),
        port: z =>
          z
            .number()
            .int()
            .min(1)
            .max(65535)
            .default(80)
            .describe('The Service port (default 80)'),
        members: z =>
          z
            .array(clusterInput(z))
            .min(1)
            .optional()
            .describe(
              'The clusters whose pods of the Service should answer: each one with a ready pod must (default: every configured cluster)',
            ),
        requests: z =>
          z
            .number()
            .int()
            .min(1)
            .max(MAX_TRAFFIC_CHECK_REQUESTS)
            .default(20)
            .describe(
              `How many requests each round sends (default 20, at most ${MAX_TRAFFIC_CHECK_REQUESTS})`,
            ),
        image: z =>
          z
            .string()
            .max(255)
            .regex(IMAGE_PATTERN, 'must be an image reference')
            .optional()
            .describe(
              `The client's image, with curl and a POSIX shell (default ${DEFAULT_TRAFFIC_CHECK_IMAGE}; a mirror of it where clusters pull from a registry of their own)`,
            ),
        timeoutSeconds: z =>
          z
            .number()
            .int()
            .min(10)
            .max(3600)
            .default(DEFAULT_CHECK_TIMEOUT_SECONDS)
            .describe(
              `How long to keep trying until every cluster answered, in seconds (default ${DEFAULT_CHECK_TIMEOUT_SECONDS})`,
            ),
      },
      output: {
        answeredBy: z =>
          z
            .record(z.number())
            .describe('Answers per cluster, in the last round'),
        failed: z =>
          z.number().describe('Requests of the last round that got no answer'),
        expected: z =>
          z
            .array(z.string())
            .describe('The clusters with a ready pod of the Service'),
        rounds: z => z.number().describe('How many Jobs ran'),
        summary: z =>
          z
            .string()
            .describe(
              'The last round in words: "answered by cluster1 12, cluster2 8; 0 of 20 failed"',
            ),
      },
    },
    async handler(ctx) {
      const { cluster, service } = ctx.input;
      const namespace = ctx.input.namespace ?? 'default';
      const port = ctx.input.port ?? 80;
      const requests = ctx.input.requests ?? 20;
      const image = ctx.input.image ?? DEFAULT_TRAFFIC_CHECK_IMAGE;
      const timeoutSeconds =
        ctx.input.timeoutSeconds ?? DEFAULT_CHECK_TIMEOUT_SECONDS;
      checkInputs(
        { cluster, members: ctx.input.members, service, namespace },
        {
          cluster: validateClusterName,
          members: validateClusterName,
          service: validateDnsLabel,
          namespace: validateDnsLabel,
        },
      );
      const problems: string[] = [];
      if (!Number.isInteger(port) || port < 1 || port > 65535)
        problems.push(`port ${port}: must be a whole number from 1 to 65535`);
      if (
        !Number.isInteger(requests) ||
        requests < 1 ||
        requests > MAX_TRAFFIC_CHECK_REQUESTS
      )
        problems.push(
          `requests ${requests}: must be a whole number from 1 to ${MAX_TRAFFIC_CHECK_REQUESTS}`,
        );
      if (!IMAGE_PATTERN.test(image) || image.length > 255)
        problems.push(`image: must be an image reference`);
      if (problems.length)
        throw new InputError(`Invalid input: ${problems.join('; ')}`);
      if (ctx.input.members) assertClusterList('members', ctx.input.members);
      const target = targetCluster(deps, cluster);
      for (const m of ctx.input.members ?? []) deps.clusters.get(m);
      const serverOf = (name: string) =>
        deps.clusters.kubeConfig(name).getCurrentCluster()?.server ?? '';

      // The namespace must exist, and its pods must be allowed a sidecar.
      const core = makeApiClientWithTimeout(
        target.kc,
        CoreV1Api,
        deps.clusters.requestTimeoutMs,
      );
      const ns = await core.readNamespace({ name: namespace }).catch(e => {
        if (isNotFound(e))
          throw new InputError(
            `Invalid input: namespace ${namespace} does not exist in ${cluster}`,
          );
        throw clusterFailure(
          cluster,
          serverOf(cluster),
          'Reading the namespace',
          e,
        );
      });
      if (ns.metadata?.labels?.['istio-injection'] === 'disabled')
        throw new ConflictError(
          `Namespace ${namespace} in ${cluster} is labelled istio-injection=disabled, so the check's pod would get no sidecar and its requests would bypass the mesh. Run the check from a namespace with injection; nothing was created`,
        );

      // The cluster's own answers are told apart too, whether it was listed or not.
      const members = ctx.input.members
        ? [...new Set([cluster, ...ctx.input.members])]
        : await meshOf(deps, cluster, ctx.logger);

      const readEndpoints = async (
        name: string,
      ): Promise<ServiceEndpoints | undefined> => {
        const discovery = makeApiClientWithTimeout(
          deps.clusters.kubeConfig(name),
          DiscoveryV1Api,
          deps.clusters.requestTimeoutMs,
        );
        try {
          const slices = await discovery.listNamespacedEndpointSlice({
            namespace,
            labelSelector: `kubernetes.io/service-name=${service}`,
          });
          return serviceEndpoints(name, slices.items);
        } catch (e) {
          ctx.logger.warn(
            `${clusterFailure(name, serverOf(name), `Reading the endpoints of ${service}.${namespace}`, e).message}; its answers cannot be told apart`,
          );
          return undefined;
        }
      };
      const endpoints = (await Promise.all(members.map(readEndpoints))).filter(
        (e): e is ServiceEndpoints => e !== undefined,
      );
      const expected = endpoints.filter(e => e.ready).map(e => e.cluster);
      if (!expected.length)
        throw new ConflictError(
          `No cluster of ${members.join(', ')} has a ready pod of Service ${service}.${namespace}, so no answer could show where traffic goes. Deploy it (the recipe's echo example), then run the check again; nothing was created`,
        );

      const spec: TrafficCheckSpec = {
        cluster,
        namespace,
        service,
        port,
        requests,
        requestTimeoutSeconds: REQUEST_TIMEOUT_SECONDS,
        image,
        deadlineSeconds: Math.min(timeoutSeconds, 600),
      };
      const url = trafficCheckUrl(spec);
      if (ctx.isDryRun) {
        ctx.logger.info(
          `Would run a Job in ${cluster}/${namespace} that sends ${requests} requests to ${url} and expects answers from ${expected.join(', ')}`,
        );
        ctx.output('answeredBy', {});
        ctx.output('failed', 0);
        ctx.output('expected', expected);
        ctx.output('rounds', 0);
        ctx.output('summary', 'not run (dry run)');
        return;
      }

      const deadline = Date.now() + timeoutSeconds * 1000;
      let summary: TrafficCheckSummary;
      let rounds = 0;
      for (;;) {
        rounds++;
        const roundStarted = Date.now();
        const message = await runCheckJob(
          deps,
          spec,
          ctx.logger,
          Math.max(10, Math.round((deadline - Date.now()) / 1000)),
          ctx.signal,
        );
        summary = summarizeTrafficCheck(
          parseTrafficCheckOutput(message),
          endpoints,
        );
        ctx.logger.info(
          `${requests} requests from ${cluster} to ${url}: ${describeTrafficCheck(summary, requests)}`,
        );
        const answered = summary.answeredBy;
        const missing = expected.filter(c => !answered[c]);
        if (!missing.length) break;
        // Another round only if one as long as this one still fits before the deadline.
        if (Date.now() + (Date.now() - roundStarted) + 5000 > deadline) {
          throw new Error(
            `After ${rounds} round${rounds > 1 ? 's' : ''} (${timeoutSeconds}s), requests from ${cluster} to ${url} were ${describeTrafficCheck(summary, requests)}; ${missing.join(', ')} ${missing.length > 1 ? 'have' : 'has'} a ready pod of ${service} but did not answer. The mesh page's findings (east-west gateway, tailnet grants, root CA, remote secrets) say why`,
          );
        }
        ctx.logger.info(
          `${missing.join(', ')} did not answer yet; another round in 5 s`,
        );
        await new Promise(r => setTimeout(r, 5000));
      }
      if (summary.failed)
        ctx.logger.warn(
          `${summary.failed} of ${requests} requests failed, although every cluster answered`,
        );
      ctx.output('answeredBy', summary.answeredBy);
      ctx.output('failed', summary.failed);
      ctx.output('expected', expected);
      ctx.output('rounds', rounds);
      ctx.output(
        'summary',
        `${requests} requests from ${cluster} to ${url} ${describeTrafficCheck(summary, requests)}`,
      );
    },
  });
}
