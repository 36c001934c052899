/**
 * Runs a real istiod (`pilot-discovery`, built from the pinned istio.io/istio module) for every
 * Ready istiod pod in a test bed cluster, and stops it when the pod goes (scale to 0, uninstall,
 * rollout). kwok fakes the pod; this plays the kubelet's part for its one container, the way the
 * chart's Deployment asks (istio/istio manifests/charts/istio-control/istio-discovery/templates/
 * deployment.yaml):
 * - the container's args and env, resolved like a kubelet (podSandbox.ts), so the cluster id,
 *   network, revision, namespace and every `env` value come from the installed chart;
 * - Kubernetes credentials: the pod's own `kube-api-access-*` token, a TokenRequest bound to the
 *   pod for its ServiceAccount (the chart's `istiod`), so RBAC is exactly what the chart grants.
 *   The one change: `--kubeconfig` names a file holding that token and CA with this cluster's
 *   apiserver address, since there is no `kubernetes.default.svc` to route to here;
 * - volumes where the pod mounts them, relative to the process's working directory, which stands
 *   for the container's root: istiod reads the plugged-in CA from `./etc/cacerts`
 *   (pilot/pkg/bootstrap/istio_ca.go ROOT_CA_DIR), and the mesh config and meshNetworks from the
 *   `istio` ConfigMap through the API (its `./etc/istio/config` files are not mounted by the chart);
 * - DNS as in a pod: a private mount namespace puts the pod's `resolv.conf` (the cluster's kube-dns
 *   ClusterIP, the pod's search path, ndots:5) on /etc/resolv.conf, which istiod's gateway resolver
 *   reads directly (pilot/pkg/model/network.go newClient) and Go's resolver too;
 * - the pod's own IP (added to the namespace's loopback) for every listener, on the standard ports
 *   (8080, 15010, 15012, 15014, 15017), so the apiserver's service and pod proxy and its webhook
 *   calls reach it as on a real cluster; ControlZ, which a pod keeps on its own localhost, on the
 *   pod IP too, since all pods here share one loopback;
 * - trust: SSL_CERT_FILE names the test bed's stand-in for the public web PKI (the tailnet's HTTPS
 *   certificate authority), as a container image's CA bundle would carry Let's Encrypt's roots.
 * The readiness probe of the chart (GET :8080/ready) is polled to record when istiod is ready.
 * A process that exits while its pod is still Ready is restarted with back-off, like a container.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { V1Container } from '@kubernetes/client-node';
import { Informer, KubeRest, WorkQueue, describe, type KubeConfigLike } from '../kube/kubeClient';
import { LoopbackAddresses } from '../network/loopbackAddresses';
import { ManagedProcess } from '../process';
import { PodObject, PodSandbox, podReady } from './podSandbox';

export interface IstiodCluster {
  name: string;
  kubeConfig: KubeConfigLike;
  /** The apiserver as processes inside the test bed's namespace reach it. */
  server: string;
  /** PEM of the apiserver's serving CA. */
  caPem: string;
  /** The cluster's kube-dns ClusterIP, where its DNS stand-in answers. */
  dnsIp: string;
  clusterDomain?: string;
  /** Where this cluster's pod directories and istiod logs go. */
  dir: string;
}

export interface IstiodRunnerOptions {
  clusters: IstiodCluster[];
  /** The pilot-discovery binary. */
  binary: string;
  /** The CA bundle processes trust for public names (SSL_CERT_FILE). */
  trustBundlePath: string;
  addresses: LoopbackAddresses;
  log: (msg: string) => void;
}

/** One running istiod, as the test bed reports it in its state file. */
export interface IstiodProcessState {
  cluster: string;
  namespace: string;
  pod: string;
  podIP: string;
  pid?: number;
  startedAt: string;
  /** When its readiness probe first passed. */
  readyAt?: string;
  restarts: number;
  logPath: string;
}

/** istiod's listeners and their defaults (`pilot-discovery discovery --help`). */
const LISTENERS: Array<[flag: string, port: number]> = [
  ['httpAddr', 8080],
  ['grpcAddr', 15010],
  ['secureGRPCAddr', 15012],
  ['monitoringAddr', 15014],
  ['httpsAddr', 15017],
];

