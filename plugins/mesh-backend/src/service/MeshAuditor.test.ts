import {
  ISTIO_REMOTE_READERS_GROUP,
  TAG_ISTIO_EAST_WEST_GATEWAY,
  TAG_K8S_OPERATOR,
  TAG_MESH_EGRESS,
  TAILSCALE_KUBERNETES_CAPABILITY,
} from '@tailmesh/plugin-mesh-common';
import { FakeMeshState, threeClusters } from '../testUtils/fakeMeshState';
import {
  BROAD_POLICY as BROAD,
  FakeTailnetPolicy as FakePolicy,
} from '../testUtils/fakeTailnetPolicy';
import { MeshAudit, MeshAuditor } from './MeshAuditor';

/** The grants mesh:tailscale:grant-access writes: all the mesh needs, nothing broader. */
const MESH_POLICY = {
  grants: [
    {
      src: [TAG_MESH_EGRESS],
      dst: [TAG_K8S_OPERATOR],
      ip: ['tcp:443'],
      app: {
        [TAILSCALE_KUBERNETES_CAPABILITY]: [
          { impersonate: { groups: [ISTIO_REMOTE_READERS_GROUP] } },
        ],
      },
    },
    {
      src: [TAG_MESH_EGRESS],
      dst: [TAG_ISTIO_EAST_WEST_GATEWAY],
      ip: ['tcp:15443'],
    },
  ],
};

describe('MeshAuditor', () => {
  it('judges the grants of the tailnet policy with the clusters, once per change', () => {
    const state = new FakeMeshState(threeClusters());
    const policy = new FakePolicy();
    const auditor = new MeshAuditor({ state, policy });
    auditor.start();
    const seen: MeshAudit[] = [];
    auditor.onAudit(a => seen.push(a));

    expect(auditor.current()).toMatchObject({
      policy: 'pending',
      findings: [],
    });
    expect(auditor.current()).toBe(auditor.current());
    expect(auditor.auditCount).toBe(1);

    policy.set(BROAD);
    expect(seen).toHaveLength(1);
    expect(seen[0].policy).toBe('ok');
    // Everything to everyone, yet no Kubernetes capability for istiod's calls.
    expect(seen[0].findings.map(f => f.id)).toEqual([
      'grant-missing:cluster1,cluster2',
      'grant-too-broad:cluster1,cluster2',
    ]);
    expect(auditor.current()).toBe(seen[0]);

    policy.set({ grants: [] });
    expect(seen[1].findings.map(f => f.id)).toEqual([
      'grant-missing:cluster1,cluster2',
    ]);

    policy.set(MESH_POLICY);
    expect(seen[2].findings).toEqual([]);
    expect(auditor.auditCount).toBe(4);

    auditor.stop();
    policy.set(BROAD);
    expect(seen).toHaveLength(3);
  });

  it('audits again on a change of what it reads, not on a change of the service view only', () => {
    const state = new FakeMeshState(threeClusters());
    const auditor = new MeshAuditor({ state });
    auditor.start();
    const seen: MeshAudit[] = [];
    auditor.onAudit(a => seen.push(a));
    const first = auditor.current();
    for (let i = 0; i < 100; i++) state.emit(false);
    expect(seen).toEqual([]);
    expect(auditor.current()).toBe(first);
    expect(auditor.auditCount).toBe(1);
    state.emit(true);
    expect(seen).toHaveLength(1);
    expect(auditor.auditCount).toBe(2);
  });

  it('skips the grant checks without a policy source', () => {
    const auditor = new MeshAuditor({
      state: new FakeMeshState(threeClusters()),
    });
    expect(auditor.current()).toMatchObject({
      policy: 'not-configured',
      findings: [],
    });
  });
});
