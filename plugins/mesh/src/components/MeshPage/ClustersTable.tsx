import { InfoCard } from '@backstage/core-components';
import Table from '@material-ui/core/Table';
import TableBody from '@material-ui/core/TableBody';
import TableCell from '@material-ui/core/TableCell';
import TableHead from '@material-ui/core/TableHead';
import TableRow from '@material-ui/core/TableRow';
import Tooltip from '@material-ui/core/Tooltip';
import Typography from '@material-ui/core/Typography';
import { makeStyles } from '@material-ui/core/styles';
import { MeshClusterStatus } from '@tailmesh/plugin-mesh-common';
import { useEffect, useRef } from 'react';
import { SyncHealthStatus } from '../common/SyncHealthStatus';
import { StatusError, StatusOK, StatusPending } from '../common/status';
import { RowHeaderCell } from '../common/RowHeaderCell';
import { useListFilter } from '../common/ListFilter';
import { CARD_HEADING } from '../common/cardHeading';

/** Colon-separated hex pairs shown before the ellipsis of a shortened fingerprint. */
const FINGERPRINT_SHOWN_PAIRS = 4;

export function shortFingerprint(fingerprint: string): string {
  const pairs = fingerprint.split(':');
  return pairs.length <= FINGERPRINT_SHOWN_PAIRS
    ? fingerprint
    : `${pairs.slice(0, FINGERPRINT_SHOWN_PAIRS).join(':')}:…`;
}

const useStyles = makeStyles(theme => ({
  empty: { padding: theme.spacing(2) },
  // Names, states and fingerprints read badly when broken across lines; long text wraps instead.
  nowrap: { whiteSpace: 'nowrap' },
  // Room for a status line or an error sentence, which the theme would otherwise break mid-word.
  istiod: { minWidth: 170 },
  gateway: { minWidth: 180 },
  sync: { minWidth: 220 },
  // Narrow screens scroll the table sideways instead of clipping its last columns.
  scroll: { overflowX: 'auto' },
}));

function IstiodCell(props: { cluster: MeshClusterStatus }) {
  const { istiod } = props.cluster;
  if (!istiod.installed) return <>not installed</>;
  const replicas = `${istiod.replicas.ready}/${istiod.replicas.desired} replicas`;
  const version = istiod.version ?? 'unknown version';
  return istiod.ready ? (
    <StatusOK>
      {version}, ready ({replicas})
    </StatusOK>
  ) : (
    <StatusError>
      {version}, not ready ({replicas})
    </StatusError>
  );
}

function GatewayCell(props: { cluster: MeshClusterStatus }) {
  const { gateway } = props.cluster;
  const classes = useStyles();
  if (!gateway.address) {
    return gateway.ready ? (
      <StatusPending>ready, no tailnet address yet</StatusPending>
    ) : (
      <>none</>
    );
  }
  return (
    <>
      <div className={classes.nowrap}>
        {gateway.ready ? (
          <StatusOK>{gateway.address}</StatusOK>
        ) : (
          <StatusError>{`${gateway.address}, not ready`}</StatusError>
        )}
      </div>
      {gateway.hostname && (
        <Typography variant="caption" component="div" color="textSecondary">
          {gateway.hostname}
        </Typography>
      )}
    </>
  );
}

function OperatorCell(props: { cluster: MeshClusterStatus }) {
  const { operator } = props.cluster;
  if (!operator.installed) return <>not installed</>;
  return operator.ready ? (
    <StatusOK>ready</StatusOK>
  ) : (
    <StatusError>not ready</StatusError>
  );
}

/**
 * Up to this many clusters the table lists them all; a larger fleet gets a name filter and, by
 * default, only the clusters that need attention (a hundred rows would bury the rest of the page).
 */
export const FULL_CLUSTER_TABLE_MAX = 12;

/**
 * Whether a cluster needs a look: the backend cannot read it (or has not yet), a finding names it,
 * or, as a member, its istiod, gateway or operator is not ready.
 */
export function clusterNeedsAttention(
  cluster: MeshClusterStatus,
  namedByFindings: ReadonlySet<string>,
): boolean {
  return (
    cluster.sync.state !== 'ok' ||
    namedByFindings.has(cluster.name) ||
    (cluster.member &&
      (!cluster.istiod.ready ||
        !cluster.gateway.ready ||
        !cluster.operator.ready))
  );
}

