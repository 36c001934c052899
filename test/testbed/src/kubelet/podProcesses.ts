/**
 * The part of a kubelet the test bed plays for the few containers it runs for real (istiod, and
 * the data-plane stand-ins for injected sidecars and gateways): watch the cluster's pods, start a
 * process for each Ready pod that has the container, stop it when the pod goes (scale to 0,
 * deletion, rollout, a new pod IP), and restart it with back-off if it exits on its own while its
 * pod is still Ready, as a container restart policy `Always` does (kubernetes/kubernetes
 * pkg/kubelet/kuberuntime/kuberuntime_manager.go, back-off capped like MaxContainerBackOff).
 * kwok fakes the pods' status; what the process needs from the pod (volumes, environment,
 * tokens) comes from podSandbox.ts, and its IP is added to the namespace's loopback.
 */
import path from 'node:path';
import type { V1Container } from '@kubernetes/client-node';
import { Informer, KubeRest, WorkQueue, describe, type KubeConfigLike } from '../kube/kubeClient';
import { LoopbackAddresses } from '../network/loopbackAddresses';
import { ManagedProcess } from '../process';
import { PodObject, PodSandbox, podReady } from './podSandbox';

export interface PodProcessCluster {
  name: string;
  kubeConfig: KubeConfigLike;
  /** Where this cluster's pod directories and process logs go. */
  dir: string;
}

/** One running process, as the test bed reports it in its state file. */
export interface PodProcessState {
  cluster: string;
  namespace: string;
  pod: string;
  podIP: string;
  pid?: number;
  startedAt: string;
  /** When its readiness check first passed. */
  readyAt?: string;
  restarts: number;
  logPath: string;
}

/** What to run for a pod: everything the generic part does not know. */
export interface PodProgram<C extends PodProcessCluster> {
  /** For log lines: "istiod", "proxy". */
  what: string;
  /** Narrows the pod watch (`labelSelector=...`), or every pod. */
  labelSelector?: string;
  /** The container this program runs, or undefined when the pod has none to run. */
  container(pod: PodObject): V1Container | undefined;
  /** The command for a pod whose sandbox is prepared; may write files into the sandbox. */
  command(
    cluster: C,
    pod: PodObject,
    sandbox: PodSandbox,
    rest: KubeRest,
  ): Promise<{ file: string; args: string[]; env: Record<string, string>; logName: string }>;
  /** Resolves true once the process is ready (polled every half second until it is). */
  ready(entry: RunningPod): Promise<boolean>;
}

export interface RunningPod {
  uid: string;
  podIP: string;
  pod: PodObject;
  sandbox: PodSandbox;
  process: ManagedProcess;
  state: PodProcessState;
  stopped: boolean;
  restartTimer?: NodeJS.Timeout;
  probe?: NodeJS.Timeout;
}

class ClusterPods<C extends PodProcessCluster> {
  readonly running = new Map<string, RunningPod>();
  private readonly queue = new WorkQueue();
  private readonly rest: KubeRest;
  private readonly pods: Informer<PodObject>;
  private loop?: Promise<void>;

  constructor(
    private readonly cluster: C,
    private readonly program: PodProgram<C>,
    private readonly o: PodRunnerOptions,
    private readonly signal: AbortSignal,
    private readonly changed: () => void,
  ) {
    this.rest = new KubeRest(cluster.kubeConfig, signal);
    const selector = program.labelSelector ? `?labelSelector=${encodeURIComponent(program.labelSelector)}` : '';
    this.pods = new Informer<PodObject>({
      what: `${cluster.name} ${program.what} pods`,
      listPath: `/api/v1/pods${selector}`,
      rest: this.rest,
      signal,
      log: msg => o.log(`[${cluster.name}] ${msg}`),
      onEvent: (_type, pod) => this.queue.add(`${pod.metadata.namespace}/${pod.metadata.name}`),
      watchTimeoutSeconds: 300,
    });
  }

  run(): Promise<void>[] {
    this.loop = this.work();
    return [this.pods.run(), this.loop];
  }

  private async work() {
    for (let key = await this.queue.next(); key !== undefined; key = await this.queue.next()) {
      try {
        await this.reconcile(key);
      } catch (err) {
        this.o.log(`[${this.cluster.name}] ${this.program.what} ${key}: ${describe(err)}; retrying`);
        this.queue.addAfter(key, 2000);
      }
    }
  }

  private async reconcile(key: string) {
    const pod = this.pods.cache.get(key);
    const container = pod && this.program.container(pod);
    const wanted =
      pod && container && !pod.metadata.deletionTimestamp && podReady(pod) && pod.status?.podIP ? pod : undefined;
    const current = this.running.get(key);
    if (current && (!wanted || current.uid !== wanted.metadata.uid || current.podIP !== wanted.status?.podIP)) {
      await this.stop(key, current);
    }
    if (wanted && container && !this.running.has(key)) await this.start(key, wanted, container);
  }

