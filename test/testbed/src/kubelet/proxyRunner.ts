/**
 * The data plane of the test bed. No Envoy binary can be had here, so for every Ready pod that
 * istiod's injector gave an `istio-proxy` container (sidecars, and gateways such as the east-west
 * gateway, whose chart asks for the `gateway` injection template), the test bed runs
 * `mesh-dataplane` (test/testbed/go-istio/cmd/mesh-dataplane) in that container's place, the way
 * podProcesses.ts runs istiod:
 * - `proxy sidecar` → `mesh-dataplane sidecar`: Istio's echo app on the pod's container ports
 *   behind a stand-in for the sidecar's inbound (mutual TLS with the workload certificate);
 * - `proxy router` → `mesh-dataplane gateway`: the AUTO_PASSTHROUGH routing of a gateway, by SNI,
 *   to the endpoints its own istiod lists.
 * Both act only on what the real istiod of their cluster tells them over xDS, and take their
 * workload certificate from that istiod's CA as pilot-agent does: a CSR authenticated with the
 * pod's `istio-token` (the injected projected token for audience `istio-ca`), trusting the
 * `istio-ca-root-cert` ConfigMap mounted at /var/run/secrets/istio (istio/istio
 * manifests/charts/istio-control/istio-discovery/files/injection-template.yaml). The kubelet part
 * (these files, their refresh, the pod's environment) is podSandbox.ts.
 *
 * The discovery address of the injected PROXY_CONFIG (`istiod.<ns>.svc:15012`) is a Service:
 * the stand-in dials its ClusterIP, 15010 (plaintext xDS) for ADS and 15012 for the CA, and the
 * test bed's kube-proxy (network/kubeProxy.ts) forwards each connection to a ready istiod pod, so
 * a restarted istiod is found again on reconnect.
 * Every connection the stand-ins open leaves from the pod's own IP, so the tailnet model sees
 * the pod as the source, as it would see a pod's packets.
 */
import fs from 'node:fs';
import type { V1Container } from '@kubernetes/client-node';
import type { KubeConfigLike, KubeRest } from '../kube/kubeClient';
import { LoopbackAddresses } from '../network/loopbackAddresses';
import { PodProcessCluster, PodProgram, PodRunner, RunningPod, startPodRunner } from './podProcesses';
import { PodObject, PodSandbox } from './podSandbox';

export interface ProxyCluster extends PodProcessCluster {
  kubeConfig: KubeConfigLike;
}

export interface ProxyRunnerOptions {
  clusters: ProxyCluster[];
  /** The mesh-dataplane binary. */
  binary: string;
  addresses: LoopbackAddresses;
  log: (msg: string) => void;
}

const PROXY_CONTAINER = 'istio-proxy';
const TOKEN_PATH = '/var/run/secrets/tokens/istio-token';
const ROOT_CERT_PATH = '/var/run/secrets/istio/root-cert.pem';
/** Envoy's own ports on a proxy (admin, status, telemetry), not traffic ports. */
const PROXY_OWN_PORTS = new Set([15000, 15004, 15006, 15020, 15021, 15090]);

/** The injected container, a regular one or a native sidecar (an init container, restartPolicy Always). */
export function proxyContainer(pod: PodObject): V1Container | undefined {
  return (
    pod.spec.containers.find(c => c.name === PROXY_CONTAINER) ??
    pod.spec.initContainers?.find(c => c.name === PROXY_CONTAINER && c.restartPolicy === 'Always')
  );
}

/** `sidecar` or `router`, from the container's `proxy <type>` args (pilot-agent's command line). */
export function proxyType(container: V1Container): 'sidecar' | 'router' | undefined {
  const args = container.args ?? [];
  const i = args.indexOf('proxy');
  const type = i >= 0 ? args[i + 1] : undefined;
  return type === 'sidecar' || type === 'router' ? type : undefined;
}

