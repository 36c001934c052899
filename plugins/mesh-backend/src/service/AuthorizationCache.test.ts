import { ConfigReader } from '@backstage/config';
import {
  AuthorizationCache,
  authorizationCacheMsFromConfig,
} from './AuthorizationCache';

describe('AuthorizationCache', () => {
  let now = 1_000_000;
  const clock = () => now;
  const caller = AuthorizationCache.callerKey('Bearer token-of-alice')!;

  beforeEach(() => {
    now = 1_000_000;
  });

  it('keys callers by a hash of the header, never the token', () => {
    expect(caller).not.toContain('token-of-alice');
    expect(caller).toBe(AuthorizationCache.callerKey('Bearer token-of-alice'));
    expect(caller).not.toBe(
      AuthorizationCache.callerKey('Bearer token-of-bob'),
    );
    expect(AuthorizationCache.callerKey(undefined)).toBeUndefined();
  });

  it('answers from memory within the time to live, and asks again after it', async () => {
    const cache = new AuthorizationCache({ ttlMs: 3000, now: clock });
    const load = jest
      .fn()
      .mockResolvedValueOnce('ALLOW')
      .mockResolvedValueOnce('DENY');
    expect(await cache.remember(caller, 'permission:x', load)).toBe('ALLOW');
    now += 2999;
    expect(await cache.remember(caller, 'permission:x', load)).toBe('ALLOW');
    expect(load).toHaveBeenCalledTimes(1);
    // A permission revoked at any point is refused at most ttlMs after it was learnt.
    now += 1;
    expect(await cache.remember(caller, 'permission:x', load)).toBe('DENY');
    expect(load).toHaveBeenCalledTimes(2);
  });

  it('never keeps anything past the expiry of the credentials it was learnt with', async () => {
    const cache = new AuthorizationCache({ ttlMs: 3000, now: clock });
    const credentials = { expiresAt: new Date(now + 500) };
    const load = jest.fn(async () => credentials);
    await cache.remember(caller, 'credentials', load, c =>
      c.expiresAt.getTime(),
    );
    const decision = jest.fn(async () => 'ALLOW');
    await cache.remember(caller, 'permission:x', decision);
    now += 500;
    await cache.remember(caller, 'credentials', load, c =>
      c.expiresAt.getTime(),
    );
    await cache.remember(caller, 'permission:x', decision);
    expect(load).toHaveBeenCalledTimes(2);
    expect(decision).toHaveBeenCalledTimes(2);
  });

  it('keeps callers apart, and remembers no failure', async () => {
    const cache = new AuthorizationCache({ ttlMs: 3000, now: clock });
    const bob = AuthorizationCache.callerKey('Bearer token-of-bob');
    await cache.remember(caller, 'k', async () => 'alice');
    expect(await cache.remember(bob, 'k', async () => 'bob')).toBe('bob');
    const failing = jest
      .fn()
      .mockRejectedValueOnce(new Error('permission backend down'))
      .mockResolvedValueOnce('ALLOW');
    await expect(cache.remember(caller, 'p', failing)).rejects.toThrow(
      'permission backend down',
    );
    expect(await cache.remember(caller, 'p', failing)).toBe('ALLOW');
  });

  it('remembers nothing when off, or for a caller without a header', async () => {
    const off = new AuthorizationCache({ ttlMs: 0, now: clock });
    const load = jest.fn(async () => 'x');
    await off.remember(caller, 'k', load);
    await off.remember(caller, 'k', load);
    const on = new AuthorizationCache({ ttlMs: 3000, now: clock });
    await on.remember(undefined, 'k', load);
    await on.remember(undefined, 'k', load);
    expect(load).toHaveBeenCalledTimes(4);
    expect(off.size + on.size).toBe(0);
  });

  it('holds a bounded number of callers, the oldest going first', async () => {
    const cache = new AuthorizationCache({
      ttlMs: 3000,
      now: clock,
      maxCallers: 3,
    });
    for (const n of [1, 2, 3, 4]) {
      await cache.remember(`caller${n}`, 'k', async () => n);
    }
    expect(cache.size).toBe(3);
    const load = jest.fn(async () => 'again');
    expect(await cache.remember('caller1', 'k', load)).toBe('again');
    expect(await cache.remember('caller4', 'k', load)).toBe(4);
  });

  it('reads mesh.authorizationCacheSeconds: 3 by default, 0 to 10, a clear error otherwise', () => {
    const read = (mesh: object) =>
      authorizationCacheMsFromConfig(new ConfigReader({ mesh }));
    expect(read({})).toBe(3000);
    expect(read({ authorizationCacheSeconds: 0 })).toBe(0);
    expect(read({ authorizationCacheSeconds: 10 })).toBe(10_000);
    expect(() => read({ authorizationCacheSeconds: 60 })).toThrow(
      'mesh.authorizationCacheSeconds must be a number of seconds from 0 to 10, got 60',
    );
    expect(() => read({ authorizationCacheSeconds: -1 })).toThrow(
      /from 0 to 10/,
    );
  });

  it('shares one load among callers that ask while it is under way', async () => {
    const cache = new AuthorizationCache({ ttlMs: 3000, now: clock });
    let release: (v: string) => void = () => {};
    const load = jest.fn(
      () => new Promise<string>(resolve => (release = resolve)),
    );
    const answers = Promise.all(
      Array.from({ length: 50 }, () => cache.remember(caller, 'p', load)),
    );
    release('ALLOW');
    expect(await answers).toEqual(Array(50).fill('ALLOW'));
    expect(load).toHaveBeenCalledTimes(1);
  });
});
