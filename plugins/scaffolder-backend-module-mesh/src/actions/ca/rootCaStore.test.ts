import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { mockServices } from '@backstage/backend-test-utils';
import { CaPem, generateRootCa } from './certificates';
import { FileRootCaStore } from './rootCaStore';

jest.setTimeout(60_000);

describe('FileRootCaStore', () => {
  const logger = mockServices.logger.mock();
  let dir: string;
  let a: CaPem;
  let b: CaPem;

  beforeAll(async () => {
    [a, b] = await Promise.all([generateRootCa(), generateRootCa()]);
  });
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tailmesh-ca-store-'));
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('reads nothing from a missing directory, creates it 0700 with 0600 files, and never overwrites', async () => {
    const store = new FileRootCaStore(path.join(dir, 'mesh', 'root'));
    expect(await store.read()).toBeUndefined();
    expect(await store.createIfAbsent(a, logger)).toBe(true);
    expect(await store.read()).toEqual(a);
    expect((await fs.stat(path.join(dir, 'mesh', 'root'))).mode & 0o777).toBe(
      0o700,
    );
    expect(
      (await fs.stat(path.join(dir, 'mesh', 'root', 'root-key.pem'))).mode &
        0o777,
    ).toBe(0o600);
    expect(
      (await fs.stat(path.join(dir, 'mesh', 'root', 'root-cert.pem'))).mode &
        0o777,
    ).toBe(0o600);

    expect(await store.createIfAbsent(b, logger)).toBe(false);
    expect(await store.read()).toEqual(a);
    expect(await fs.readdir(path.join(dir, 'mesh', 'root'))).toEqual([
      'root-cert.pem',
      'root-key.pem',
    ]);
  });

  it('lets exactly one of two concurrent creators win', async () => {
    const store = new FileRootCaStore(dir);
    const results = await Promise.all([
      store.createIfAbsent(a, logger),
      store.createIfAbsent(b, logger),
    ]);
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await store.read()).toEqual(results[0] ? a : b);
  });

  it('calls an incomplete store an error instead of making a new root', async () => {
    await fs.writeFile(path.join(dir, 'root-cert.pem'), a.certPem, {
      mode: 0o600,
    });
    await expect(new FileRootCaStore(dir).read()).rejects.toThrow(
      `root CA directory ${dir} is incomplete: it has root-cert.pem but no root-key.pem`,
    );
  });

  it('refuses a root key others can read', async () => {
    await fs.writeFile(path.join(dir, 'root-cert.pem'), a.certPem, {
      mode: 0o600,
    });
    await fs.writeFile(path.join(dir, 'root-key.pem'), a.keyPem);
    await fs.chmod(path.join(dir, 'root-key.pem'), 0o644);
    await expect(new FileRootCaStore(dir).read()).rejects.toThrow(
      `root-key.pem in root CA directory ${dir} is accessible to group or others (mode 0644); chmod 600 it`,
    );
  });
});