/** The pod's container args, bound to the pod IP, plus the test bed's kubeconfig. */
export function istiodArgs(args: string[], podIP: string, kubeconfigPath: string): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const m = /^--?([A-Za-z_]+)(?:=(.*))?$/.exec(args[i]);
    const listener = m && LISTENERS.find(([flag]) => flag === m[1]);
    if (!m || !listener) {
      out.push(args[i]);
      continue;
    }
    let value = m[2];
    if (value === undefined) value = args[++i] ?? '';
    const port = value.slice(value.lastIndexOf(':') + 1) || String(listener[1]);
    out.push(`--${listener[0]}=${podIP}:${port}`);
    seen.add(listener[0]);
  }
  for (const [flag, port] of LISTENERS) if (!seen.has(flag)) out.push(`--${flag}=${podIP}:${port}`);
  const without = out.filter(a => !/^--?(kubeconfig|ctrlz_address)(=|$)/.test(a));
  return [...without, `--kubeconfig=${kubeconfigPath}`, `--ctrlz_address=${podIP}`];
}

/** The resolv.conf the kubelet writes for a ClusterFirst pod (pkg/kubelet/network/dns/dns.go). */
export function podResolvConf(namespace: string, dnsIp: string, clusterDomain = 'cluster.local'): string {
  return [
    `search ${namespace}.svc.${clusterDomain} svc.${clusterDomain} ${clusterDomain}`,
    `nameserver ${dnsIp}`,
    'options ndots:5',
    '',
  ].join('\n');
}

interface Running {
  uid: string;
  podIP: string;
  sandbox: PodSandbox;
  process: ManagedProcess;
  state: IstiodProcessState;
  stopped: boolean;
  restartTimer?: NodeJS.Timeout;
  probe?: NodeJS.Timeout;
}

class ClusterIstiods {
  readonly running = new Map<string, Running>();
  private readonly queue = new WorkQueue();
  private readonly rest: KubeRest;
  private readonly pods: Informer<PodObject>;
  private loop?: Promise<void>;

  constructor(
    private readonly cluster: IstiodCluster,
    private readonly o: IstiodRunnerOptions,
    private readonly signal: AbortSignal,
    private readonly changed: () => void,
  ) {
    this.rest = new KubeRest(cluster.kubeConfig, signal);
    this.pods = new Informer<PodObject>({
      what: `${cluster.name} istiod pods`,
      listPath: '/api/v1/pods?labelSelector=app%3Distiod',
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
        this.o.log(`[${this.cluster.name}] ${key}: ${describe(err)}; retrying`);
        this.queue.addAfter(key, 2000);
      }
    }
  }

  private async reconcile(key: string) {
    const pod = this.pods.cache.get(key);
    const container = pod?.spec.containers.find(c => c.name === 'discovery');
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
    const log = (msg: string) => this.o.log(`[${cluster}] istiod ${key}: ${msg}`);
    const sandbox = new PodSandbox(pod, container, this.rest, path.join(dir, 'pods'), log);
    await sandbox.prepare();
    try {
      const mount = (container.volumeMounts ?? []).find(
        m => m.mountPath === '/var/run/secrets/kubernetes.io/serviceaccount',
      );
      if (!mount) throw new Error('the pod mounts no ServiceAccount token (automountServiceAccountToken off?)');
      const kubeconfigPath = path.join(sandbox.root, '.testbed-kubeconfig');
      fs.writeFileSync(kubeconfigPath, this.kubeconfig(sandbox.inPod(mount.mountPath)), { mode: 0o600 });
      const resolvConf = path.join(sandbox.root, '.testbed-resolv.conf');
      fs.writeFileSync(
        resolvConf,
        podResolvConf(pod.metadata.namespace, this.cluster.dnsIp, this.cluster.clusterDomain),
        { mode: 0o644 },
      );
      const env = await sandbox.environment();
      env.SSL_CERT_FILE = this.o.trustBundlePath;
      const args = istiodArgs(
        (container.args ?? []).map(a => PodSandbox.expand(a, env)),
        podIP,
        kubeconfigPath,
      );
      await this.o.addresses.acquire(podIP);
      const logPath = path.join(dir, `istiod-${pod.metadata.name}.log`);
      const process = new ManagedProcess(
        `${cluster}/istiod/${pod.metadata.name}`,
        'unshare',
        [
          '--mount',
          '--propagation',
          'private',
          '--',
          '/bin/sh',
          '-c',
          'mount --bind "$1" /etc/resolv.conf && shift && exec "$@"',
          'sh',
          resolvConf,
          this.o.binary,
          ...args,
        ],
        logPath,
        { cwd: sandbox.root, env },
      );
      const entry: Running = {
        uid: pod.metadata.uid,
        podIP,
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

  /** Starts the process, probes readiness, and restarts it with back-off if it dies on its own. */
  private launch(key: string, entry: Running) {
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
        `[${this.cluster.name}] istiod ${key} exited with ${code}; restart ${entry.state.restarts} in ${delay} ms; last lines:\n${entry.process.logTail(10)}`,
      );
      this.changed();
      entry.restartTimer = setTimeout(() => {
        if (!entry.stopped && !this.signal.aborted) this.launch(key, entry);
      }, delay);
    });
  }

