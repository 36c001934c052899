import {
  InfoCard,
  Progress,
  ResponseErrorPanel,
} from '@backstage/core-components';
import { useApi } from '@backstage/core-plugin-api';
import Button from '@material-ui/core/Button';
import Table from '@material-ui/core/Table';
import TableBody from '@material-ui/core/TableBody';
import TableCell from '@material-ui/core/TableCell';
import TableHead from '@material-ui/core/TableHead';
import TableRow from '@material-ui/core/TableRow';
import Tooltip from '@material-ui/core/Tooltip';
import Typography from '@material-ui/core/Typography';
import { MembershipHistoryEvent } from '@tailmesh/plugin-mesh-common';
import { useState, ReactNode } from 'react';
import { meshApiRef } from '../../api';
import { formatAge } from '../common/formatAge';
import {
  REFRESH_ON_HISTORY_CHANGE,
  usePolledAsync,
} from '../../hooks/usePolledAsync';
import { CARD_HEADING } from '../common/cardHeading';

/** Events per page of history. */
export const HISTORY_PAGE_SIZE = 20;

const EVENT_TEXT: Record<MembershipHistoryEvent['kind'], string> = {
  joined: 'joined',
  left: 'left',
  'finding-raised': 'finding raised',
  'finding-cleared': 'finding cleared',
};

/**
 * Membership history, newest first, a page at a time. The page in view keeps refreshing, so new
 * events appear on the first page without a reload.
 */
export function MembershipHistory(props: { pollIntervalMs?: number }) {
  const meshApi = useApi(meshApiRef);
  // Cursors of the pages above the current one; the current page starts after the last.
  const [cursors, setCursors] = useState<Array<string | undefined>>([
    undefined,
  ]);
  const before = cursors[cursors.length - 1];
  const { loading, value, error } = usePolledAsync(
    () => meshApi.getHistory({ limit: HISTORY_PAGE_SIZE, before }),
    [meshApi, before],
    props.pollIntervalMs,
    REFRESH_ON_HISTORY_CHANGE,
  );

  let content: ReactNode;
  if (loading) {
    content = <Progress />;
  } else if (!value) {
    content = <ResponseErrorPanel error={error!} />;
  } else if (value.events.length === 0) {
    content = (
      <Typography variant="body2">
        {cursors.length === 1
          ? 'Nothing has happened in the mesh yet.'
          : 'No older events.'}
      </Typography>
    );
  } else {
    content = (
      <Table size="small" aria-label="Membership history">
        <TableHead>
          <TableRow>
            <TableCell>When</TableCell>
            <TableCell>Cluster</TableCell>
            <TableCell>Event</TableCell>
            <TableCell>Details</TableCell>
          </TableRow>
        </TableHead>
        <TableBody>
          {value.events.map(event => (
            <TableRow key={event.id}>
              <TableCell>
                <Tooltip title={new Date(event.at).toLocaleString()}>
                  <span>{formatAge(event.at)}</span>
                </Tooltip>
              </TableCell>
              <TableCell>{event.cluster ?? 'mesh'}</TableCell>
              <TableCell>{EVENT_TEXT[event.kind]}</TableCell>
              <TableCell>{event.message}</TableCell>
            </TableRow>
          ))}
        </TableBody>
      </Table>
    );
  }

  const nextCursor = value?.nextCursor;
  return (
    <InfoCard
      titleTypographyProps={CARD_HEADING}
      title="History"
      actions={
        <>
          <Button
            size="small"
            disabled={cursors.length === 1}
            onClick={() => setCursors(previous => previous.slice(0, -1))}
          >
            Newer
          </Button>
          <Button
            size="small"
            disabled={!nextCursor}
            onClick={() => setCursors(previous => [...previous, nextCursor])}
          >
            Older
          </Button>
        </>
      }
    >
      {content}
    </InfoCard>
  );
}
