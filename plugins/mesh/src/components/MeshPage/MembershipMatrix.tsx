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
import {
  describeMembershipCell,
  MembershipCellState,
  membershipCellState,
} from './membershipCells';
import { RowHeaderCell } from '../common/RowHeaderCell';
import { CARD_HEADING } from '../common/cardHeading';

const useStyles = makeStyles(theme => ({
  ok: { color: theme.palette.success.main, fontWeight: 'bold' },
  missing: { color: theme.palette.warning.main, fontWeight: 'bold' },
  broken: { color: theme.palette.error.main, fontWeight: 'bold' },
  self: { color: theme.palette.text.disabled },
}));

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
