/**
 * Runs a real istiod (`pilot-discovery`, built from the pinned istio.io/istio module) for every
 * Ready istiod pod in a test bed cluster (podProcesses.ts starts, restarts and stops it with the
 * pod). kwok fakes the pod; this plays the kubelet's part for its one container, the way the
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
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { KubeConfigLike } from '../kube/kubeClient';
import { LoopbackAddresses } from '../network/loopbackAddresses';
import { PodProcessCluster, PodProcessState, PodProgram, PodRunner, startPodRunner } from './podProcesses';
import { PodSandbox } from './podSandbox';

export interface IstiodCluster extends PodProcessCluster {
  kubeConfig: KubeConfigLike;
  /** The apiserver as processes inside the test bed's namespace reach it. */
  server: string;
  /** PEM of the apiserver's serving CA. */
  caPem: string;
  /** The cluster's kube-dns ClusterIP, where its DNS stand-in answers. */
  dnsIp: string;
  clusterDomain?: string;
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
export type IstiodProcessState = PodProcessState;

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

function istiodKubeconfig(cluster: IstiodCluster, serviceAccountDir: string): string {
  return JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: cluster.name,
          cluster: { server: cluster.server, 'certificate-authority': path.join(serviceAccountDir, 'ca.crt') },
        },
      ],
      // client-go re-reads a tokenFile, so the kubelet-style refresh of the token reaches istiod.
      users: [{ name: 'pod', user: { tokenFile: path.join(serviceAccountDir, 'token') } }],
      contexts: [{ name: 'pod', context: { cluster: cluster.name, user: 'pod' } }],
      'current-context': 'pod',
    },
    null,
    2,
  );
}

/** pilot-discovery for the `discovery` container of each `app=istiod` pod. */
function istiodProgram(o: IstiodRunnerOptions): PodProgram<IstiodCluster> {
  return {
    what: 'istiod',
    labelSelector: 'app=istiod',
    container: pod => pod.spec.containers.find(c => c.name === 'discovery'),
    async command(cluster, pod, sandbox) {
      const container = sandbox.container;
      const mount = (container.volumeMounts ?? []).find(
        m => m.mountPath === '/var/run/secrets/kubernetes.io/serviceaccount',
      );
      if (!mount) throw new Error('the pod mounts no ServiceAccount token (automountServiceAccountToken off?)');
      const kubeconfigPath = path.join(sandbox.root, '.testbed-kubeconfig');
      fs.writeFileSync(kubeconfigPath, istiodKubeconfig(cluster, sandbox.inPod(mount.mountPath)), { mode: 0o600 });
      const resolvConf = path.join(sandbox.root, '.testbed-resolv.conf');
      fs.writeFileSync(resolvConf, podResolvConf(pod.metadata.namespace, cluster.dnsIp, cluster.clusterDomain), {
        mode: 0o644,
      });
      const env = await sandbox.environment();
      env.SSL_CERT_FILE = o.trustBundlePath;
      const args = istiodArgs(
        (container.args ?? []).map(a => PodSandbox.expand(a, env)),
        pod.status?.podIP ?? '',
        kubeconfigPath,
      );
      return {
        file: 'unshare',
        args: [
          '--mount',
          '--propagation',
          'private',
          '--',
          '/bin/sh',
          '-c',
          'mount --bind "$1" /etc/resolv.conf && shift && exec "$@"',
          'sh',
          resolvConf,
          o.binary,
          ...args,
        ],
        env,
        logName: `istiod-${pod.metadata.name}.log`,
      };
    },
    // The chart's readinessProbe: GET /ready on 8080.
    ready: entry =>
      new Promise<boolean>(resolve => {
        const req = http.get({ host: entry.podIP, port: 8080, path: '/ready', timeout: 2000 }, res => {
          res.resume();
          resolve(res.statusCode === 200);
        });
        req.on('timeout', () => req.destroy());
        req.on('error', () => resolve(false));
      }),
  };
}

export type IstiodRunner = Pick<PodRunner, 'list' | 'stop'>;

/** Starts watching every cluster's istiod pods; returns at once. */
export function startIstiodRunner(options: IstiodRunnerOptions, onChange: () => void): IstiodRunner {
  return startPodRunner(options.clusters, istiodProgram(options), options, onChange);
}