/** The host and port of PROXY_CONFIG's discoveryAddress (the injector always sets one). */
export function discoveryAddress(env: Record<string, string>): { service: string; namespace: string } {
  let address = 'istiod.istio-system.svc:15012';
  try {
    const proxyConfig = JSON.parse(env.PROXY_CONFIG ?? '{}') as { discoveryAddress?: string };
    address = proxyConfig.discoveryAddress ?? address;
  } catch {
    // A PROXY_CONFIG that is not JSON is YAML in old injectors; the default is what they carry.
  }
  const host = address.slice(0, address.lastIndexOf(':'));
  const [service, namespace = 'istio-system'] = host.split('.');
  return { service, namespace };
}

/** The flags that name the pod's identity and its istiod, shared by every mesh-dataplane mode. */
export function identityFlags(o: {
  env: Record<string, string>;
  pod: PodObject;
  sandbox: PodSandbox;
  istiodAddress: string;
}): string[] {
  const { env, pod, sandbox } = o;
  const labels = Object.entries(pod.metadata.labels ?? {}).map(([k, v]) => `--label=${k}=${v}`);
  // Node metadata as pilot-agent reads it from ISTIO_META_* (pkg/bootstrap/config.go), e.g. the
  // gateway's REQUESTED_NETWORK_VIEW, without which istiod gives it every network's endpoints.
  const meta = Object.entries(env)
    .filter(([k]) => k.startsWith('ISTIO_META_'))
    .map(([k, v]) => `--meta=${k.slice('ISTIO_META_'.length)}=${v}`);
  return [
    `--pod-ip=${pod.status?.podIP ?? ''}`,
    `--pod=${pod.metadata.name}`,
    `--namespace=${pod.metadata.namespace}`,
    `--cluster-id=${env.ISTIO_META_CLUSTER_ID ?? 'Kubernetes'}`,
    `--network=${env.ISTIO_META_NETWORK ?? ''}`,
    `--service-account=${pod.spec.serviceAccountName ?? 'default'}`,
    `--xds=${o.istiodAddress}:15010`,
    `--ca=${o.istiodAddress}:15012`,
    `--root-cert=${sandbox.inPod(ROOT_CERT_PATH)}`,
    `--token-file=${sandbox.inPod(TOKEN_PATH)}`,
    ...labels,
    ...meta,
  ];
}

/**
 * The istiod Service's ClusterIP, once it has a ready endpoint: the proxy dials the Service, and
 * the test bed's kube-proxy (network/kubeProxy.ts) sends each connection to a ready istiod pod,
 * so a stand-in reconnects to a restarted istiod as Envoy does.
 */
async function istiodServiceAddress(rest: KubeRest, env: Record<string, string>): Promise<string> {
  const { service, namespace } = discoveryAddress(env);
  const slices = await rest.json<{
    items: Array<{ endpoints?: Array<{ addresses: string[]; conditions?: { ready?: boolean } }> }>;
  }>(
    'GET',
    `/apis/discovery.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/endpointslices?labelSelector=${encodeURIComponent(
      `kubernetes.io/service-name=${service}`,
    )}`,
  );
  const ready = slices.items.flatMap(s => (s.endpoints ?? []).filter(e => e.conditions?.ready !== false));
  if (!ready.length) throw new Error(`no ready endpoint of ${service}.${namespace} to connect to yet`);
  const svc = await rest.json<{ spec?: { clusterIP?: string } }>(
    'GET',
    `/api/v1/namespaces/${encodeURIComponent(namespace)}/services/${encodeURIComponent(service)}`,
  );
  const ip = svc.spec?.clusterIP;
  if (!ip || ip === 'None') throw new Error(`Service ${service}.${namespace} has no ClusterIP`);
  return ip;
}

interface ServiceLike {
  spec?: {
    selector?: Record<string, string>;
    ports?: Array<{ port: number; targetPort?: number | string; protocol?: string }>;
  };
}

