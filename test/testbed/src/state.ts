import fs from 'node:fs';
import type { IstiodProcessState } from './kubelet/istiodRunner';
import type { PodProcessState } from './kubelet/podProcesses';
import { stateFile } from './layout';

/** What a running test bed tells its users; no secret in here (kubeconfigs are separate 0600 files). */
export interface TestbedClusterState {
  name: string;
  index: number;
  network: string;
  region: string;
  zones: string[];
  /** The apiserver, reachable on loopback from the namespace that started the test bed. */
  server: string;
  kubeconfigPath: string;
  apiserverRunning: boolean;
  /** The cluster's kube-dns ClusterIP, where its DNS stand-in answers inside the test bed. */
  dnsIp: string;
}

export interface TestbedState {
  phase: 'starting' | 'ready' | 'failed' | 'stopped';
  error?: string;
  stateDir: string;
  basePort: number;
  supervisorPid: number;
  startedAt: string;
  readyAt?: string;
  startupMs?: number;
  tailnet: string;
  tailscaleApi?: {
    url: string;
    /** 0600 JSON file with the OAuth client (clientId, clientSecret) the stand-in accepts. */
    credentialsPath: string;
  };
  clusters: TestbedClusterState[];
  /** The real istiods running for the clusters' Ready istiod pods (test/testbed/src/kubelet). */
  istiods?: IstiodProcessState[];
  /** The data-plane stand-ins running for injected pods (test/testbed/src/kubelet/proxyRunner.ts). */
  proxies?: PodProcessState[];
  /** Every process the test bed started, by name, so `down` can account for each. */
  pids: Record<string, number>;
}

export function readState(stateDir: string): TestbedState | undefined {
  try {
    return JSON.parse(
      fs.readFileSync(stateFile(stateDir), 'utf8'),
    ) as TestbedState;
  } catch {
    return undefined;
  }
}

export function writeState(state: TestbedState): void {
  const file = stateFile(state.stateDir);
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(state, null, 2), {
    mode: 0o600,
  });
  fs.renameSync(`${file}.tmp`, file);
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