  private async start(key: string, pod: PodObject, container: V1Container) {
    const { name: cluster, dir } = this.cluster;
    const podIP = pod.status?.podIP ?? '';
    const log = (msg: string) => this.o.log(`[${cluster}] ${this.program.what} ${key}: ${msg}`);
    const sandbox = new PodSandbox(pod, container, this.rest, path.join(dir, 'pods'), log);
    await sandbox.prepare();
    try {
      const { file, args, env, logName } = await this.program.command(this.cluster, pod, sandbox, this.rest);
      await this.o.addresses.acquire(podIP);
      const logPath = path.join(dir, logName);
      const process = new ManagedProcess(`${cluster}/${this.program.what}/${pod.metadata.name}`, file, args, logPath, {
        cwd: sandbox.root,
        env,
      });
      const entry: RunningPod = {
        uid: pod.metadata.uid,
        podIP,
        pod,
        sandbox,
        process,
        stopped: false,
        state: {
          cluster,
          namespace: pod.metadata.namespace,
          pod: pod.metadata.name,
          podIP,
          startedAt: new Date().toISOString(),
          restarts: 0,
          logPath,
        },
      };
      this.running.set(key, entry);
      this.launch(key, entry);
      log(`started on ${podIP} (log ${logPath})`);
    } catch (err) {
      await sandbox.dispose();
      throw err;
    }
  }

  /** Starts the process, checks readiness, and restarts it with back-off if it dies on its own. */
  private launch(key: string, entry: RunningPod) {
    entry.process.start();
    entry.state.pid = entry.process.pid;
    this.changed();
    this.probeReadiness(entry);
    void entry.process.exitedPromise()?.then(code => {
      if (entry.stopped || this.signal.aborted) return;
      entry.state.restarts++;
      entry.state.pid = undefined;
      entry.state.readyAt = undefined;
      const delay = Math.min(30_000, 1000 * 2 ** Math.min(entry.state.restarts - 1, 5));
      this.o.log(
        `[${this.cluster.name}] ${this.program.what} ${key} exited with ${code}; restart ${entry.state.restarts} in ${delay} ms; last lines:\n${entry.process.logTail(10)}`,
      );
      this.changed();
      entry.restartTimer = setTimeout(() => {
        if (!entry.stopped && !this.signal.aborted) this.launch(key, entry);
      }, delay);
    });
  }

  private probeReadiness(entry: RunningPod) {
    const tick = async () => {
      if (entry.stopped || this.signal.aborted || !entry.process.running) return;
      if (await this.program.ready(entry).catch(() => false)) {
        entry.state.readyAt = new Date().toISOString();
        this.o.log(
          `[${this.cluster.name}] ${this.program.what} ${entry.state.namespace}/${entry.state.pod} ready after ${
            Date.parse(entry.state.readyAt) - Date.parse(entry.state.startedAt)
          } ms`,
        );
        this.changed();
      } else entry.probe = setTimeout(() => void tick(), 500);
    };
    entry.probe = setTimeout(() => void tick(), 500);
  }

  private async stop(key: string, entry: RunningPod) {
    entry.stopped = true;
    clearTimeout(entry.restartTimer);
    clearTimeout(entry.probe);
    await entry.process.stop(10_000);
    // Listed until the process is gone, so "not listed" means "not running".
    this.running.delete(key);
    await entry.sandbox.dispose();
    await this.o.addresses.release(entry.podIP).catch(err => this.o.log(String(err)));
    this.o.log(`[${this.cluster.name}] ${this.program.what} ${key}: stopped`);
    this.changed();
  }

  async stopAll() {
    this.queue.close();
    await Promise.all([...this.running].map(([key, entry]) => this.stop(key, entry)));
    await this.loop;
  }
}

export interface PodRunnerOptions {
  addresses: LoopbackAddresses;
  log: (msg: string) => void;
}

export interface PodRunner {
  list(): PodProcessState[];
  /** The running process of one pod, if any. */
  find(cluster: string, namespace: string, pod: string): RunningPod | undefined;
  stop(): Promise<void>;
}

/** Starts watching every cluster's pods for `program`; returns at once. */
export function startPodRunner<C extends PodProcessCluster>(
  clusters: C[],
  program: PodProgram<C>,
  options: PodRunnerOptions,
  onChange: () => void,
): PodRunner {
  const stopper = new AbortController();
  const perCluster = clusters.map(c => new ClusterPods(c, program, options, stopper.signal, onChange));
  const runs = perCluster.flatMap(c => c.run());
  return {
    list: () =>
      perCluster
        .flatMap(c => [...c.running.values()].map(r => ({ ...r.state })))
        .sort((a, b) => `${a.cluster}/${a.namespace}/${a.pod}`.localeCompare(`${b.cluster}/${b.namespace}/${b.pod}`)),
    find: (cluster, namespace, pod) =>
      perCluster[clusters.findIndex(c => c.name === cluster)]?.running.get(`${namespace}/${pod}`),
    async stop() {
      await Promise.all(perCluster.map(c => c.stopAll()));
      stopper.abort();
      await Promise.allSettled(runs);
    },
  };
}
