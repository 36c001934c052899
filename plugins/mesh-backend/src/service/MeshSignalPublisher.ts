import { LoggerService } from '@backstage/backend-plugin-api';
import { SignalsService } from '@backstage/plugin-signals-node';
import { MESH_SIGNAL_CHANNEL, MeshSignal } from '@tailmesh/plugin-mesh-common';
import { MeshStateSource } from './cache/MeshStateSource';
import { TailnetPolicySource } from './TailnetPolicyWatcher';

/** Changes closer together than this reach browsers as one signal. */
export const DEFAULT_SIGNAL_INTERVAL_MS = 250;

export interface MeshSignalPublisherOptions {
  state: Pick<MeshStateSource, 'onChange'>;
  policy?: Pick<TailnetPolicySource, 'onChange'>;
  signals: Pick<SignalsService, 'publish'>;
  logger: LoggerService;
  intervalMs?: number;
}

/**
 * Tells every open mesh view, through Backstage's signals, that the state it shows changed: a
 * broadcast on {@link MESH_SIGNAL_CHANNEL} at most every `intervalMs` (the first change of a
 * quiet period goes out at once, later ones are gathered), so a rollout that moves hundreds of
 * EndpointSlices costs one refresh per view per interval, and a quiet mesh costs nothing. The
 * message says only whether the audit's inputs changed; each view then reads its route with the
 * user's own credentials, so nothing goes to a user that the permissions would not show them.
 * With several replicas every one publishes what its own watches see (each browser is connected
 * to one replica's signals); a view may then ask twice for one change.
 */
export class MeshSignalPublisher {
  private unsubscribe: Array<() => void> = [];
  private pending?: MeshSignal;
  private timer?: NodeJS.Timeout;
  private lastAt = 0;

  constructor(private readonly options: MeshSignalPublisherOptions) {}

  start(): void {
    if (this.unsubscribe.length) return;
    this.unsubscribe = [
      this.options.state.onChange(change =>
        this.changed(change.meshClusters.length > 0),
      ),
      ...(this.options.policy
        ? [this.options.policy.onChange(() => this.changed(true))]
        : []),
    ];
  }

  stop(): void {
    for (const u of this.unsubscribe) u();
    this.unsubscribe = [];
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = undefined;
  }

  private changed(mesh: boolean): void {
    this.pending = { mesh: mesh || (this.pending?.mesh ?? false) };
    if (this.timer) return;
    const interval = this.options.intervalMs ?? DEFAULT_SIGNAL_INTERVAL_MS;
    const wait = Math.max(0, this.lastAt + interval - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const message = this.pending;
      this.pending = undefined;
      if (!message) return;
      this.lastAt = Date.now();
      this.options.signals
        .publish<MeshSignal>({
          recipients: { type: 'broadcast' },
          channel: MESH_SIGNAL_CHANNEL,
          message,
        })
        .catch(e =>
          this.options.logger.warn(
            `Publishing a mesh change signal failed: ${e instanceof Error ? e.message : String(e)}`,
          ),
        );
    }, wait);
  }
}
