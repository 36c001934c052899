import { InfoCard } from '@backstage/core-components';
import { makeStyles } from '@material-ui/core/styles';
import Table from '@material-ui/core/Table';
import TableBody from '@material-ui/core/TableBody';
import TableCell from '@material-ui/core/TableCell';
import TableHead from '@material-ui/core/TableHead';
import TableRow from '@material-ui/core/TableRow';
import Tooltip from '@material-ui/core/Tooltip';
import Typography from '@material-ui/core/Typography';
import { MembershipResponse } from '@tailmesh/plugin-mesh-common';
import { useMemo } from 'react';
import {
  describeMembershipCell,
  MembershipCellState,
  membershipCellState,
} from './membershipCells';
import { membershipRows } from './membershipRows';
import { useListFilter } from '../common/ListFilter';
import { RowHeaderCell } from '../common/RowHeaderCell';
import { CARD_HEADING } from '../common/cardHeading';
import { formatCount } from '../common/formatCount';

const useStyles = makeStyles(theme => ({
  ok: { color: theme.palette.success.main, fontWeight: 'bold' },
  missing: { color: theme.palette.warning.main, fontWeight: 'bold' },
  broken: { color: theme.palette.error.main, fontWeight: 'bold' },
  self: { color: theme.palette.text.disabled },
  problem: { marginRight: theme.spacing(1.5), whiteSpace: 'nowrap' },
}));

/**
 * Up to this many members the page draws the whole matrix; a larger mesh gets one row per member
 * (N cells instead of N x N, each with its own tooltip, would freeze the browser at 100: 10,000
 * tooltips), filtered to the members with a problem.
 */
export const FULL_MATRIX_MAX_MEMBERS = 12;

/** Problem links listed per row before "and N more". */
const PROBLEMS_LISTED = 6;

const CELL_TEXT: Record<MembershipCellState, string> = {
  ok: 'ok',
  missing: 'missing',
  broken: 'broken',
  self: '—',
};

/**
 * The N x N membership matrix: the row is the cluster that must reach, the column the cluster it
 * must reach; a cell is ok when the row holds a remote secret for the column and routes to the
 * column's current gateway.
 */
export function MembershipMatrix(props: { membership: MembershipResponse }) {
  if (props.membership.clusters.length > FULL_MATRIX_MAX_MEMBERS)
    return <MembershipByMember membership={props.membership} />;
  return <FullMatrix membership={props.membership} />;
}

function FullMatrix(props: { membership: MembershipResponse }) {
  const { clusters, matrix } = props.membership;
  const classes = useStyles();
  return (
    <InfoCard
      titleTypographyProps={CARD_HEADING}
      title="Membership"
      subheader="Row: the cluster that reaches; column: the cluster reached"
    >
      {clusters.length === 0 ? (
        <Typography variant="body2">
          No member yet: run the “Join cluster to mesh” template to bootstrap
          the mesh.
        </Typography>
      ) : (
        <Table size="small" aria-label="Membership matrix">
          <TableHead>
            <TableRow>
              <TableCell>from \ to</TableCell>
              {clusters.map(to => (
                <TableCell key={to} align="center">
                  {to}
                </TableCell>
              ))}
            </TableRow>
          </TableHead>
          <TableBody>
            {matrix.map((row, i) => (
              <TableRow key={clusters[i]}>
                <RowHeaderCell>{clusters[i]}</RowHeaderCell>
                {row.map(cell => {
                  const state = membershipCellState(cell);
                  const description = describeMembershipCell(cell);
                  return (
                    <TableCell key={cell.to} align="center">
                      <Tooltip title={description}>
                        <span
                          className={classes[state]}
                          aria-label={description}
                        >
                          {CELL_TEXT[state]}
                        </span>
                      </Tooltip>
                    </TableCell>
                  );
                })}
              </TableRow>
            ))}
          </TableBody>
        </Table>
      )}
    </InfoCard>
  );
}

/**
 * The membership of a large mesh: totals, then one row per member with the peers it reaches and
 * the links that are missing or broken, each described in its title. Filtered by name, and by
 * default to the members with a problem.
 */
function MembershipByMember(props: { membership: MembershipResponse }) {
  const classes = useStyles();
  const list = useListFilter({
    id: 'mesh-membership-filter',
    filterLabel: 'Filter members',
    onlyProblemsLabel: 'Only members with a problem',
  });
  const { rows, totals } = useMemo(
    () => membershipRows(props.membership),
    [props.membership],
  );
  const shown = rows.filter(
    r =>
      (!list.onlyProblems || r.problems.length > 0) && list.matches(r.cluster),
  );
  return (
    <InfoCard
      titleTypographyProps={CARD_HEADING}
      title="Membership"
      subheader={`${formatCount(totals.members)} members, ${formatCount(totals.links)} links: ${formatCount(totals.ok)} ok, ${formatCount(totals.missing)} missing, ${formatCount(totals.broken)} broken`}
    >
      {list.controls}
      {shown.length === 0 ? (
        <Typography variant="body2">
          {list.showsEveryProblem
            ? `Every member reaches all ${formatCount(totals.members - 1)} others.`
            : 'No member matches.'}
        </Typography>
      ) : (
        <Table size="small" aria-label="Membership by member">
          <TableHead>
            <TableRow>
              <TableCell>Member</TableCell>
              <TableCell>Reaches</TableCell>
              <TableCell>Missing or broken links</TableCell>
            </TableRow>
          </TableHead>
          <TableBody>
            {shown.map(row => (
              <TableRow key={row.cluster}>
                <RowHeaderCell>{row.cluster}</RowHeaderCell>
                <TableCell>
                  {`${formatCount(row.ok)} of ${formatCount(row.peers)}`}
                </TableCell>
                <TableCell>
                  {row.problems
                    .slice(0, PROBLEMS_LISTED)
                    .map(({ cell, state }) => {
                      // A native title, not a Tooltip: cheap at hundreds of links.
                      const description = describeMembershipCell(cell);
                      return (
                        <span
                          key={cell.to}
                          className={`${classes[state]} ${classes.problem}`}
                          title={description}
                          aria-label={description}
                        >
                          → {cell.to} {state}
                        </span>
                      );
                    })}
                  {row.problems.length > PROBLEMS_LISTED &&
                    `and ${formatCount(row.problems.length - PROBLEMS_LISTED)} more`}
                </TableCell>
              </TableRow>
            ))}
          </TableBody>
        </Table>
      )}
    </InfoCard>
  );
}
