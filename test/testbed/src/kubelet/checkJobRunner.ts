/**
 * The kubelet part for the pods of `mesh:check-traffic`'s Job
 * (plugins/scaffolder-backend-module-mesh/src/actions/mesh/trafficCheckJob.ts): a curl client in
 * a pod with a native Istio sidecar, whose result is its container's termination message.
 *
 * The test bed has neither curl in a container nor the iptables redirect that hands a pod's
 * requests to its sidecar, so, as proxyRunner.ts does for Envoy, it stands in for the pair: once
 * the pod's own sidecar stand-in is ready, it runs `mesh-dataplane client` with that proxy's
 * identity (proxyRunner.ts clientFlags), which sends each request where the sidecar's Envoy would
 * per what the real istiod of the pod's cluster told it. The URL, count and per-request limit come
 * from the client container's environment, as the script reads them. Then it does what a kubelet
 * does when the container exits (kubernetes/kubernetes pkg/kubelet/kuberuntime/
 * kuberuntime_container.go reads /dev/termination-log into the status): the container
 * terminated with the script's lines as its message, the native sidecar stopped, the pod
 * Succeeded. kwok's pod-complete stage skips these pods (test/testbed/scripts/fetch-assets.sh), so
 * the Job completes only when this has run.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Informer, KubeRest, MERGE_PATCH, describe, type KubeConfigLike } from '../kube/kubeClient';
import { PodObject, podReady } from './podSandbox';

const run = promisify(execFile);

/** The Job's label (trafficCheckJob.ts TRAFFIC_CHECK_LABEL). */
export const TRAFFIC_CHECK_LABEL = 'tailmesh.io/traffic-check';
const CLIENT_CONTAINER = 'client';

export interface CheckJobRunnerOptions {
  clusters: Array<{ name: string; kubeConfig: KubeConfigLike }>;
  /** The mesh-dataplane binary. */
  binary: string;
  /** The identity flags of a pod's ready sidecar stand-in; throws while there is none. */
  clientFlags(cluster: string, namespace: string, pod: string): Promise<string[]>;
  log: (msg: string) => void;
}

interface ClientResult {
  requests: Array<{ code: number; hostname?: string; cluster?: string; error?: string }>;
}

/** The request side's inputs, from the client container's environment (CHECK_URL etc.). */
export function checkParameters(pod: PodObject): { host: string; port: number; count: number; timeoutSeconds: number } {
  const container = pod.spec.containers.find(c => c.name === CLIENT_CONTAINER);
  const env = Object.fromEntries((container?.env ?? []).map(e => [e.name, e.value ?? '']));
  const url = new URL(env.CHECK_URL ?? '');
  if (url.protocol !== 'http:') throw new Error(`CHECK_URL ${env.CHECK_URL} is not an http URL`);
  const count = Number(env.CHECK_REQUESTS);
  const timeoutSeconds = Number(env.CHECK_TIMEOUT_SECONDS || '5');
  if (!Number.isInteger(count) || count < 1 || count > 200) throw new Error(`CHECK_REQUESTS ${env.CHECK_REQUESTS} is not a count`);
  return { host: url.hostname, port: Number(url.port || '80'), count, timeoutSeconds };
}

/** The script's lines: the HTTP status (000 for no answer) and who answered. */
export function terminationMessage(result: ClientResult): string {
  return result.requests
    .map(r => {
      const code = r.code && !r.error ? String(r.code).padStart(3, '0') : '000';
      const who = (r.hostname ?? '').replace(/[^A-Za-z0-9._-]/g, '').slice(0, 63);
      return `${code} ${code === '000' ? '' : who}`.trimEnd();
    })
    .join('\n');
}

class ClusterChecks {
  private readonly rest: KubeRest;
  private readonly pods: Informer<PodObject>;
  /** Pod uids taken on, so a pod's requests are sent once, as a container runs once. */
  private readonly taken = new Set<string>();

  constructor(
    private readonly cluster: { name: string; kubeConfig: KubeConfigLike },
    private readonly o: CheckJobRunnerOptions,
    private readonly signal: AbortSignal,
  ) {
    this.rest = new KubeRest(cluster.kubeConfig, signal);
    this.pods = new Informer<PodObject>({
      what: `${cluster.name} traffic check pods`,
      listPath: `/api/v1/pods?labelSelector=${encodeURIComponent(TRAFFIC_CHECK_LABEL)}`,
      rest: this.rest,
      signal,
      log: msg => o.log(`[${cluster.name}] ${msg}`),
      onEvent: (type, pod) => {
        if (type === 'upsert') this.consider(pod);
      },
      watchTimeoutSeconds: 300,
    });
  }

