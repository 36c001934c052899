import { LoggerService } from '@backstage/backend-plugin-api';
import { Config } from '@backstage/config';
import { InputError } from '@backstage/errors';
import { TailnetPolicyStatus } from '@tailmesh/plugin-mesh-common';
import {
  PolicyFile,
  TailscaleClient,
  parsePolicyFile,
} from '@tailmesh/plugin-mesh-node';

const PENDING_RETRY_MS = 250;

/** Default of `mesh.tailscale.policyPollIntervalSeconds`. */
export const DEFAULT_POLICY_POLL_INTERVAL_SECONDS = 60;

/** The tailnet policy file as the audit sees it: the last file read, and how reading goes. */
export interface TailnetPolicySource {
  /** The last policy file read and parsed; undefined until one was. */
  policy(): unknown;
  status(): TailnetPolicyStatus;
  /** Called after the policy or the status's state changed; returns a function to unsubscribe. */
  onChange(listener: () => void): () => void;
}

export interface TailnetPolicyWatcherOptions {
  /**
   * Where the file is read: the Tailscale API, or the copy one replica stored for all
   * (SharedTailnetPolicy), which answers undefined until it has one and says when it was read.
   * Undefined when no Tailscale client is configured: the status says `not-configured`.
   */
  client?: {
    getPolicy(): Promise<(PolicyFile & { readAt?: string }) | undefined>;
  };
  intervalMs: number;
  logger: LoggerService;
  /** Values that must never appear in a status or a log line (the OAuth client secret). */
  secrets?: string[];
  now?: () => Date;
}

/** A read error in words: fetch's cause (ECONNREFUSED, a TLS error) included. */
export function describeReadError(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  // fetch says only "fetch failed"; the reason (ECONNREFUSED, a TLS error) is in its cause.
  const cause = (e as { cause?: { code?: unknown; message?: unknown } })?.cause;
  const detail = [cause?.code, cause?.message].find(
    (d): d is string => typeof d === 'string',
  );
  return detail ? `${message} (${detail})` : message;
}

/**
 * Reads the tailnet policy file in the background, every `intervalMs`, so the audit can judge its
 * grants while requests are answered from memory. A failed read is a status, never an exception:
 * the last file read stays in effect, and the status says why reading fails, in words that hold
 * no credential.
 */
export class TailnetPolicyWatcher implements TailnetPolicySource {
  private current?: { etag: string; text: string; value: unknown };
  private state: TailnetPolicyStatus;
  private readonly listeners = new Set<() => void>();
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private started = false;
  private readonly now: () => Date;

  /**
   * What the configuration says: the Tailscale client (none without `mesh.tailscale.oauth`), the
   * interval and the secrets to keep out of messages. Throws on a bad interval.
   */
  static settingsFromConfig(config: Config): {
    client?: TailscaleClient;
    intervalMs: number;
    secrets: string[];
  } {
    const seconds =
      config.getOptionalNumber('mesh.tailscale.policyPollIntervalSeconds') ??
      DEFAULT_POLICY_POLL_INTERVAL_SECONDS;
    if (!(seconds > 0)) {
      throw new InputError(
        `mesh.tailscale.policyPollIntervalSeconds must be a positive number of seconds, got ${seconds}`,
      );
    }
    const configured = config.has('mesh.tailscale.oauth');
    return {
      ...(configured ? { client: TailscaleClient.fromConfig(config) } : {}),
      intervalMs: seconds * 1000,
      secrets: configured
        ? [config.getString('mesh.tailscale.oauth.clientSecret')]
        : [],
    };
  }

  /** A watcher that reads the Tailscale API itself (one process: the tests, a single replica). */
  static fromConfig(
    config: Config,
    options: { logger: LoggerService },
  ): TailnetPolicyWatcher {
    return new TailnetPolicyWatcher({
      ...TailnetPolicyWatcher.settingsFromConfig(config),
      logger: options.logger,
    });
  }

  constructor(private readonly options: TailnetPolicyWatcherOptions) {
    this.now = options.now ?? (() => new Date());
    this.state = { state: options.client ? 'pending' : 'not-configured' };
  }

  /** Reads at once, then every interval; does nothing without a client. */
  start(): void {
    if (this.started || !this.options.client) return;
    this.started = true;
    this.schedule(0);
  }

  /** Stops polling and waits for a read under way. */
  async stop(): Promise<void> {
    this.started = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  policy(): unknown {
    return this.current?.value;
  }

  status(): TailnetPolicyStatus {
    return { ...this.state };
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** One read of the policy file; never rejects. */
  async refresh(): Promise<void> {
    const { client } = this.options;
    if (!client) return;
    let file: (PolicyFile & { readAt?: string }) | undefined;
    try {
      file = await client.getPolicy();
    } catch (e) {
      this.failed(
        `Reading the tailnet policy file failed: ${describeReadError(e)}`,
      );
      return;
    }
    if (!file) return; // nothing read yet: still pending
    let changed = false;
    if (file.etag !== this.current?.etag || file.text !== this.current.text) {
      let value: unknown;
      try {
        value = parsePolicyFile(file.text);
      } catch (e) {
        this.failed(describeReadError(e));
        return;
      }
      this.current = { etag: file.etag, text: file.text, value };
      changed = true;
    }
    const before = this.state.state;
    this.state = {
      state: 'ok',
      lastReadAt: file.readAt ?? this.now().toISOString(),
    };
    if (before === 'error') {
      this.options.logger.info('Reading the tailnet policy file works again');
    }
    if (changed || before !== 'ok') this.notify();
  }

  private failed(reason: string): void {
    const error = this.redact(reason);
    const before = this.state;
    this.state = {
      state: 'error',
      error,
      ...(before.lastReadAt ? { lastReadAt: before.lastReadAt } : {}),
    };
    if (before.error !== error) {
      this.options.logger.warn(error);
      this.notify();
    }
  }

  private redact(text: string): string {
    return (this.options.secrets ?? [])
      .filter(s => s.length > 0)
      .reduce((out, secret) => out.split(secret).join('***'), text);
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.refresh().finally(() => {
        this.running = undefined;
        // Until a first file is read (a shared copy not stored yet), ask again soon: the audit
        // judges nothing while the policy is pending.
        const pending = this.state.state === 'pending';
        if (this.started) {
          this.schedule(
            pending
              ? Math.min(this.options.intervalMs, PENDING_RETRY_MS)
              : this.options.intervalMs,
          );
        }
      });
    }, delayMs);
  }

  private notify(): void {
    for (const listener of this.listeners) {
      try {
        listener();
      } catch (e) {
        this.options.logger.error(
          `A tailnet policy listener failed: ${e instanceof Error ? e.message : String(e)}`,
        );
      }
    }
  }
}