/**
 * Every configured cluster, member or not: istiod, east-west gateway, Tailscale operator, the
 * mesh root it trusts and whether the backend's view of it is current.
 */
export function ClustersTable(props: {
  clusters: MeshClusterStatus[];
  /** A cluster to highlight, e.g. the one a join template just worked on. */
  highlight?: string;
  /** Clusters named by an error or warning finding (the health summary's). */
  namedByFindings?: ReadonlyArray<string>;
}) {
  const { highlight } = props;
  const classes = useStyles();
  const list = useListFilter({
    id: 'mesh-clusters-filter',
    filterLabel: 'Filter clusters',
    onlyProblemsLabel: 'Only clusters that need attention',
  });
  const large = props.clusters.length > FULL_CLUSTER_TABLE_MAX;
  const named = new Set(props.namedByFindings ?? []);
  // The highlighted cluster is always listed: the join template's link points at it.
  const clusters = large
    ? props.clusters.filter(
        c =>
          c.name === highlight ||
          (list.matches(c.name) &&
            (!list.onlyProblems || clusterNeedsAttention(c, named))),
      )
    : props.clusters;
  const highlightedRow = useRef<HTMLTableRowElement>(null);
  // Brought into view once per highlight, not on every refresh, so polling never moves the page.
  useEffect(() => {
    highlightedRow.current?.scrollIntoView?.({ block: 'center' });
  }, [highlight]);
  return (
    <InfoCard
      titleTypographyProps={CARD_HEADING}
      title="Clusters"
      subheader={
        large
          ? `${clusters.length} of ${props.clusters.length} clusters shown`
          : undefined
      }
      noPadding
    >
      {large && list.controls}
      {large && clusters.length === 0 && (
        <Typography variant="body2" className={classes.empty}>
          {list.showsEveryProblem
            ? `All ${props.clusters.length} clusters are readable, and every member's istiod, gateway and operator is ready.`
            : 'No cluster matches.'}
        </Typography>
      )}
      <div className={classes.scroll}>
        <Table size="small" aria-label="Clusters">
          <TableHead>
            <TableRow>
              <TableCell>Cluster</TableCell>
              <TableCell>Member</TableCell>
              <TableCell>Network</TableCell>
              <TableCell>istiod</TableCell>
              <TableCell>East-west gateway</TableCell>
              <TableCell>Tailscale operator</TableCell>
              <TableCell>Root fingerprint</TableCell>
              <TableCell>Sync</TableCell>
            </TableRow>
          </TableHead>
          <TableBody>
            {clusters.map(cluster => {
              const highlighted = cluster.name === highlight;
              return (
                <TableRow
                  key={cluster.name}
                  ref={highlighted ? highlightedRow : undefined}
                  selected={highlighted}
                  aria-current={highlighted ? 'true' : undefined}
                >
                  <RowHeaderCell>{cluster.name}</RowHeaderCell>
                  <TableCell className={classes.nowrap}>
                    {cluster.member ? (
                      <StatusOK>member</StatusOK>
                    ) : (
                      <StatusPending>not a member</StatusPending>
                    )}
                  </TableCell>
                  <TableCell className={classes.nowrap}>
                    {cluster.network || '-'}
                  </TableCell>
                  <TableCell className={classes.istiod}>
                    <IstiodCell cluster={cluster} />
                  </TableCell>
                  <TableCell className={classes.gateway}>
                    <GatewayCell cluster={cluster} />
                  </TableCell>
                  <TableCell className={classes.nowrap}>
                    <OperatorCell cluster={cluster} />
                  </TableCell>
                  <TableCell className={classes.nowrap}>
                    {cluster.rootFingerprint ? (
                      <Tooltip title={cluster.rootFingerprint}>
                        <code
                          aria-label={`Root fingerprint ${cluster.rootFingerprint}`}
                        >
                          {shortFingerprint(cluster.rootFingerprint)}
                        </code>
                      </Tooltip>
                    ) : (
                      'none'
                    )}
                  </TableCell>
                  <TableCell className={classes.sync}>
                    <SyncHealthStatus sync={cluster.sync} />
                  </TableCell>
                </TableRow>
              );
            })}
          </TableBody>
        </Table>
      </div>
    </InfoCard>
  );
}