  run() {
    return this.pods.run();
  }

  private consider(pod: PodObject) {
    const uid = pod.metadata.uid;
    if (this.taken.has(uid) || pod.metadata.deletionTimestamp) return;
    if (pod.status?.phase !== 'Running' || !podReady(pod) || !pod.status.podIP) return;
    this.taken.add(uid);
    void this.runClient(pod).catch(err =>
      this.o.log(`[${this.cluster.name}] traffic check ${pod.metadata.namespace}/${pod.metadata.name}: ${describe(err)}`),
    );
  }

  private async runClient(pod: PodObject) {
    const { namespace, name } = pod.metadata;
    const log = (msg: string) => this.o.log(`[${this.cluster.name}] traffic check ${namespace}/${name}: ${msg}`);
    const startedAt = new Date().toISOString();
    let exitCode = 0;
    let message: string;
    try {
      const params = checkParameters(pod);
      // The client starts once the sidecar is ready (a native sidecar's startup probe).
      const flags = await this.sidecarFlags(namespace, name);
      const { stdout } = await run(
        this.o.binary,
        [
          'client',
          ...flags,
          `--host=${params.host}`,
          `--port=${params.port}`,
          `--count=${params.count}`,
          `--timeout=${params.timeoutSeconds}s`,
        ],
        { timeout: (params.count * params.timeoutSeconds + 60) * 1000, maxBuffer: 8 * 1024 * 1024 },
      );
      message = terminationMessage(JSON.parse(stdout) as ClientResult);
    } catch (err) {
      exitCode = 1;
      message = describe(err).split('\n').slice(-3).join('\n').slice(0, 1024);
    }
    if (this.signal.aborted) return;
    const finishedAt = new Date().toISOString();
    const terminated = (code: number, reason: string, msg?: string) => ({
      terminated: { exitCode: code, reason, startedAt, finishedAt, ...(msg === undefined ? {} : { message: msg }) },
    });
    const client = pod.spec.containers.find(c => c.name === CLIENT_CONTAINER);
    const sidecars = (pod.spec.initContainers ?? []).filter(c => c.restartPolicy === 'Always');
    const done = exitCode === 0 ? 'Completed' : 'Error';
    await this.rest.json('PATCH', `/api/v1/namespaces/${namespace}/pods/${name}/status`, {
      contentType: MERGE_PATCH,
      body: {
        status: {
          phase: exitCode === 0 ? 'Succeeded' : 'Failed',
          conditions: [
            { type: 'PodScheduled', status: 'True', lastTransitionTime: startedAt },
            { type: 'Initialized', status: 'True', lastTransitionTime: startedAt },
            { type: 'ContainersReady', status: 'False', reason: 'PodCompleted', lastTransitionTime: finishedAt },
            { type: 'Ready', status: 'False', reason: 'PodCompleted', lastTransitionTime: finishedAt },
          ],
          containerStatuses: [
            {
              name: CLIENT_CONTAINER,
              image: client?.image ?? '',
              imageID: '',
              ready: false,
              started: false,
              restartCount: 0,
              state: terminated(exitCode, done, message),
            },
          ],
          // The kubelet stops native sidecars once the regular containers are done.
          initContainerStatuses: sidecars.map(c => ({
            name: c.name,
            image: c.image ?? '',
            imageID: '',
            ready: false,
            started: false,
            restartCount: 0,
            state: terminated(0, 'Completed'),
          })),
        },
      },
    });
    log(`${done}: ${message.split('\n').length} lines`);
  }

  /** Waits (up to 2 minutes) for the pod's sidecar stand-in to be ready and returns its flags. */
  private async sidecarFlags(namespace: string, pod: string): Promise<string[]> {
    const deadline = Date.now() + 120_000;
    for (;;) {
      try {
        return await this.o.clientFlags(this.cluster.name, namespace, pod);
      } catch (err) {
        if (Date.now() > deadline || this.signal.aborted) throw err;
        await new Promise(r => setTimeout(r, 500));
      }
    }
  }
}

export interface CheckJobRunner {
  stop(): Promise<void>;
}

/** Starts watching every cluster's traffic check pods; returns at once. */
export function startCheckJobRunner(o: CheckJobRunnerOptions): CheckJobRunner {
  const stopper = new AbortController();
  const runs = o.clusters.map(c => new ClusterChecks(c, o, stopper.signal).run());
  return {
    async stop() {
      stopper.abort();
      await Promise.allSettled(runs);
    },
  };
}
