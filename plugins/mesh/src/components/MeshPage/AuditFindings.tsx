import { InfoCard } from '@backstage/core-components';
import Table from '@material-ui/core/Table';
import TableBody from '@material-ui/core/TableBody';
import TableCell from '@material-ui/core/TableCell';
import TableHead from '@material-ui/core/TableHead';
import TableRow from '@material-ui/core/TableRow';
import Typography from '@material-ui/core/Typography';
import {
  AuditFinding,
  AuditFindingKind,
  AuditSeverity,
  sortFindings,
} from '@tailmesh/plugin-mesh-common';
import React from 'react';
import {
  StatusError,
  StatusOK,
  StatusPending,
  StatusWarning,
} from '../common/status';
import { CARD_HEADING } from '../common/cardHeading';

function SeverityStatus(props: { severity: AuditSeverity }) {
  switch (props.severity) {
    case 'error':
      return <StatusError>error</StatusError>;
    case 'warning':
      return <StatusWarning>warning</StatusWarning>;
    default:
      return <StatusPending>info</StatusPending>;
  }
}

/** "one-way-remote-secret" reads as "One way remote secret". */
function kindText(kind: AuditFindingKind): string {
  const words = kind.replace(/-/g, ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** What the membership audit found, most severe first, each with the clusters and the fix. */
export function AuditFindings(props: { findings: AuditFinding[] }) {
  const findings = sortFindings(props.findings);
  return (
    <InfoCard
      titleTypographyProps={CARD_HEADING}
      title="Audit findings"
      noPadding={findings.length > 0}
    >
      {findings.length === 0 ? (
        <StatusOK>No findings: every member agrees with every other.</StatusOK>
      ) : (
        <Table size="small" aria-label="Audit findings">
          <TableHead>
            <TableRow>
              <TableCell>Severity</TableCell>
              <TableCell>Finding</TableCell>
              <TableCell>Clusters</TableCell>
              <TableCell>Fix</TableCell>
            </TableRow>
          </TableHead>
          <TableBody>
            {findings.map(finding => (
              <TableRow key={finding.id}>
                <TableCell>
                  <SeverityStatus severity={finding.severity} />
                </TableCell>
                <TableCell>
                  <Typography variant="subtitle2">
                    {kindText(finding.kind)}
                  </Typography>
                  <Typography variant="body2">{finding.message}</Typography>
                </TableCell>
                <TableCell>
                  {finding.clusters.join(', ') || 'mesh-wide'}
                </TableCell>
                <TableCell>{finding.fix}</TableCell>
              </TableRow>
            ))}
          </TableBody>
        </Table>
      )}
    </InfoCard>
  );
}
