import path from 'node:path';
import {
  CoreV1Api,
  NetworkingV1Api,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { mockServices, startTestBackend } from '@backstage/backend-test-utils';
import { ConfigReader } from '@backstage/config';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import { TemplateAction } from '@backstage/plugin-scaffolder-node';
import { JsonObject } from '@backstage/types';
import meshPlugin from '@tailmesh/plugin-mesh-backend';
import {
  ANNOTATION_ISTIO_CLUSTER,
  AUDIT_FINDING_KINDS,
  AuditFinding,
  AuditFindingKind,
  CACERTS_KEYS,
  ANNOTATION_INTERMEDIATE_NOT_AFTER,
  CACERTS_SECRET,
  COREDNS_CONFIGMAP,
  COREDNS_COREFILE_KEY,
  EAST_WEST_GATEWAY_SERVICE,
  EGRESS_SERVICE_NAMESPACE,
  apiEgressPolicyName,
  HistoryResponse,
  ISTIO_MESH_CONFIGMAP,
  ISTIO_MESH_NETWORKS_KEY,
  ISTIO_MULTI_CLUSTER_VALUE,
  ISTIO_NAMESPACE,
  ISTIOD_DEPLOYMENT,
  KUBE_SYSTEM_NAMESPACE,
  LABEL_ISTIO_MULTI_CLUSTER,
  LABEL_ISTIO_NETWORK,
  LABEL_MESH_ID,
  LABEL_PEER,
  MembershipResponse,
  TAG_ISTIO_EAST_WEST_GATEWAY,
  TAILSCALE_NAMESPACE,
  TAILSCALE_OPERATOR_DEPLOYMENT,
  auditFindingId,
  coreDnsStanzaMarkers,
  remoteSecretName,
} from '@tailmesh/plugin-mesh-common';
import {
  TailscaleClient,
  certificateFingerprint,
} from '@tailmesh/plugin-mesh-node';
import { applyEdits, modify } from 'jsonc-parser';
import {
  createMeshActionDeps,
  createMeshActions,
} from '@tailmesh/plugin-scaffolder-backend-module-mesh';
import request from 'supertest';
import { parse, stringify } from 'yaml';
import { expectNoSecrets, runAction } from '../../support/actions';
import { testbedAppConfig, testbedSecrets } from '../../support/meshConfig';
import {
  kubeConfig,
  restartIstiod,
  releaseClusters,
  tailscaleCredentials,
  testbed,
} from '../../support/testbed';
import { eventually } from '../../support/eventually';
import { impostorCacerts } from '../../support/impostorCa';
import { setDeploymentPodsReady } from '../../support/podReadiness';

// Every finding of the membership audit, induced for real in a cluster of a healthy two-member
// mesh and seen through the real mesh backend plugin: reported by GET /membership with its
// clusters and fix, then cleared once the change is undone, with both recorded in /history.
//
// cluster15 and cluster16 belong to this file (run with TAILMESH_TESTBED_CLUSTERS=16). The mesh
// root CA lives in this file's own store under the test bed's state dir.
// `grant-too-broad` is induced in the tailnet policy file of the Tailscale API stand-in, which the
// backend polls every second here, and the file is restored afterwards.

const A = 'cluster15';
const B = 'cluster16';
const CLUSTERS = [A, B];
const MESH_ID = 'tailmesh-audit';
const NETWORK: Record<string, string> = { [A]: 'network15', [B]: 'network16' };
const WAIT_MS = 90_000;

const appConfig = (() => {
  const c = testbedAppConfig(CLUSTERS);
  c.mesh.ca.store.directory = path.join(
    testbed().stateDir,
    'audit-findings-root-ca',
  );
  return {
    ...c,
    mesh: {
      ...c.mesh,
      tailscale: { ...c.mesh.tailscale, policyPollIntervalSeconds: 1 },
    },
  };
})();
const config = new ConfigReader(appConfig);
const actions = new Map(
  createMeshActions(createMeshActionDeps(config)).map(a => [
    a.id,
    a as TemplateAction<any, any, any>,
  ]),
);
const tailnet = () => testbed().tailnet;

async function step(id: string, input: JsonObject) {
  const action = actions.get(id);
  if (!action) throw new Error(`action ${id} is not registered`);
  return runAction(action, input);
}

const core = (cluster: string) => kubeConfig(cluster).makeApiClient(CoreV1Api);
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

describe('every audit finding, induced in a real cluster, through the mesh backend', () => {
  let backend: Awaited<ReturnType<typeof startTestBackend>>;
  const induced = new Set<AuditFindingKind>();

  async function membership(): Promise<MembershipResponse> {
    const res = await request(backend.server).get('/api/mesh/membership');
    expect(res.status).toBe(200);
    return res.body as MembershipResponse;
  }

  async function history(): Promise<HistoryResponse> {
    const res = await request(backend.server).get(
      '/api/mesh/history?limit=200',
    );
    expect(res.status).toBe(200);
    return res.body as HistoryResponse;
  }

  const ids = (findings: AuditFinding[]) => findings.map(f => f.id).sort();

  /**
   * Waits until /membership reports exactly these finding ids (none: a healthy mesh). What istiod
   * itself reports about its peers (`istiod-remote-unsynced`) counts only when expected: the
   * wiring changes induced here are judged by the audit, istiod's reaction to a broken path by
   * realConsumers.test.ts (and until issue 13 every istiod reports its peers `timeout`).
   */
  async function findingsBecome(expected: string[]): Promise<AuditFinding[]> {
    let last: AuditFinding[] = [];
    return eventually(
      expected.length ? `findings ${expected.join(' ')}` : 'no finding',
      async () => {
        const m = await membership();
        last = m.findings.filter(
          f => f.kind !== 'istiod-remote-unsynced' || expected.includes(f.id),
        );
        const sameMembers =
          JSON.stringify(m.clusters) === JSON.stringify(CLUSTERS);
        return sameMembers &&
          JSON.stringify(ids(last)) === JSON.stringify([...expected].sort())
          ? last
          : undefined;
      },
      {
        timeoutMs: WAIT_MS,
        describeLast: () =>
          `; last seen: ${JSON.stringify(last.map(f => f.id))}`,
      },
    );
  }

  async function lastEventId(): Promise<number> {
    const { events } = await history();
    return events.length ? Number(events[0].id) : 0;
  }

  /**
   * Induces one finding, checks /membership reports it (and only the named companions that the
   * same change implies), undoes the change, waits for a healthy mesh again and checks history.
   */
  async function induceAndClear(spec: {
    kind: AuditFindingKind;
    clusters: string[];
    severity?: AuditFinding['severity'];
    /** Findings the same change necessarily raises too, by id. */
    companions?: string[];
    induce: () => Promise<void>;
    undo: () => Promise<void>;
  }) {
    await findingsBecome([]);
    const since = await lastEventId();
    const id = auditFindingId(spec.kind, spec.clusters);
    let failed = false;
    try {
      await spec.induce();
      const findings = await findingsBecome([id, ...(spec.companions ?? [])]);
      const finding = findings.find(f => f.id === id)!;
      expect(finding).toMatchObject({
        kind: spec.kind,
        severity: spec.severity ?? 'error',
        clusters: spec.clusters,
      });
      expect(finding.message.trim()).not.toBe('');
      expect(finding.fix.trim()).not.toBe('');
      induced.add(spec.kind);
    } catch (e) {
      failed = true;
      throw e;
    } finally {
      // Always undo, so one failure does not leave the next finding's mesh broken.
      await spec.undo().catch(e => {
        if (!failed) throw e;
      });
    }
    await findingsBecome([]);
    let seen: string[] = [];
    const recorded = await eventually(
      `finding-raised and finding-cleared of ${id} in /history`,
      async () => {
        const all = (await history()).events.filter(e => Number(e.id) > since);
        seen = all.map(e => `${e.id} ${e.kind} ${e.findingId ?? e.cluster}`);
        const events = all.filter(e => e.findingId === id);
        const raised = events.find(e => e.kind === 'finding-raised');
        const cleared = events.find(e => e.kind === 'finding-cleared');
        return raised && cleared && Number(cleared.id) > Number(raised.id)
          ? { raised, cleared }
          : undefined;
      },
      {
        timeoutMs: WAIT_MS,
        describeLast: () => `; events since ${since}: ${JSON.stringify(seen)}`,
      },
    );
    expect(recorded.raised.cluster).toBe(spec.clusters[0]);
    expect(recorded.cleared.message).toMatch(/^Resolved: /);
  }

  /** What a failing readiness probe does: the kubelet (here kwok) marks the pods not ready. */
  const setPodsReady = (
    cluster: string,
    namespace: string,
    deployment: string,
    ready: boolean,
  ) =>
    setDeploymentPodsReady(kubeConfig(cluster), namespace, deployment, ready);

  async function readMeshNetworks(cluster: string) {
    const cm = await core(cluster).readNamespacedConfigMap({
      name: ISTIO_MESH_CONFIGMAP,
      namespace: ISTIO_NAMESPACE,
    });
    return parse(cm.data![ISTIO_MESH_NETWORKS_KEY]) as {
      networks: Record<string, { gateways: Array<{ address?: string }> }>;
    };
  }

  async function writeMeshNetworks(cluster: string, value: unknown) {
    await core(cluster).patchNamespacedConfigMap(
      {
        name: ISTIO_MESH_CONFIGMAP,
        namespace: ISTIO_NAMESPACE,
        body: { data: { [ISTIO_MESH_NETWORKS_KEY]: stringify(value) } },
      },
      mergePatch,
    );
  }

  const configureNetworks = () =>
    step('mesh:istio:configure-networks', {
      members: CLUSTERS,
      tailnet: tailnet(),
      timeoutSeconds: 120,
    });

  const createRemoteSecrets = () =>
    step('mesh:istio:create-remote-secrets', {
      cluster: A,
      peers: [B],
      tailnet: tailnet(),
    });

  async function deleteRemoteSecret(cluster: string, peer: string) {
    await core(cluster).deleteNamespacedSecret({
      name: remoteSecretName(peer),
      namespace: ISTIO_NAMESPACE,
    });
  }

  async function labelIstioSystem(cluster: string, key: string, value: string) {
    await core(cluster).patchNamespace(
      {
        name: ISTIO_NAMESPACE,
        body: { metadata: { labels: { [key]: value } } },
      },
      mergePatch,
    );
  }

  beforeAll(async () => {
    backend = await startTestBackend({
      features: [
        meshPlugin,
        mockServices.rootConfig.factory({ data: appConfig }),
        mockServices.permissions.factory(),
        catalogServiceMock.factory(),
      ],
    });
  });

  afterAll(async () => {
    await backend?.stop();
    await releaseClusters(CLUSTERS);
  }, 180_000);

  it('builds a healthy two-member mesh with the real actions', async () => {
    // The order of the "Join cluster to mesh" template (as in meshJoin.test.ts): A, then B.
    for (const [i, cluster] of CLUSTERS.entries()) {
      const existing = CLUSTERS.slice(0, i);
      await step('mesh:tailscale:install-operator', {
        cluster,
        timeoutSeconds: 120,
      });
      await step('mesh:tailscale:grant-access', {});
      await step('mesh:tailscale:configure-dns', {
        cluster,
        tailnet: tailnet(),
        timeoutSeconds: 120,
      });
      if (existing.length) {
        await step('mesh:tailscale:create-egress', {
          cluster,
          peers: existing,
          tailnet: tailnet(),
        });
        for (const peer of existing) {
          await step('mesh:tailscale:create-egress', {
            cluster: peer,
            peers: [cluster],
            tailnet: tailnet(),
          });
        }
      }
      await step('mesh:ca:issue-intermediate', {
        cluster,
        createRootIfMissing: existing.length === 0,
      });
      await step('mesh:istio:install', {
        cluster,
        meshId: MESH_ID,
        network: NETWORK[cluster],
        timeoutSeconds: 120,
      });
      if (existing.length) {
        await step('mesh:istio:create-remote-secrets', {
          cluster,
          peers: existing,
          tailnet: tailnet(),
        });
      }
      await step('mesh:istio:deploy-eastwest-gateway', {
        cluster,
        network: NETWORK[cluster],
        tailnet: tailnet(),
        timeoutSeconds: 120,
      });
      await step('mesh:istio:configure-networks', {
        members: [...existing, cluster],
        tailnet: tailnet(),
        timeoutSeconds: 120,
      });
    }
    await findingsBecome([]);
    const m = await membership();
    expect(m.clusters).toEqual(CLUSTERS);
    expect(m.matrix.flat().filter(c => c.from !== c.to)).toMatchObject([
      {
        from: A,
        to: B,
        remoteSecret: 'present',
        gatewayInMeshNetworks: 'present',
      },
      {
        from: B,
        to: A,
        remoteSecret: 'present',
        gatewayInMeshNetworks: 'present',
      },
    ]);
    const { events } = await history();
    expect(events.filter(e => e.kind === 'joined').map(e => e.cluster)).toEqual(
      expect.arrayContaining(CLUSTERS),
    );
  }, 600_000);

  it('root-ca-mismatch: cluster16 trusts a root of its own', async () => {
    const secret = await core(B).readNamespacedSecret({
      name: CACERTS_SECRET,
      namespace: ISTIO_NAMESPACE,
    });
    const original = secret.data!;
    const meshRoot = certificateFingerprint(
      Buffer.from(original[CACERTS_KEYS.rootCert], 'base64').toString('utf8'),
    );
    // A member that plugged in a CA of its own (test/support/impostorCa.ts).
    // With two members there is no majority: the audit takes the root that sorts first as the
    // mesh's and blames the other member. So the finding names cluster16, the one changed, when
    // the impostor root sorts after the mesh's, else cluster15 (whose root is then the odd one).
    // (Drawing roots until one sorts after made the test fail when the mesh root sorts late.)
    const { data: impostor, rootFingerprint } = impostorCacerts(2);
    const blamed = rootFingerprint < meshRoot ? A : B;
    const setCacerts = (data: Record<string, string>) =>
      core(B).patchNamespacedSecret(
        { name: CACERTS_SECRET, namespace: ISTIO_NAMESPACE, body: { data } },
        mergePatch,
      );
    // istiod takes a new root only when it starts: its file watch refuses to swap to a root that
    // is not a superset or subset of the old one ("Updating new ROOT-CA not supported", istio/istio
    // pilot/pkg/bootstrap/istio_ca.go handleEvent), so the admin restarts it, as the fix says.
    await induceAndClear({
      kind: 'root-ca-mismatch',
      clusters: [blamed],
      // The impostor root lasts two days: the audit warns of its end too.
      companions: [auditFindingId('ca-expiring', [B])],
      induce: async () => {
        await setCacerts(impostor);
        await restartIstiod(B);
      },
      undo: async () => {
        await setCacerts(original);
        await restartIstiod(B);
      },
    });
  });

  it('one-way-remote-secret: cluster15 loses its remote secret for cluster16', async () => {
    await induceAndClear({
      kind: 'one-way-remote-secret',
      clusters: [A, B],
      induce: () => deleteRemoteSecret(A, B),
      undo: async () => {
        await createRemoteSecrets();
      },
    });
  });

  it('remote-secrets-missing: both remote secrets are gone', async () => {
    await induceAndClear({
      kind: 'remote-secrets-missing',
      clusters: [A, B],
      induce: async () => {
        await deleteRemoteSecret(A, B);
        await deleteRemoteSecret(B, A);
      },
      undo: async () => {
        await createRemoteSecrets();
      },
    });
  });

  it('remote-secret-for-non-member: cluster15 holds a remote secret for "ghost"', async () => {
    const ghost = 'ghost';
    const kubeconfig = stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: ghost,
          cluster: { server: `https://${ghost}-k8s-operator.${tailnet()}` },
        },
      ],
      contexts: [{ name: ghost, context: { cluster: ghost, user: ghost } }],
      users: [{ name: ghost, user: {} }],
      'current-context': ghost,
    });
    await induceAndClear({
      kind: 'remote-secret-for-non-member',
      clusters: [A, ghost],
      severity: 'warning',
      induce: async () => {
        await core(A).createNamespacedSecret({
          namespace: ISTIO_NAMESPACE,
          body: {
            metadata: {
              name: remoteSecretName(ghost),
              labels: {
                [LABEL_ISTIO_MULTI_CLUSTER]: ISTIO_MULTI_CLUSTER_VALUE,
              },
              annotations: { [ANNOTATION_ISTIO_CLUSTER]: ghost },
            },
            stringData: { [ghost]: kubeconfig },
          },
        });
      },
      undo: () => deleteRemoteSecret(A, ghost),
    });
  });

  it('mesh-id-clash: cluster16 is labelled with another mesh id', async () => {
    await induceAndClear({
      kind: 'mesh-id-clash',
      clusters: [A, B],
      induce: () => labelIstioSystem(B, LABEL_MESH_ID, 'another-mesh'),
      undo: () => labelIstioSystem(B, LABEL_MESH_ID, MESH_ID),
    });
  });

  it("network-clash: cluster16 claims cluster15's network", async () => {
    await induceAndClear({
      kind: 'network-clash',
      clusters: [A, B],
      // cluster15's meshNetworks now sends "network15" traffic to its own gateway only, not to
      // cluster16's: the same change is a wrong address there.
      companions: [auditFindingId('mesh-networks-wrong-address', [A, B])],
      induce: () => labelIstioSystem(B, LABEL_ISTIO_NETWORK, NETWORK[A]),
      undo: () => labelIstioSystem(B, LABEL_ISTIO_NETWORK, NETWORK[B]),
    });
  });

  it('gateway-without-address: the Tailscale operator lets go of cluster16 east-west gateway', async () => {
    // Clearing status.loadBalancer alone does not last: the operator (and its test bed stand-in)
    // writes the tailnet address back at once. What really leaves the Service without an address
    // is the operator no longer serving it: once the Service is no longer a LoadBalancer of class
    // `tailscale`, the operator removes its proxy and the ingress (svc.go maybeCleanup). The
    // apiserver drops the (otherwise immutable) loadBalancerClass on the change of type.
    const service = {
      name: EAST_WEST_GATEWAY_SERVICE,
      namespace: ISTIO_NAMESPACE,
    };
    const before = await core(B).readNamespacedService(service);
    expect(before.spec?.loadBalancerClass).toBe('tailscale');
    await induceAndClear({
      kind: 'gateway-without-address',
      clusters: [B],
      induce: async () => {
        await core(B).patchNamespacedService(
          { ...service, body: { spec: { type: 'ClusterIP' } } },
          mergePatch,
        );
      },
      undo: async () => {
        await core(B).patchNamespacedService(
          {
            ...service,
            body: {
              spec: { type: 'LoadBalancer', loadBalancerClass: 'tailscale' },
            },
          },
          mergePatch,
        );
      },
    });
  });

  it("istiod-not-ready: cluster16's istiod fails its readiness probe", async () => {
    await induceAndClear({
      kind: 'istiod-not-ready',
      clusters: [B],
      induce: () => setPodsReady(B, ISTIO_NAMESPACE, ISTIOD_DEPLOYMENT, false),
      undo: () => setPodsReady(B, ISTIO_NAMESPACE, ISTIOD_DEPLOYMENT, true),
    });
  });

  it("mesh-networks-missing-member: cluster15's meshNetworks forgets network16", async () => {
    await induceAndClear({
      kind: 'mesh-networks-missing-member',
      clusters: [A, B],
      induce: async () => {
        const networks = await readMeshNetworks(A);
        expect(networks.networks[NETWORK[B]]).toBeDefined();
        delete networks.networks[NETWORK[B]];
        await writeMeshNetworks(A, networks);
      },
      undo: async () => {
        await configureNetworks();
      },
    });
  });

  it("mesh-networks-wrong-address: cluster15's meshNetworks sends network16 to another address", async () => {
    await induceAndClear({
      kind: 'mesh-networks-wrong-address',
      clusters: [A, B],
      induce: async () => {
        const networks = await readMeshNetworks(A);
        const entry = networks.networks[NETWORK[B]];
        expect(entry.gateways.length).toBeGreaterThan(0);
        for (const g of entry.gateways) {
          g.address = `retired-eastwest-gateway.${tailnet()}`;
        }
        await writeMeshNetworks(A, networks);
      },
      undo: async () => {
        await configureNetworks();
      },
    });
  });

  it("egress-missing: cluster15's egress Service for cluster16 is deleted", async () => {
    const labelSelector = `${LABEL_PEER}=${B}`;
    const egress = async () =>
      (
        await core(A).listNamespacedService({
          namespace: EGRESS_SERVICE_NAMESPACE,
          labelSelector,
        })
      ).items;
    await induceAndClear({
      kind: 'egress-missing',
      clusters: [A, B],
      induce: async () => {
        // Two per peer: to its API server proxy and to its east-west gateway. The gateway's
        // goes (the API proxy's stays, so istiod's sync is not disturbed).
        const services = await egress();
        expect(services.map(s => s.metadata!.name).sort()).toEqual([
          `${B}-istio-eastwestgateway`,
          `${B}-k8s-operator`,
        ]);
        await core(A).deleteNamespacedService({
          name: `${B}-istio-eastwestgateway`,
          namespace: EGRESS_SERVICE_NAMESPACE,
        });
      },
      undo: async () => {
        // The operator's finalizer goes first; create-egress then makes a new Service.
        await eventually(
          'the deleted egress Service to be gone',
          async () => ((await egress()).length === 1 ? true : undefined),
          { timeoutMs: WAIT_MS },
        );
        await step('mesh:tailscale:create-egress', {
          cluster: A,
          peers: [B],
          tailnet: tailnet(),
        });
      },
    });
  });

  it("grant-reachable-from-pods: the NetworkPolicy that keeps cluster15's other pods off its egress proxy to cluster16's API server proxy is deleted", async () => {
    const networking = kubeConfig(A).makeApiClient(NetworkingV1Api);
    await induceAndClear({
      kind: 'grant-reachable-from-pods',
      clusters: [A, B],
      severity: 'warning',
      induce: async () => {
        await networking.deleteNamespacedNetworkPolicy({
          name: apiEgressPolicyName(B),
          namespace: EGRESS_SERVICE_NAMESPACE,
        });
      },
      undo: async () => {
        await step('mesh:tailscale:create-egress', {
          cluster: A,
          peers: [B],
          tailnet: tailnet(),
        });
      },
    });
  });

  it("operator-not-ready: cluster16's Tailscale operator fails its readiness probe", async () => {
    await induceAndClear({
      kind: 'operator-not-ready',
      clusters: [B],
      induce: () =>
        setPodsReady(
          B,
          TAILSCALE_NAMESPACE,
          TAILSCALE_OPERATOR_DEPLOYMENT,
          false,
        ),
      undo: () =>
        setPodsReady(
          B,
          TAILSCALE_NAMESPACE,
          TAILSCALE_OPERATOR_DEPLOYMENT,
          true,
        ),
    });
  });

  it("tailnet-dns-missing: cluster16's CoreDNS loses the tailnet stanza", async () => {
    const { begin, end } = coreDnsStanzaMarkers(tailnet());
    await induceAndClear({
      kind: 'tailnet-dns-missing',
      clusters: [B],
      induce: async () => {
        const cm = await core(B).readNamespacedConfigMap({
          name: COREDNS_CONFIGMAP,
          namespace: KUBE_SYSTEM_NAMESPACE,
        });
        const corefile = cm.data![COREDNS_COREFILE_KEY];
        const from = corefile.indexOf(begin);
        const to = corefile.indexOf(end);
        expect(from).toBeGreaterThanOrEqual(0);
        expect(to).toBeGreaterThan(from);
        const lineEnd = corefile.indexOf('\n', to);
        const without =
          corefile.slice(0, corefile.lastIndexOf('\n', from) + 1) +
          (lineEnd < 0 ? '' : corefile.slice(lineEnd + 1));
        expect(without).not.toContain(begin);
        await core(B).patchNamespacedConfigMap(
          {
            name: COREDNS_CONFIGMAP,
            namespace: KUBE_SYSTEM_NAMESPACE,
            body: { data: { [COREDNS_COREFILE_KEY]: without } },
          },
          mergePatch,
        );
      },
      undo: async () => {
        await step('mesh:tailscale:configure-dns', {
          cluster: B,
          tailnet: tailnet(),
          timeoutSeconds: 120,
        });
      },
    });
  });

  it('grant-too-broad: the tailnet policy opens every port of the east-west gateways to every member', async () => {
    const client = new TailscaleClient({
      apiUrl: testbed().tailscaleApi!.url,
      tailnet: '-',
      ...tailscaleCredentials(),
    });
    const original = await client.getPolicy();
    const broadGrant = {
      src: ['autogroup:member'],
      dst: [TAG_ISTIO_EAST_WEST_GATEWAY],
      ip: ['*'],
    };
    await induceAndClear({
      kind: 'grant-too-broad',
      clusters: [A, B],
      severity: 'warning',
      induce: async () => {
        const current = await client.getPolicy();
        const edits = modify(current.text, ['grants', -1], broadGrant, {
          formattingOptions: { insertSpaces: false, tabSize: 1 },
        });
        await client.setPolicy(applyEdits(current.text, edits), current.etag);
      },
      undo: async () => {
        const current = await client.getPolicy();
        await client.setPolicy(original.text, current.etag);
      },
    });
    expect((await client.getPolicy()).text).toBe(original.text);
    const m = await membership();
    expect(m.tailnetPolicy).toEqual({
      state: 'ok',
      lastReadAt: expect.any(String),
    });
  });

  it("ca-expiring: cluster15's intermediate, as recorded on cacerts, nears its end", async () => {
    const read = () =>
      core(A).readNamespacedSecret({
        name: CACERTS_SECRET,
        namespace: ISTIO_NAMESPACE,
      });
    const recorded = (await read()).metadata?.annotations?.[
      ANNOTATION_INTERMEDIATE_NOT_AFTER
    ];
    // mesh:ca:issue-intermediate recorded the intermediate's real end (3650 days at most).
    expect(Date.parse(recorded!)).toBeGreaterThan(
      Date.now() + 3000 * 24 * 3600 * 1000,
    );
    const annotate = (at: string) =>
      core(A).patchNamespacedSecret(
        {
          name: CACERTS_SECRET,
          namespace: ISTIO_NAMESPACE,
          body: {
            metadata: {
              annotations: { [ANNOTATION_INTERMEDIATE_NOT_AFTER]: at },
            },
          },
        },
        mergePatch,
      );
    await induceAndClear({
      kind: 'ca-expiring',
      clusters: [A],
      severity: 'warning',
      induce: () =>
        annotate(
          new Date(Date.now() + 20 * 24 * 3600 * 1000).toISOString(),
        ).then(() => undefined),
      undo: () => annotate(recorded!).then(() => undefined),
    });
  });

  it('grant-missing: the tailnet policy loses the network grant to the east-west gateways', async () => {
    const client = TailscaleClient.fromConfig(config);
    const original = await client.getPolicy();
    await induceAndClear({
      kind: 'grant-missing',
      clusters: [A, B],
      induce: async () => {
        const current = await client.getPolicy();
        // The packet filter then drops pods' requests to peers' gateways (realConsumers.test.ts).
        await client.setPolicy(
          current.text.replace(/"tcp:15443"/g, '"tcp:15444"'),
          current.etag,
        );
      },
      undo: async () => {
        const current = await client.getPolicy();
        await client.setPolicy(original.text, current.etag);
      },
    });
  });

  it("istiod-remote-unsynced: cluster15's istiod, restarted while the tailnet refuses its API calls, reports cluster16 timeout", async () => {
    // A healthy mesh to break: an istiod that last started while something else was broken
    // keeps reporting that peer `timeout` until it starts again.
    if (
      (await membership()).findings.some(
        f => f.kind === 'istiod-remote-unsynced',
      )
    ) {
      await restartIstiod(A);
      await restartIstiod(B);
    }
    await eventually(
      'every istiod synced with its peer',
      async () =>
        (await membership()).findings.some(
          f => f.kind === 'istiod-remote-unsynced',
        )
          ? undefined
          : true,
      { timeoutMs: WAIT_MS },
    );
    const client = TailscaleClient.fromConfig(config);
    const before = await client.getPolicy();
    await induceAndClear({
      kind: 'istiod-remote-unsynced',
      clusters: [A, B],
      // The same edit takes the network grant away, which the audit names too.
      companions: [auditFindingId('grant-missing', [A, B])],
      induce: async () => {
        // No network access to the API server proxies any more; istiod reads its remotes
        // afresh on a restart.
        const current = await client.getPolicy();
        await client.setPolicy(
          current.text.replace(/"tcp:443"/g, '"tcp:1"'),
          current.etag,
        );
        await restartIstiod(A);
      },
      undo: async () => {
        const current = await client.getPolicy();
        await client.setPolicy(before.text, current.etag);
      },
    });
  });

  it('induced every finding', () => {
    expect([...induced].sort()).toEqual([...AUDIT_FINDING_KINDS].sort());
  });

  it('never puts the OAuth client secret or a token in an answer', async () => {
    const bodies = [
      JSON.stringify(await membership()),
      JSON.stringify(await history()),
    ];
    expectNoSecrets(bodies, testbedSecrets());
  });
});
