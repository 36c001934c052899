import {
  AuditFinding,
  ClusterSyncHealth,
  MeshClusterSnapshot,
  TailnetPolicyStatus,
  auditMesh,
} from '@tailmesh/plugin-mesh-common';
import { MeshStateSource } from './cache/MeshStateSource';
import { TailnetPolicySource } from './TailnetPolicyWatcher';

/** The mesh as audited at one change: what was judged, and the findings. */
export interface MeshAudit {
  snapshots: MeshClusterSnapshot[];
  health: Map<string, ClusterSyncHealth['state']>;
  policy: TailnetPolicyStatus['state'];
  findings: AuditFinding[];
}

export type MeshAuditListener = (audit: MeshAudit) => void;

export interface MeshAuditorOptions {
  state: Pick<MeshStateSource, 'snapshots' | 'health' | 'onChange'>;
  /** Undefined when the grants are not judged at all. */
  policy?: TailnetPolicySource;
}

/**
 * The one place the mesh is audited: after each change of what the audit reads (a cluster's
 * snapshot or sync state, the tailnet policy file), never per request and never for the churn of
 * EndpointSlices and Services. Listeners get every new audit synchronously, so a state that lasts
 * only until the next change (a finding raised and fixed at once) is still seen.
 */
export class MeshAuditor {
  private last?: MeshAudit;
  private dirty = true;
  private count = 0;
  private readonly listeners = new Set<MeshAuditListener>();
  private unsubscribe: Array<() => void> = [];

  constructor(private readonly options: MeshAuditorOptions) {}

  start(): void {
    if (this.unsubscribe.length) return;
    this.unsubscribe = [
      this.options.state.onChange(
        change => {
          // Most changes are EndpointSlices and Services the audit never reads: no audit for them.
          if (change.meshClusters.length > 0) this.changed();
        },
        { immediate: true },
      ),
      ...(this.options.policy
        ? [this.options.policy.onChange(() => this.changed())]
        : []),
    ];
  }

  stop(): void {
    for (const u of this.unsubscribe) u();
    this.unsubscribe = [];
  }

  /** The audit of the current state: computed at most once per change. */
  current(): MeshAudit {
    if (this.dirty || !this.last) {
      this.last = this.audit();
      this.dirty = false;
    }
    return this.last;
  }

  /** Calls `listener` with each new audit; returns a function that unsubscribes. */
  onAudit(listener: MeshAuditListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Audits run so far. */
  get auditCount(): number {
    return this.count;
  }

  private changed(): void {
    this.dirty = true;
    if (this.listeners.size === 0) return;
    const audit = this.current();
    for (const listener of this.listeners) listener(audit);
  }

  private audit(): MeshAudit {
    const { state, policy } = this.options;
    this.count += 1;
    const snapshots = state.snapshots();
    return {
      snapshots,
      health: new Map(
        snapshots.map(s => [s.cluster, state.health(s.cluster).state]),
      ),
      policy: policy?.status().state ?? 'not-configured',
      findings: auditMesh(snapshots, { tailnetPolicy: policy?.policy() }),
    };
  }
}
