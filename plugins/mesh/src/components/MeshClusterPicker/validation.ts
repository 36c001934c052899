import { CustomFieldValidator } from '@backstage/plugin-scaffolder-react';
import { meshApiRef } from '../../api';
import { errorText } from '../common/errorText';

/**
 * Checks that the picked cluster is one the mesh backend knows. When the backend cannot be asked,
 * the form says so rather than letting a join start that cannot resolve its cluster.
 */
export const meshClusterPickerValidation: CustomFieldValidator<string> = async (
  value,
  validation,
  context,
) => {
  if (!value) {
    validation.addError('Pick the cluster to join.');
    return;
  }
  const meshApi = context.apiHolder.get(meshApiRef);
  if (!meshApi) {
    validation.addError(
      'The mesh plugin is not installed in this app, so the cluster cannot be checked.',
    );
    return;
  }
  let names: string[];
  try {
    names = (await meshApi.getClusters()).clusters.map(cluster => cluster.name);
  } catch (e) {
    validation.addError(
      `Cannot reach the mesh backend to check the cluster: ${errorText(e)}`,
    );
    return;
  }
  if (!names.includes(value)) {
    validation.addError(
      `"${value}" is not a configured cluster; configured: ${names.join(', ') || 'none'}.`,
    );
  }
};