/**
 * The pod's traffic ports. A sidecar's are the app containers' ports. A gateway's Envoy listens
 * where istiod's Gateway listeners say, which for a gateway Service's ports are their target
 * ports (istio/istio pilot/pkg/model/gateway.go resolves a server port to the Service's
 * targetPort); the gateway chart declares no container port for them, so they come from the
 * Services that select the pod.
 */
export function trafficPorts(pod: PodObject, type: 'sidecar' | 'router', services: ServiceLike[]): number[] {
  const tcp = (protocol?: string) => (protocol ?? 'TCP') === 'TCP';
  const ports =
    type === 'sidecar'
      ? pod.spec.containers
          .filter(c => c.name !== PROXY_CONTAINER)
          .flatMap(c => (c.ports ?? []).filter(p => tcp(p.protocol)).map(p => p.containerPort))
      : services
          .filter(svc => {
            const selector = Object.entries(svc.spec?.selector ?? {});
            return selector.length > 0 && selector.every(([k, v]) => pod.metadata.labels?.[k] === v);
          })
          .flatMap(svc => (svc.spec?.ports ?? []).filter(p => tcp(p.protocol)))
          .map(p => (typeof p.targetPort === 'number' ? p.targetPort : p.port));
  return [...new Set(ports)].filter(p => !PROXY_OWN_PORTS.has(p)).sort((a, b) => a - b);
}

function proxyProgram(o: ProxyRunnerOptions): PodProgram<ProxyCluster> {
  return {
    what: 'proxy',
    container: pod => {
      const c = proxyContainer(pod);
      return c && proxyType(c) ? c : undefined;
    },
    async command(_cluster, pod, sandbox, rest) {
      const type = proxyType(sandbox.container)!;
      const env = await sandbox.environment();
      const istiodAddress = await istiodServiceAddress(rest, env);
      const services =
        type === 'router'
          ? (
              await rest.json<{ items: ServiceLike[] }>(
                'GET',
                `/api/v1/namespaces/${encodeURIComponent(pod.metadata.namespace)}/services`,
              )
            ).items
          : [];
      const ports = trafficPorts(pod, type, services);
      if (type === 'router' && !ports.length) throw new Error('no Service selects this gateway pod yet');
      const portFlag = type === 'sidecar' ? '--app-port' : '--port';
      return {
        file: o.binary,
        args: [
          type === 'sidecar' ? 'sidecar' : 'gateway',
          ...identityFlags({ env, pod, sandbox, istiodAddress }),
          ...ports.map(p => `${portFlag}=${p}`),
        ],
        // Only what the stand-in needs: nothing of the pod's environment is a secret, but the
        // host's is not the pod's.
        env: { PATH: env.PATH ?? '/usr/bin:/bin' },
        logName: `proxy-${pod.metadata.namespace}-${pod.metadata.name}.log`,
      };
    },
    // mesh-dataplane prints `ready` once it holds a workload certificate and listens.
    ready: async (entry: RunningPod) => /^ready$/m.test(await fs.promises.readFile(entry.state.logPath, 'utf8')),
  };
}

export interface ProxyRunner extends PodRunner {
  /** The flags of a pod's running proxy, for a one-shot client with the same identity. */
  clientFlags(cluster: string, namespace: string, pod: string): Promise<string[]>;
}

/** Starts watching every cluster's injected pods; returns at once. */
export function startProxyRunner(options: ProxyRunnerOptions, onChange: () => void): ProxyRunner {
  const runner = startPodRunner(options.clusters, proxyProgram(options), options, onChange);
  return {
    ...runner,
    async clientFlags(cluster, namespace, pod) {
      const entry = runner.find(cluster, namespace, pod);
      if (!entry) throw new Error(`no proxy runs for pod ${namespace}/${pod} in ${cluster} (not injected, or not Ready)`);
      if (!entry.state.readyAt) throw new Error(`the proxy of ${namespace}/${pod} in ${cluster} is not ready yet`);
      // The running process's own identity flags: the same token, root and istiod.
      const args = entry.process.args;
      return args.filter(a => !/^--(app-port|port)=/.test(a)).slice(1);
    },
  };
}
