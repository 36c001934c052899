import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { CoreV1Api, KubeConfig, V1Node } from '@kubernetes/client-node';
import {
  binDir,
  clusterDir,
  clusterShape,
  kubeconfigPath,
  kwokStagesDir,
  ports,
} from './layout';
import { ManagedProcess, waitFor } from './process';

const writeSecretFile = (file: string, content: string) =>
  fs.writeFileSync(file, content, { mode: 0o600 });

/** The PEM blocks of a file, in order. */
function pemBlocks(pem: string): string[] {
  return (
    pem.match(
      /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g,
    ) ?? []
  );
}

/**
 * The controllers a test bed cluster runs: what the objects Tailmesh, Istio's charts and the
 * Tailscale stand-in create need (workloads, endpoints, service accounts and their tokens, the
 * root CA ConfigMap, namespace deletion, garbage collection, RBAC aggregation, node and pod
 * lifecycle, PDBs), not `*`. The others (quota, autoscaling, cron jobs, CSRs, volumes, cloud and
 * IPAM controllers) act on nothing here, yet poll: with `*` an idle controller-manager took 1.1 %
 * of a core, with this list 0.65 % (top over 60 s), about 11 % of a core for 25 clusters. Names:
 * `kube-controller-manager --help`, `--controllers`.
 */
const controllers = [
  'clusterrole-aggregation-controller',
  'daemonset-controller',
  'deployment-controller',
  'disruption-controller',
  'endpoints-controller',
  'endpointslice-controller',
  'endpointslice-mirroring-controller',
  'garbage-collector-controller',
  'job-controller',
  'namespace-controller',
  'node-lifecycle-controller',
  'pod-garbage-collector-controller',
  'replicaset-controller',
  'root-ca-certificate-publisher-controller',
  'serviceaccount-controller',
  'serviceaccount-token-controller',
  'statefulset-controller',
];

/**
 * One Kubernetes cluster of the test bed: a real kube-apiserver (storage under its own prefix of
 * the shared etcd), kube-controller-manager, kube-scheduler and kwok with fake nodes in two zones.
 */
export class ClusterControlPlane {
  readonly shape: ReturnType<typeof clusterShape>;
  readonly dir: string;
  readonly kubeconfigPath: string;
  readonly apiserverPort: number;
  private readonly token = crypto.randomBytes(24).toString('hex');
  private readonly processes: ManagedProcess[] = [];
  readonly apiserver: ManagedProcess;

  constructor(
    readonly index: number,
    stateDir: string,
    private readonly basePort: number,
    private readonly etcdUrl: string,
  ) {
    this.shape = clusterShape(index);
    this.dir = clusterDir(stateDir, this.shape.name);
    this.kubeconfigPath = kubeconfigPath(stateDir, this.shape.name);
    this.apiserverPort = ports(basePort).apiserver(index);
    fs.mkdirSync(path.join(this.dir, 'pki'), { recursive: true, mode: 0o700 });
    this.apiserver = this.component('kube-apiserver', this.apiserverArgs());
  }

  get name() {
    return this.shape.name;
  }

  get server() {
    return `https://127.0.0.1:${this.apiserverPort}`;
  }

  private file(name: string) {
    return path.join(this.dir, name);
  }

  private component(binary: string, args: string[]) {
    const proc = new ManagedProcess(
      `${this.name}/${binary}`,
      path.join(binDir, binary),
      args,
      this.file(`${binary}.log`),
    );
    this.processes.push(proc);
    return proc;
  }

  private apiserverArgs(): string[] {
    return [
      `--etcd-servers=${this.etcdUrl}`,
      `--etcd-prefix=/${this.name}/registry`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${this.apiserverPort}`,
      `--cert-dir=${this.file('pki')}`,
      `--token-auth-file=${this.file('tokens.csv')}`,
      '--authorization-mode=RBAC',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${this.file('sa.pub')}`,
      `--service-account-signing-key-file=${this.file('sa.key')}`,
      `--service-cluster-ip-range=${this.shape.serviceCidr}`,
      // No kubelets and no default route: the apiserver must not publish or dial its own endpoints.
      '--endpoint-reconciler-type=none',
      '--allow-privileged=true',
      // Webhooks (istiod's validation and injection) and the service proxy go to endpoint IPs,
      // which the test bed puts on its loopback for the pods it runs for real; there is no
      // kube-proxy to route ClusterIPs.
      '--enable-aggregator-routing=true',
      '--enable-priority-and-fairness=false',
      '--profiling=false',
    ];
  }

