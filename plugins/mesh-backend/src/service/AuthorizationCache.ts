import { createHash } from 'node:crypto';
import { Config } from '@backstage/config';

/** `mesh.authorizationCacheSeconds` when not configured. */
export const DEFAULT_AUTHORIZATION_CACHE_SECONDS = 3;
/** The longest a decision may be reused: a revoked permission must be refused soon after. */
export const MAX_AUTHORIZATION_CACHE_SECONDS = 10;
/** Callers remembered at once; the oldest go first. */
const MAX_CALLERS = 10_000;

/** `mesh.authorizationCacheSeconds` in milliseconds (0 turns the cache off). */
export function authorizationCacheMsFromConfig(config: Config): number {
  const seconds =
    config.getOptionalNumber('mesh.authorizationCacheSeconds') ??
    DEFAULT_AUTHORIZATION_CACHE_SECONDS;
  if (
    !Number.isFinite(seconds) ||
    seconds < 0 ||
    seconds > MAX_AUTHORIZATION_CACHE_SECONDS
  ) {
    throw new Error(
      `mesh.authorizationCacheSeconds must be a number of seconds from 0 to ${MAX_AUTHORIZATION_CACHE_SECONDS}, got ${seconds}`,
    );
  }
  return seconds * 1000;
}

/** Remembers `load()`'s result under `key` for the caller it was made for. */
export type Remember = <T>(key: string, load: () => Promise<T>) => Promise<T>;

/** Remembers nothing. */
export const rememberNothing: Remember = (_key, load) => load();

interface CallerEntry {
  /** When everything learnt for this caller is forgotten. */
  expiresAt: number;
  /** Answers, settled or still loading. */
  values: Map<string, Promise<unknown>>;
}

/**
 * What the mesh routes learnt about one caller (who the token stands for, the permission
 * decisions, which catalog entities they see), kept for a few seconds, so that a browser polling
 * several open views, or many users on one page, do not pay the token check, the permission
 * round trip and the catalog lookup on every request.
 *
 * Callers are told apart by a SHA-256 of their `Authorization` header: the token itself is never
 * kept. An entry lives `ttlMs` from when it was first learnt, and never past the expiry of the
 * credentials it was learnt with, so a revoked permission or a hidden entity is refused at most
 * `ttlMs` later. Failures (a bad token, a permission backend that is down) are not remembered.
 */
export class AuthorizationCache {
  private readonly callers = new Map<string, CallerEntry>();
  private readonly now: () => number;

  constructor(
    private readonly options: {
      ttlMs: number;
      now?: () => number;
      maxCallers?: number;
    },
  ) {
    this.now = options.now ?? Date.now;
  }

  /** The key of a caller: a hash of the header, or undefined when there is none to key on. */
  static callerKey(authorization: string | undefined): string | undefined {
    if (!authorization) return undefined;
    return createHash('sha256').update(authorization).digest('base64url');
  }

  /**
   * `load()`'s result for this caller and `key`, from memory when learnt less than `ttlMs` ago.
   * Callers that ask while a load is under way share it: a page of many views, or many requests
   * at once after an entry expired, cost one token check, one permission round trip. `notAfter`
   * (ms since the epoch, of the loaded value, e.g. the credentials' expiry) shortens how long the
   * caller's entry lives.
   */
  async remember<T>(
    caller: string | undefined,
    key: string,
    load: () => Promise<T>,
    notAfter?: (value: T) => number | undefined,
  ): Promise<T> {
    if (!caller || this.options.ttlMs <= 0) return load();
    const now = this.now();
    let entry = this.callers.get(caller);
    if (!entry || entry.expiresAt <= now) {
      entry = { expiresAt: now + this.options.ttlMs, values: new Map() };
      this.evictFor(caller);
      this.callers.set(caller, entry);
    }
    const known = entry.values.get(key);
    if (known) return known as Promise<T>;
    const loading = load();
    const { values } = entry;
    values.set(key, loading);
    try {
      const value = await loading;
      const limit = notAfter?.(value);
      if (limit !== undefined && limit < entry.expiresAt)
        entry.expiresAt = limit;
      return value;
    } catch (e) {
      // A failure is not an answer: the next request asks again.
      if (values.get(key) === loading) values.delete(key);
      throw e;
    }
  }

  /** `remember` for one caller: what the status service's catalog lookups are handed. */
  forCaller(caller: string | undefined): Remember {
    return (key, load) => this.remember(caller, key, load);
  }

  /** Callers remembered right now (for tests and the benchmark). */
  get size(): number {
    return this.callers.size;
  }

  private evictFor(caller: string): void {
    this.callers.delete(caller);
    const max = this.options.maxCallers ?? MAX_CALLERS;
    if (this.callers.size < max) return;
    const now = this.now();
    for (const [key, entry] of this.callers) {
      if (entry.expiresAt <= now) this.callers.delete(key);
    }
    // Still full: the oldest (Map keeps insertion order) go.
    for (const key of this.callers.keys()) {
      if (this.callers.size < max) break;
      this.callers.delete(key);
    }
  }
}
