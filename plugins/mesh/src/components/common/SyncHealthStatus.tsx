import Tooltip from '@material-ui/core/Tooltip';
import Typography from '@material-ui/core/Typography';
import { ClusterSyncHealth } from '@tailmesh/plugin-mesh-common';
import { ReactNode } from 'react';
import { describeClusterError } from './clusterErrors';
import { formatAge } from './formatAge';
import { StatusError, StatusOK, StatusPending } from './status';

function statusText(sync: ClusterSyncHealth): string {
  // One string per status: the status components lay out their children as flex items, which
  // would swallow the spaces between separate text and elements.
  const age = sync.lastSyncAt ? formatAge(sync.lastSyncAt) : undefined;
  switch (sync.state) {
    case 'ok':
      return age ? `synced ${age}` : 'synced';
    case 'syncing':
      return 'first sync in progress';
    default:
      return age
        ? `sync failing, last synced ${age}`
        : 'sync failing, never synced';
  }
}

/**
 * Whether the backend's view of a cluster is current: when it last read the cluster (the exact
 * time on hover) and, when the latest read failed, why, in words.
 */
export function SyncHealthStatus(props: { sync: ClusterSyncHealth }) {
  const { sync } = props;
  const text = statusText(sync);
  let status: ReactNode;
  if (sync.state === 'ok') status = <StatusOK>{text}</StatusOK>;
  else if (sync.state === 'syncing')
    status = <StatusPending>{text}</StatusPending>;
  else status = <StatusError>{text}</StatusError>;
  return (
    <>
      <Tooltip
        title={
          sync.lastSyncAt
            ? `Last successful read: ${new Date(sync.lastSyncAt).toLocaleString()}`
            : 'Never read successfully'
        }
      >
        <span>{status}</span>
      </Tooltip>
      {sync.state === 'error' && sync.error && (
        <Typography variant="caption" component="div" color="textSecondary">
          {describeClusterError(sync.error)}
        </Typography>
      )}
    </>
  );
}
