import {
  ACCEPT_JSON,
  ACCEPT_METADATA,
  ACCEPT_METADATA_LIST,
  KubeRequests,
  KubeStatusError,
} from './KubeRequests';

/**
 * Capped exponential backoff between reconnection attempts.
 *
 * @public
 */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = {
  initialMs: 250,
  maxMs: 10_000,
};

/** Delay before attempt `attempt` (0-based): doubling, capped, with jitter so clusters spread out. */
export function backoffDelay(attempt: number, opts: BackoffOptions): number {
  const base = Math.min(
    opts.maxMs,
    opts.initialMs * 2 ** Math.min(attempt, 30),
  );
  return Math.round(base / 2 + (Math.random() * base) / 2);
}

interface KubeListObject {
  metadata?: { resourceVersion?: string; continue?: string };
  kind?: string;
  items?: unknown[];
}

interface WatchEvent {
  type?: string;
  object?: {
    kind?: string;
    metadata?: { name?: string; namespace?: string; resourceVersion?: string };
    code?: number;
    reason?: string;
    message?: string;
  };
}

/** One kind of object watched in one cluster, and what is kept of each. */
export interface ResourceSpec<P> {
  /** For messages: "Services", "remote secrets". */
  what: string;
  /** Collection path, e.g. `/api/v1/namespaces/istio-system/configmaps`. */
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Ask the apiserver for metadata only (PartialObjectMetadata). */
  metadataOnly?: boolean;
  /**
   * Undefined drops the object. Objects arrive as parsed JSON of the type the spec's path serves,
   * so each spec's function states that type (`never` here accepts any of them).
   */
  project(obj: never): P | undefined;
  /** Index key, e.g. the namespace or the owning Service. */
  group?(p: P): string;
  /**
   * Whether a change of this projection can change what the mesh audit judges (the cluster's
   * snapshot): never for kinds only the service view reads (EndpointSlices, Nodes), for some
   * objects of others (the gateway and egress among all Services). Default: always.
   */
  affectsMesh?(p: P): boolean;
}

/** Where a ResourceWatch reports to. */
export interface ResourceWatchEvents {
  /** The view is current: the first list completed, or a broken watch is connected again. */
  healthy(): void;
  failed(error: unknown): void;
  /** Projections changed; `mesh` when one of them is one the mesh audit reads. */
  changed(mesh: boolean): void;
}

class GoneError extends Error {}

/** Whether a batch of stores changed anything, and anything the mesh audit reads. */
class ChangeTracker<P> {
  any = false;
  mesh = false;

  constructor(private readonly affectsMesh: (p: P) => boolean) {}

  /** One store: whether it changed, and the projection before and after it. */
  record(changed: boolean, before: P | undefined, after: P | undefined): void {
    if (!changed) return;
    this.any = true;
    // Both sides count: a Service that stops being the gateway changes the mesh as well.
    this.mesh ||=
      (before !== undefined && this.affectsMesh(before)) ||
      (after !== undefined && this.affectsMesh(after));
  }
}

const LIST_PAGE = 500;

/**
 * List-then-watch of one kind of object, keeping only projections. Resumes from the last
 * resourceVersion after a broken connection, re-lists on 410 Gone, reconnects with capped
 * exponential backoff, and never throws: failures are reported and retried until `stop()`.
 */
export class ResourceWatch<P> {
  private readonly items = new Map<string, P>();
  private readonly groups = new Map<string, Map<string, P>>();
  private readonly abort = new AbortController();
  private running?: Promise<void>;
  private wake?: () => void;
  private synced = false;
  /** Consecutive failures, for the backoff; reset by any success. */
  private failures = 0;

  constructor(
    private readonly spec: ResourceSpec<P>,
    private readonly http: KubeRequests,
    private readonly events: ResourceWatchEvents,
    private readonly backoff: BackoffOptions = DEFAULT_BACKOFF,
  ) {}

  get hasSynced(): boolean {
    return this.synced;
  }

  get what(): string {
    return this.spec.what;
  }

  start(): void {
    this.running ??= this.run();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.wake?.();
    await this.running;
  }

  get(key: string): P | undefined {
    return this.items.get(key);
  }

  values(): IterableIterator<P> {
    return this.items.values();
  }

  inGroup(group: string): Iterable<P> {
    return this.groups.get(group)?.values() ?? [];
  }

  private get stopped(): boolean {
    return this.abort.signal.aborted;
  }

  private async run(): Promise<void> {
    let resourceVersion: string | undefined;
    while (!this.stopped) {
      try {
        if (resourceVersion === undefined) {
          resourceVersion = await this.list();
          this.synced = true;
          this.failures = 0;
          this.events.healthy();
        }
        const started = Date.now();
        resourceVersion = await this.watch(resourceVersion, () => {
          this.failures = 0;
          this.events.healthy();
        });
        // A stream the server closes at once (not a regular timeout) must not become a busy loop.
        if (Date.now() - started < 1000)
          await this.sleep(backoffDelay(this.failures++, this.backoff));
      } catch (e) {
        if (this.stopped) break;
        if (
          e instanceof GoneError ||
          (e instanceof KubeStatusError && e.code === 410)
        ) {
          resourceVersion = undefined;
          continue;
        }
        this.events.failed(e);
        await this.sleep(backoffDelay(this.failures++, this.backoff));
      }
    }
  }

