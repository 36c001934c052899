import { TailnetPolicyStatus } from '@tailmesh/plugin-mesh-common';
import { TailnetPolicySource } from '../service/TailnetPolicyWatcher';

/** A tailnet policy file source that tests set by hand; `pending` until the first `set`. */
export class FakeTailnetPolicy implements TailnetPolicySource {
  private value: unknown = undefined;
  private state: TailnetPolicyStatus = { state: 'pending' };
  private readonly listeners = new Set<() => void>();

  policy(): unknown {
    return this.value;
  }

  status(): TailnetPolicyStatus {
    return this.state;
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** A successful read of `value`, as the watcher reports it. */
  set(value: unknown): void {
    this.value = value;
    this.state = { state: 'ok', lastReadAt: '2026-11-26T12:00:00.000Z' };
    for (const l of this.listeners) l();
  }
}

/** A policy file whose only grant opens everything to everyone. */
export const BROAD_POLICY = {
  grants: [{ src: ['*'], dst: ['*'], ip: ['*'] }],
};
