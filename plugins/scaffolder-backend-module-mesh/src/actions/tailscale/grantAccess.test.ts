import { ConfigReader } from '@backstage/config';
import { ConflictError, InputError } from '@backstage/errors';
import { createMockActionContext } from '@backstage/plugin-scaffolder-node-test-utils';
import { PolicyChangedError, PolicyFile } from '@tailmesh/plugin-mesh-node';
import { MeshActionDeps } from '../../service/MeshActionDeps';
import {
  createTailscaleGrantAccessAction,
  PolicyStore,
  updatePolicy,
  tagOwnerValidator,
  validateTagOwner,
} from './grantAccess';
import { addMeshPolicy, meshPolicy } from './policyEdit';

const ADMIN_FILE = '{\n\t// kept\n\t"tagOwners": {},\n\t"grants": [],\n}\n';

/** An in-memory policy file with ETags; `interfere` writes to it right after each read. */
class FakeStore implements PolicyStore {
  writes = 0;
  version = 0;
  interfere: Array<(text: string) => string> = [];
  problems: string[] = [];
  constructor(public text: string) {}
  private file(): PolicyFile {
    return { text: this.text, etag: `"v${this.version}"` };
  }
  async getPolicy() {
    const file = this.file();
    const change = this.interfere.shift();
    if (change) {
      this.text = change(this.text);
      this.version++;
    }
    return file;
  }
  async validatePolicy() {
    return { errors: this.problems, warnings: [] };
  }
  async setPolicy(text: string, etag: string) {
    if (etag !== `"v${this.version}"`) throw new PolicyChangedError('changed');
    this.text = text;
    this.version++;
    this.writes++;
    return this.file();
  }
}

const logger = createMockActionContext().logger;
const edit =
  (owners = ['autogroup:admin']) =>
  (text: string) =>
    addMeshPolicy(text, meshPolicy(owners));

describe('updatePolicy', () => {
  it('writes the edit with the ETag it read', async () => {
    const store = new FakeStore(ADMIN_FILE);
    const result = await updatePolicy(store, edit(), { dryRun: false, logger });
    expect(store.writes).toBe(1);
    expect(store.text).toContain('// kept');
    // Four tag owners (tag:tailmesh-egress among them) and the two grants.
    expect(result.changes).toHaveLength(6);
    expect(result.changes).toContain(
      'tagOwners: added tag:tailmesh-egress owned by tag:k8s-operator',
    );
    expect(store.text).toContain(
      '{"src": ["tag:tailmesh-egress"], "dst": ["tag:istio-eastwestgateway"], "ip": ["tcp:15443"]}',
    );
    expect(result.diff).toMatch(/^--- policy.hujson \(current\)\n\+\+\+ /);
  });

  it('re-reads and re-applies the edit when someone else wrote in between', async () => {
    const store = new FakeStore(ADMIN_FILE);
    store.interfere.push(text =>
      text.replace('// kept', '// kept\n\t// an admin was here'),
    );
    await updatePolicy(store, edit(), { dryRun: false, logger });
    expect(store.writes).toBe(1);
    expect(store.text).toContain('// an admin was here');
    expect(store.text).toContain('"tag:k8s-operator"');
  });

  it('gives up with a clear error when the file keeps changing', async () => {
    const store = new FakeStore(ADMIN_FILE);
    for (let i = 0; i < 3; i++) store.interfere.push(text => `${text}\n`);
    await expect(
      updatePolicy(store, edit(), { dryRun: false, logger, maxAttempts: 3 }),
    ).rejects.toThrow(ConflictError);
    expect(store.writes).toBe(0);
  });

  it('writes nothing when everything is there, or in a dry run, or when Tailscale rejects the result', async () => {
    const done = new FakeStore(edit()(ADMIN_FILE).text);
    expect(await updatePolicy(done, edit(), { dryRun: false, logger })).toEqual(
      { changes: [], diff: '' },
    );

    const dry = new FakeStore(ADMIN_FILE);
    const preview = await updatePolicy(dry, edit(), { dryRun: true, logger });
    expect(preview.diff).toContain('+\t\t"tag:k8s": ["tag:k8s-operator"]');
    expect(dry.writes).toBe(0);

    const rejected = new FakeStore(ADMIN_FILE);
    rejected.problems = ['tagOwners: nope'];
    await expect(
      updatePolicy(rejected, edit(), { dryRun: false, logger }),
    ).rejects.toThrow(InputError);
    expect(rejected.writes).toBe(0);
  });

  it('reports a malformed file without writing', async () => {
    const store = new FakeStore('{"grants": [,]}');
    await expect(
      updatePolicy(store, edit(), { dryRun: false, logger }),
    ).rejects.toThrow(/line 1, column 13/);
    expect(store.writes).toBe(0);
  });
});

describe('mesh:tailscale:grant-access inputs', () => {
  const deps = {
    config: new ConfigReader({
      mesh: { tailscale: { apiUrl: 'http://127.0.0.1:9' } },
    }),
  } as unknown as MeshActionDeps;
  const action = createTailscaleGrantAccessAction(deps);

  it('accepts tag owners Tailscale knows and rejects anything else', () => {
    for (const ok of [
      'autogroup:admin',
      'group:platform',
      'tag:ci',
      'alice@example.com',
    ])
      expect(validateTagOwner(ok)).toBeUndefined();
    for (const bad of [
      'admin',
      'tag:',
      'group: x',
      '*',
      'group:a"b',
      'group:ops\n"tag:x"',
      'eve@example',
      'a{b}@example.com',
    ])
      expect(validateTagOwner(bad)).toBeDefined();
  });

  it('lets only tags and the configured allow-list own the mesh tags, never every user', () => {
    const byDefault = tagOwnerValidator(new ConfigReader({}));
    expect(byDefault('tag:ci')).toBeUndefined();
    expect(byDefault('autogroup:admin')).toBeUndefined();
    expect(byDefault('group:platform')).toBe(
      'must be a tag, or an owner listed in mesh.tailscale.tagOwnerAllowList (autogroup:admin)',
    );
    expect(byDefault('autogroup:member')).toMatch(/every user of the tailnet/);
    const listed = tagOwnerValidator(
      new ConfigReader({
        mesh: { tailscale: { tagOwnerAllowList: ['group:platform'] } },
      }),
    );
    expect(listed('group:platform')).toBeUndefined();
    expect(listed('autogroup:admin')).toMatch(/must be a tag/);
    expect(() =>
      tagOwnerValidator(
        new ConfigReader({
          mesh: { tailscale: { tagOwnerAllowList: ['autogroup:member'] } },
        }),
      ),
    ).toThrow(
      'mesh.tailscale.tagOwnerAllowList lists "autogroup:member", which stands for every user of the tailnet',
    );
  });

  it('rejects a bad owner, then a missing OAuth client, before calling Tailscale', async () => {
    await expect(
      action.handler(
        createMockActionContext({ input: { owners: ['root'] } }) as never,
      ),
    ).rejects.toThrow(/Invalid input: owners "root"/);
    await expect(
      action.handler(createMockActionContext({ input: {} }) as never),
    ).rejects.toThrow(/No Tailscale OAuth client/);
  });
});