  private query(extra: Record<string, string>): string {
    const q = new URLSearchParams();
    if (this.spec.labelSelector)
      q.set('labelSelector', this.spec.labelSelector);
    if (this.spec.fieldSelector)
      q.set('fieldSelector', this.spec.fieldSelector);
    for (const [k, v] of Object.entries(extra)) q.set(k, v);
    return `${this.spec.path}?${q}`;
  }

  /** Lists every page, replaces the store, returns the list's resourceVersion. */
  private async list(): Promise<string> {
    const accept = this.spec.metadataOnly ? ACCEPT_METADATA_LIST : ACCEPT_JSON;
    const listed = new Map<string, P>();
    let continueToken: string | undefined;
    let resourceVersion = '';
    do {
      const page = await this.http.getJson<KubeListObject>(
        this.query({
          limit: String(LIST_PAGE),
          ...(continueToken ? { continue: continueToken } : {}),
        }),
        accept,
        this.abort.signal,
      );
      if (this.spec.metadataOnly && page.kind !== 'PartialObjectMetadataList') {
        throw new Error(
          `the apiserver answered a metadata-only list of ${this.spec.what} with ${page.kind}`,
        );
      }
      for (const item of page.items ?? []) {
        const key = keyOf(item as WatchEvent['object']);
        const p = this.spec.project(item as never);
        if (p !== undefined) listed.set(key, p);
      }
      continueToken = page.metadata?.continue || undefined;
      resourceVersion = page.metadata?.resourceVersion ?? '';
    } while (continueToken);

    const change = new ChangeTracker<P>(p => this.affectsMesh(p));
    for (const [key, old] of [...this.items]) {
      if (!listed.has(key)) change.record(this.remove(key), old, undefined);
    }
    for (const [key, p] of listed) {
      const old = this.items.get(key);
      change.record(this.put(key, p), old, p);
    }
    if (change.any) this.events.changed(change.mesh);
    return resourceVersion;
  }

  /** Watches from `resourceVersion` until the server ends the stream; returns the last one seen. */
  private async watch(
    resourceVersion: string,
    onOpen: () => void,
  ): Promise<string> {
    let latest = resourceVersion;
    // The apiserver spreads its own watch timeouts; do the same so reconnections do not align.
    const timeoutSeconds = 240 + Math.floor(Math.random() * 120);
    await this.http.stream(
      this.query({
        watch: 'true',
        resourceVersion,
        allowWatchBookmarks: 'true',
        timeoutSeconds: String(timeoutSeconds),
      }),
      this.spec.metadataOnly ? ACCEPT_METADATA : ACCEPT_JSON,
      this.abort.signal,
      (timeoutSeconds + 30) * 1000,
      onOpen,
      value => {
        const event = value as WatchEvent;
        const obj = event.object;
        if (event.type === 'ERROR') {
          if (obj?.code === 410) throw new GoneError(obj.message);
          throw new KubeStatusError(obj?.code ?? 500, obj?.reason ?? '');
        }
        latest = obj?.metadata?.resourceVersion ?? latest;
        if (event.type === 'BOOKMARK') return;
        if (this.spec.metadataOnly && obj?.kind !== 'PartialObjectMetadata') {
          throw new Error(
            `the apiserver answered a metadata-only watch of ${this.spec.what} with ${obj?.kind}`,
          );
        }
        const key = keyOf(obj);
        const old = this.items.get(key);
        const p =
          event.type === 'DELETED'
            ? undefined
            : this.spec.project(obj as never);
        const change = new ChangeTracker<P>(x => this.affectsMesh(x));
        change.record(
          p === undefined ? this.remove(key) : this.put(key, p),
          old,
          p,
        );
        if (change.any) this.events.changed(change.mesh);
      },
    );
    return latest;
  }

  private affectsMesh(p: P): boolean {
    return this.spec.affectsMesh ? this.spec.affectsMesh(p) : true;
  }

  /** Stores a projection; false when it equals the one already held (no change to report). */
  private put(key: string, p: P): boolean {
    const old = this.items.get(key);
    // Projections are small plain values, so comparing their JSON is cheap and exact.
    if (old !== undefined && JSON.stringify(old) === JSON.stringify(p))
      return false;
    this.remove(key);
    this.items.set(key, p);
    if (this.spec.group) {
      const group = this.spec.group(p);
      const members = this.groups.get(group) ?? new Map<string, P>();
      members.set(key, p);
      this.groups.set(group, members);
    }
    return true;
  }

  private remove(key: string): boolean {
    const p = this.items.get(key);
    if (p === undefined) return false;
    this.items.delete(key);
    if (this.spec.group) {
      const group = this.spec.group(p);
      const members = this.groups.get(group);
      members?.delete(key);
      if (members?.size === 0) this.groups.delete(group);
    }
    return true;
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise(resolve => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}

function keyOf(obj: WatchEvent['object']): string {
  return `${obj?.metadata?.namespace ?? ''}/${obj?.metadata?.name ?? ''}`;
}
