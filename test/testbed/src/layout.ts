import path from 'node:path';

/** Where the project keeps what the test bed needs: binaries, charts, kwok stages. */
export const repoRoot = path.resolve(__dirname, '../../..');
export const binDir = path.join(repoRoot, '.testbed', 'bin');
export const chartsDir = path.join(repoRoot, '.testbed', 'charts');
export const kwokStagesDir = path.join(repoRoot, '.testbed', 'kwok-stages');
export const defaultStateDir = path.join(repoRoot, '.testbed', 'run');

/** The tailnet the stand-ins pretend to be. `.ts.net` like a real MagicDNS domain. */
export const testbedTailnet = 'tailmesh-test.ts.net';

export const defaultBasePort = 31000;
// Each component's ports take a block of 30 (see `ports`): apiserver 10+i stays below the
// controller managers' 40+i.
export const maxClusters = 29;

/** Ports inside the test bed's network namespace; only apiservers and the Tailscale API are bridged out. */
export function ports(basePort: number) {
  return {
    etcdClient: basePort,
    etcdPeer: basePort + 1,
    tailscaleApi: basePort + 2,
    apiserver: (index: number) => basePort + 10 + index,
    controllerManager: (index: number) => basePort + 40 + index,
    scheduler: (index: number) => basePort + 70 + index,
    kwok: (index: number) => basePort + 100 + index,
  };
}

/** The fixed shape of test bed cluster `index` (1-based): name, network and two zones of one region. */
export function clusterShape(index: number) {
  const region = `region${index}`;
  return {
    name: `cluster${index}`,
    network: `network${index}`,
    region,
    zones: [`${region}-a`, `${region}-b`],
    // Distinct pod ranges so endpoints of different clusters never collide. Pod IPs of the pods the
    // test bed runs for real (istiod) are put on the namespace's loopback; nothing leaves it.
    podCidr: `10.${100 + index}.0.1/16`,
    // Distinct Service ranges too: the pods run for real resolve names through their own cluster's
    // DNS server at its kube-dns ClusterIP, and every cluster's is on the same loopback.
    serviceCidr: `10.${200 + index}.0.0/16`,
    dnsIp: `10.${200 + index}.0.10`,
  };
}

export function clusterDir(stateDir: string, name: string) {
  return path.join(stateDir, 'clusters', name);
}

export function kubeconfigPath(stateDir: string, name: string) {
  return path.join(clusterDir(stateDir, name), 'kubeconfig');
}

export const stateFile = (stateDir: string) =>
  path.join(stateDir, 'state.json');
export const controlSocket = (stateDir: string) =>
  path.join(stateDir, 'control.sock');
export const supervisorLog = (stateDir: string) =>
  path.join(stateDir, 'supervisor.log');
