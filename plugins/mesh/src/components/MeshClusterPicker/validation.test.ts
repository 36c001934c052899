import { ApiHolder, ApiRef } from '@backstage/core-plugin-api';
import { MeshApi, meshApiRef } from '../../api';
import { fakeMeshApi, healthyClusters } from '../../testUtils/meshFixtures';
import { meshClusterPickerValidation } from './validation';

type FieldValidation = Parameters<typeof meshClusterPickerValidation>[1];

async function validate(value: string, meshApi: MeshApi | undefined) {
  const errors: string[] = [];
  const validation = {
    addError: (message: string) => errors.push(message),
  } as unknown as FieldValidation;
  const apiHolder: ApiHolder = {
    get: <T>(ref: ApiRef<T>) =>
      ref.id === meshApiRef.id ? (meshApi as unknown as T) : undefined,
  };
  await meshClusterPickerValidation(value, validation, {
    apiHolder,
    formData: {},
    schema: {},
  });
  return errors;
}

describe('meshClusterPickerValidation', () => {
  const meshApi = fakeMeshApi({
    getClusters: jest.fn(async () => healthyClusters()),
  });

  it('accepts a configured cluster, member or not', async () => {
    await expect(validate('cluster1', meshApi)).resolves.toEqual([]);
    await expect(validate('cluster4', meshApi)).resolves.toEqual([]);
  });

  it('requires a cluster', async () => {
    await expect(validate('', meshApi)).resolves.toEqual([
      'Pick the cluster to join.',
    ]);
  });

  it('rejects a cluster the backend does not know, naming the configured ones', async () => {
    await expect(validate('cluster9', meshApi)).resolves.toEqual([
      '"cluster9" is not a configured cluster; configured: cluster1, cluster2, cluster3, cluster4.',
    ]);
  });

  it('says when the mesh backend cannot be reached', async () => {
    const down = fakeMeshApi({
      getClusters: jest.fn(async () => {
        throw new Error('Failed to fetch');
      }),
    });
    await expect(validate('cluster1', down)).resolves.toEqual([
      'Cannot reach the mesh backend to check the cluster: Failed to fetch',
    ]);
  });

  it('says when the mesh plugin is not installed', async () => {
    await expect(validate('cluster1', undefined)).resolves.toEqual([
      'The mesh plugin is not installed in this app, so the cluster cannot be checked.',
    ]);
  });
});
