import { ConflictError } from '@backstage/errors';
import { mockServices } from '@backstage/backend-test-utils';
import { ChangeSet } from '../service/changes';
import { deleteAsRead, noteRemoval, readIfPresent } from './removal';

const secret = {
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: {
    name: 'istio-remote-secret-west',
    namespace: 'istio-system',
    uid: 'u-1',
  },
};
const apiError = (code: number) =>
  Object.assign(new Error(`HTTP ${code}`), { code });
const options = (dryRun: boolean) => ({
  cluster: 'east',
  logger: mockServices.logger.mock(),
  dryRun,
  fail: (e: unknown) => new Error(`wrapped: ${(e as Error).message}`),
});

describe('deleteAsRead', () => {
  it('pins the uid it read, and puts a dry run in the body, where the API server reads it', async () => {
    const call = jest.fn(async () => ({}));
    await expect(deleteAsRead(secret, call, options(true))).resolves.toBe(
      'deleted',
    );
    expect(call).toHaveBeenCalledWith({
      body: { preconditions: { uid: 'u-1' }, dryRun: ['All'] },
    });
    await deleteAsRead(secret, call, options(false));
    expect(call).toHaveBeenLastCalledWith({
      body: { preconditions: { uid: 'u-1' } },
    });
  });

  it('reports an object deleted meanwhile as absent', async () => {
    const call = jest.fn(async () => {
      throw apiError(404);
    });
    await expect(deleteAsRead(secret, call, options(false))).resolves.toBe(
      'absent',
    );
  });

  it('refuses when the name now belongs to another object', async () => {
    const call = jest.fn(async () => {
      throw apiError(409);
    });
    const e = await deleteAsRead(secret, call, options(false)).catch(x => x);
    expect(e).toBeInstanceOf(ConflictError);
    expect(e.message).toBe(
      'east: Secret istio-system/istio-remote-secret-west was replaced by another object since it was read; nothing else was deleted after it, run the action again',
    );
  });

  it('hands any other failure to fail()', async () => {
    const call = jest.fn(async () => {
      throw apiError(403);
    });
    await expect(deleteAsRead(secret, call, options(false))).rejects.toThrow(
      'wrapped: HTTP 403',
    );
  });
});

describe('readIfPresent', () => {
  it('turns 404 into undefined and rethrows the rest', async () => {
    await expect(
      readIfPresent(async () => {
        throw apiError(404);
      }),
    ).resolves.toBeUndefined();
    await expect(
      readIfPresent(async () => {
        throw apiError(500);
      }),
    ).rejects.toThrow('HTTP 500');
  });
});

describe('noteRemoval', () => {
  it('writes lines that ChangeSet counts as a change only when something was deleted', () => {
    const changes = new ChangeSet();
    noteRemoval(changes, 'east', secret, 'absent');
    expect(changes.changed).toBe(false);
    noteRemoval(changes, 'east', secret, 'deleted');
    expect(changes.changed).toBe(true);
    expect(changes.lines).toEqual([
      'east: Secret istio-system/istio-remote-secret-west absent, unchanged',
      'east: Secret istio-system/istio-remote-secret-west deleted',
    ]);
  });
});