  /** Writes the credentials this cluster's components use; all 0600, none on a command line. */
  private writeCredentials() {
    const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', {
      modulusLength: 2048,
    });
    writeSecretFile(
      this.file('sa.key'),
      privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    );
    writeSecretFile(
      this.file('sa.pub'),
      publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    );
    writeSecretFile(
      this.file('tokens.csv'),
      `${this.token},testbed-admin,testbed-admin,system:masters\n`,
    );
  }

  private async apiserverReady(): Promise<boolean> {
    return new Promise((resolve, reject) => {
      const req = https.get(
        `${this.server}/readyz`,
        // The serving CA exists only once the apiserver generated it; readiness is all we ask here.
        {
          headers: { authorization: `Bearer ${this.token}` },
          rejectUnauthorized: false,
          timeout: 2000,
        },
        res => {
          res.resume();
          resolve(res.statusCode === 200);
        },
      );
      req.on('error', reject);
      req.on('timeout', () => req.destroy(new Error('timeout')));
    });
  }

  /** The self-signed serving certificate's issuing CA, written by the apiserver into its cert dir. */
  servingCa(): string {
    const blocks = pemBlocks(
      fs.readFileSync(this.file('pki/apiserver.crt'), 'utf8'),
    );
    const ca = blocks[blocks.length - 1];
    if (!ca)
      throw new Error(`${this.name}: no certificate in pki/apiserver.crt`);
    return ca;
  }

  private writeKubeconfig() {
    const kc = {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: this.name,
          cluster: {
            server: this.server,
            'certificate-authority-data': Buffer.from(
              this.servingCa(),
            ).toString('base64'),
          },
        },
      ],
      users: [{ name: `${this.name}-admin`, user: { token: this.token } }],
      contexts: [
        {
          name: this.name,
          context: { cluster: this.name, user: `${this.name}-admin` },
        },
      ],
      'current-context': this.name,
    };
    writeSecretFile(this.kubeconfigPath, JSON.stringify(kc, null, 2));
  }

  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromFile(this.kubeconfigPath);
    return kc;
  }

  async startApiserver(): Promise<void> {
    this.apiserver.start();
    await Promise.race([
      waitFor(
        `${this.name} kube-apiserver /readyz`,
        () => this.apiserverReady(),
        // 22 apiservers start together on 2 cores; on a loaded machine the last takes minutes.
        { timeoutMs: 240_000 },
      ),
      this.apiserver.failOnExit(),
    ]);
  }

  async start(): Promise<void> {
    this.writeCredentials();
    await this.startApiserver();
    this.writeKubeconfig();

    const p = ports(this.basePort);
    const kc = this.kubeconfigPath;
    const serving = (port: number) => [
      '--bind-address=127.0.0.1',
      `--secure-port=${port}`,
      `--authentication-kubeconfig=${kc}`,
      `--authorization-kubeconfig=${kc}`,
      `--cert-dir=${this.file('pki')}`,
    ];
    const controllerManager = this.component('kube-controller-manager', [
      `--kubeconfig=${kc}`,
      ...serving(p.controllerManager(this.index)),
      '--leader-elect=false',
      `--controllers=${controllers.join(',')}`,
      '--use-service-account-credentials=false',
      `--service-account-private-key-file=${this.file('sa.key')}`,
      `--root-ca-file=${this.file('pki/apiserver.crt')}`,
      `--cluster-name=${this.name}`,
    ]);
    const scheduler = this.component('kube-scheduler', [
      `--kubeconfig=${kc}`,
      ...serving(p.scheduler(this.index)),
      '--leader-elect=false',
    ]);
    const stages = fs
      .readdirSync(kwokStagesDir)
      .map(f => `--config=${path.join(kwokStagesDir, f)}`);
    const kwok = this.component('kwok', [
      `--kubeconfig=${kc}`,
      '--manage-all-nodes=false',
      '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
      '--manage-nodes-with-label-selector=',
      '--disregard-status-with-annotation-selector=kwok.x-k8s.io/status=custom',
      '--disregard-status-with-label-selector=',
      `--cidr=${this.shape.podCidr}`,
      '--node-ip=10.0.0.1',
      '--node-lease-duration-seconds=40',
      `--server-address=127.0.0.1:${p.kwok(this.index)}`,
      ...stages,
    ]);
    for (const proc of [controllerManager, scheduler, kwok]) proc.start();

    await this.createNodes();
    await this.createCoreDnsConfig();
    await this.controllersReady();
  }

  /**
   * Resolves once kwok's nodes are Ready and the controller-manager has made the default
   * ServiceAccount; rejects as soon as the controller-manager, the scheduler or kwok exits.
   */
  private async controllersReady(): Promise<void> {
    const [controllerManager, scheduler, kwok] = this.controllers();
    const core = this.kubeConfig().makeApiClient(CoreV1Api);
    await Promise.race([
      waitFor(
        `${this.name} nodes Ready and default service account`,
        async () => {
          const nodes = await core.listNode();
          const ready = nodes.items.filter(n =>
            n.status?.conditions?.some(
              c => c.type === 'Ready' && c.status === 'True',
            ),
          );
          if (ready.length < this.shape.zones.length) return false;
          const sas = await core.listNamespacedServiceAccount({
            namespace: 'default',
          });
          return sas.items.some(sa => sa.metadata?.name === 'default');
        },
      ),
      controllerManager.failOnExit(),
      scheduler.failOnExit(),
      kwok.failOnExit(),
    ]);
  }

  /** One fake node per zone, managed by kwok, labelled like a cloud provider labels them. */
  private async createNodes() {
    const core = this.kubeConfig().makeApiClient(CoreV1Api);
    for (const zone of this.shape.zones) {
      const name = `${zone}-node`;
      const node: V1Node = {
        metadata: {
          name,
          annotations: {
            'kwok.x-k8s.io/node': 'fake',
            'node.alpha.kubernetes.io/ttl': '0',
          },
          labels: {
            'kubernetes.io/hostname': name,
            'kubernetes.io/os': 'linux',
            'kubernetes.io/arch': 'amd64',
            'node.kubernetes.io/instance-type': 'kwok',
            'topology.kubernetes.io/region': this.shape.region,
            'topology.kubernetes.io/zone': zone,
            type: 'kwok',
          },
        },
      };
      try {
        await core.createNode({ body: node });
      } catch (e) {
        if ((e as { code?: number }).code !== 409) throw e;
      }
    }
  }

  /** The CoreDNS ConfigMap every kubeadm-style cluster has; Tailmesh adds its tailnet stanza to it. */
  private async createCoreDnsConfig() {
    const core = this.kubeConfig().makeApiClient(CoreV1Api);
    const corefile = [
      '.:53 {',
      '    errors',
      '    health {',
      '       lameduck 5s',
      '    }',
      '    ready',
      '    kubernetes cluster.local in-addr.arpa ip6.arpa {',
      '       pods insecure',
      '       fallthrough in-addr.arpa ip6.arpa',
      '       ttl 30',
      '    }',
      '    prometheus :9153',
      '    forward . /etc/resolv.conf {',
      '       max_concurrent 1000',
      '    }',
      '    cache 30',
      '    loop',
      '    reload',
      '    loadbalance',
      '}',
      '',
    ].join('\n');
    try {
      await core.createNamespacedConfigMap({
        namespace: 'kube-system',
        body: {
          metadata: { name: 'coredns', namespace: 'kube-system' },
          data: { Corefile: corefile },
        },
      });
    } catch (e) {
      if ((e as { code?: number }).code !== 409) throw e;
    }
    // kubeadm's kube-dns Service at the range's tenth address; the test bed's CoreDNS stand-in
    // answers on that ClusterIP for the pods it runs (test/testbed/src/dns/coreDns.ts).
    try {
      await core.createNamespacedService({
        namespace: 'kube-system',
        body: {
          metadata: {
            name: 'kube-dns',
            namespace: 'kube-system',
            labels: { 'k8s-app': 'kube-dns', 'kubernetes.io/name': 'CoreDNS' },
          },
          spec: {
            clusterIP: this.shape.dnsIp,
            selector: { 'k8s-app': 'kube-dns' },
            ports: [
              { name: 'dns', port: 53, protocol: 'UDP', targetPort: 53 },
              { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort: 53 },
              { name: 'metrics', port: 9153, protocol: 'TCP', targetPort: 9153 },
            ],
          },
        },
      });
    } catch (e) {
      if ((e as { code?: number }).code !== 409) throw e;
    }
  }

  pids(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const p of this.processes) if (p.pid) out[p.name] = p.pid;
    return out;
  }

  /**
   * Stops the controller-manager, the scheduler and kwok and keeps the apiserver: the cluster
   * still answers every read with the objects it has, but nothing reconciles them any more. For
   * a cluster whose tests are done: with 25 clusters, the idle controllers, scheduler and kwok
   * (and the apiserver's work serving their watches and kwok's node leases) took a large share
   * of a 2-core machine that the files after it need.
   */
  async park(): Promise<void> {
    for (const proc of this.controllers().reverse()) await proc.stop();
  }

  /**
   * Starts whichever of the cluster's controller-manager, scheduler and kwok is not running (all
   * of them for a parked cluster); resolves once its nodes are Ready. A fresh controller-manager gives every node a full grace period from its own
   * start before judging it (node_lifecycle_controller.go: "Missing timestamp for Node ...
   * Assuming now as a timestamp"), and kwok renews the node leases within seconds, so the
   * pods on a parked cluster's nodes stay Ready.
   */
  async unpark(): Promise<void> {
    for (const proc of this.controllers()) proc.start();
    await this.controllersReady();
  }

  /** The controller-manager, the scheduler and kwok, in the order start() made them. */
  private controllers(): ManagedProcess[] {
    return this.processes.filter(p => p !== this.apiserver);
  }

  async stop(): Promise<void> {
    // Dependents first, so nothing logs a storm of connection errors while the apiserver goes.
    for (const proc of [...this.processes].reverse()) await proc.stop();
  }
}
