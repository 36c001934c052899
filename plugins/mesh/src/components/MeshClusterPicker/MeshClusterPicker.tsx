import { useApi } from '@backstage/core-plugin-api';
import { FieldExtensionComponentProps } from '@backstage/plugin-scaffolder-react';
import Box from '@material-ui/core/Box';
import Button from '@material-ui/core/Button';
import Chip from '@material-ui/core/Chip';
import FormControl from '@material-ui/core/FormControl';
import FormHelperText from '@material-ui/core/FormHelperText';
import InputLabel from '@material-ui/core/InputLabel';
import ListItemText from '@material-ui/core/ListItemText';
import MenuItem from '@material-ui/core/MenuItem';
import Select from '@material-ui/core/Select';
import { MeshClusterStatus } from '@tailmesh/plugin-mesh-common';
import { ReactNode } from 'react';
import useAsyncRetry from 'react-use/esm/useAsyncRetry';
import { meshApiRef } from '../../api';
import { describeClusterError } from '../common/clusterErrors';
import { errorText } from '../common/errorText';

/** What the picker says about a cluster's sync health, next to its name. */
function syncText(cluster: MeshClusterStatus): string {
  switch (cluster.sync.state) {
    case 'ok':
      return 'reachable';
    case 'syncing':
      return 'first sync in progress';
    default:
      return cluster.sync.error
        ? `unreachable: ${describeClusterError(cluster.sync.error)}`
        : 'unreachable';
  }
}

function membershipText(cluster: MeshClusterStatus): string {
  return cluster.member ? 'member' : 'not a member';
}

/**
 * Why the picked cluster may not be what the user wants, or undefined when it is a plain
 * candidate. A member is allowed: the join is idempotent, so joining again repairs or confirms.
 */
function selectionNote(cluster: MeshClusterStatus): string | undefined {
  const notes: string[] = [];
  if (cluster.member) {
    notes.push(
      `${cluster.name} is already a member: joining it again re-applies the same configuration and changes only what has drifted.`,
    );
  }
  if (cluster.sync.state === 'error') {
    notes.push(
      `The mesh backend cannot read ${cluster.name} right now, so the join will probably fail.`,
    );
  }
  return notes.length ? notes.join(' ') : undefined;
}

/**
 * Scaffolder field: one of the configured clusters (the value is its name), each shown as member
 * or not a member and with whether the backend can read it.
 */
export function MeshClusterPicker(props: FieldExtensionComponentProps<string>) {
  const {
    onChange,
    required,
    schema: { title = 'Cluster', description },
    rawErrors,
    formData,
    idSchema,
    disabled,
  } = props;
  const meshApi = useApi(meshApiRef);
  const { loading, value, error, retry } = useAsyncRetry(
    () => meshApi.getClusters(),
    [meshApi],
  );
  const clusters = value?.clusters ?? [];
  const selected = clusters.find(cluster => cluster.name === formData);
  const id = idSchema?.$id ?? 'mesh-cluster-picker';
  const labelId = `${id}-label`;
  const hasErrors = (rawErrors?.length ?? 0) > 0;

  let helper: ReactNode = description;
  if (error) {
    helper = (
      <>
        Cannot load the clusters from the mesh backend: {errorText(error)}{' '}
        <Button size="small" onClick={retry}>
          Retry
        </Button>
      </>
    );
  } else if (!loading && clusters.length === 0) {
    helper = 'The mesh backend has no cluster configured (mesh.clusters).';
  } else if (selected) {
    helper = selectionNote(selected) ?? description;
  }

  return (
    <FormControl
      margin="normal"
      required={required}
      error={Boolean(error) || (hasErrors && !formData)}
      disabled={disabled}
      fullWidth
    >
      <InputLabel id={labelId}>{title}</InputLabel>
      <Select
        id={id}
        labelId={labelId}
        value={formData ?? ''}
        onChange={event => onChange(event.target.value as string)}
        renderValue={name => String(name)}
        // Open below the field rather than over it, so its label and helper stay in view.
        MenuProps={{
          getContentAnchorEl: null,
          anchorOrigin: { vertical: 'bottom', horizontal: 'left' },
        }}
        disabled={disabled || loading || Boolean(error)}
      >
        {clusters.map(cluster => (
          <MenuItem
            key={cluster.name}
            value={cluster.name}
            // One name with separators; the visual parts are blocks whose text would run together.
            aria-label={`${cluster.name}, ${membershipText(cluster)}, ${syncText(cluster)}`}
          >
            <ListItemText
              primary={cluster.name}
              secondary={syncText(cluster)}
            />
            <Box ml={2}>
              <Chip
                size="small"
                label={membershipText(cluster)}
                color={cluster.member ? 'primary' : 'default'}
              />
            </Box>
          </MenuItem>
        ))}
      </Select>
      {helper && <FormHelperText component="div">{helper}</FormHelperText>}
    </FormControl>
  );
}
