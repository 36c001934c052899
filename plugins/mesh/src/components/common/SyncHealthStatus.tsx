import Tooltip from '@material-ui/core/Tooltip';
import Typography from '@material-ui/core/Typography';
import { ClusterSyncHealth } from '@tailmesh/plugin-mesh-common';
import React from 'react';
import { describeClusterError } from './clusterErrors';
import { formatAge } from './formatAge';
import { StatusError, StatusOK, StatusPending } from './status';

/**
 * Whether the backend's view of a cluster is current: when it last read the cluster and, when the
 * latest read failed, why, in words.
 */
export function SyncHealthStatus(props: { sync: ClusterSyncHealth }) {
  const { sync } = props;
  const lastSync = sync.lastSyncAt ? (
    <Tooltip title={new Date(sync.lastSyncAt).toLocaleString()}>
      <span>{formatAge(sync.lastSyncAt)}</span>
    </Tooltip>
  ) : undefined;
  switch (sync.state) {
    case 'ok':
      return <StatusOK>synced {lastSync}</StatusOK>;
    case 'syncing':
      return <StatusPending>first sync in progress</StatusPending>;
    default:
      return (
        <>
          <StatusError>
            sync failing
            {lastSync ? <>, last synced {lastSync}</> : ', never synced'}
          </StatusError>
          {sync.error && (
            <Typography variant="caption" component="div" color="textSecondary">
              {describeClusterError(sync.error)}
            </Typography>
          )}
        </>
      );
  }
}