  /** The chart's readinessProbe: GET /ready on 8080. */
  private probeReadiness(entry: Running) {
    const tick = () => {
      if (entry.stopped || this.signal.aborted || !entry.process.running) return;
      const req = http.get({ host: entry.podIP, port: 8080, path: '/ready', timeout: 2000 }, res => {
        res.resume();
        if (res.statusCode === 200) {
          entry.state.readyAt = new Date().toISOString();
          this.o.log(
            `[${this.cluster.name}] istiod ${entry.state.namespace}/${entry.state.pod} ready after ${
              Date.parse(entry.state.readyAt) - Date.parse(entry.state.startedAt)
            } ms`,
          );
          this.changed();
        } else entry.probe = setTimeout(tick, 500);
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => {
        entry.probe = setTimeout(tick, 500);
      });
    };
    entry.probe = setTimeout(tick, 500);
  }

  private async stop(key: string, entry: Running) {
    entry.stopped = true;
    clearTimeout(entry.restartTimer);
    clearTimeout(entry.probe);
    this.running.delete(key);
    await entry.process.stop(10_000);
    await entry.sandbox.dispose();
    await this.o.addresses.release(entry.podIP).catch(err => this.o.log(String(err)));
    this.o.log(`[${this.cluster.name}] istiod ${key}: stopped`);
    this.changed();
  }

  async stopAll() {
    this.queue.close();
    await Promise.all([...this.running].map(([key, entry]) => this.stop(key, entry)));
    await this.loop;
  }

  private kubeconfig(serviceAccountDir: string): string {
    return JSON.stringify(
      {
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          {
            name: this.cluster.name,
            cluster: { server: this.cluster.server, 'certificate-authority': path.join(serviceAccountDir, 'ca.crt') },
          },
        ],
        // client-go re-reads a tokenFile, so the kubelet-style refresh of the token reaches istiod.
        users: [{ name: 'pod', user: { tokenFile: path.join(serviceAccountDir, 'token') } }],
        contexts: [{ name: 'pod', context: { cluster: this.cluster.name, user: 'pod' } }],
        'current-context': 'pod',
      },
      null,
      2,
    );
  }
}

export interface IstiodRunner {
  list(): IstiodProcessState[];
  stop(): Promise<void>;
}

/** Starts watching every cluster's istiod pods; returns at once. */
export function startIstiodRunner(options: IstiodRunnerOptions, onChange: () => void): IstiodRunner {
  const stopper = new AbortController();
  const clusters = options.clusters.map(c => new ClusterIstiods(c, options, stopper.signal, onChange));
  const runs = clusters.flatMap(c => c.run());
  return {
    list: () =>
      clusters
        .flatMap(c => [...c.running.values()].map(r => ({ ...r.state })))
        .sort((a, b) => `${a.cluster}/${a.pod}`.localeCompare(`${b.cluster}/${b.pod}`)),
    async stop() {
      await Promise.all(clusters.map(c => c.stopAll()));
      stopper.abort();
      await Promise.allSettled(runs);
    },
  };
}
