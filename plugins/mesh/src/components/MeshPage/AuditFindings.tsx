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
  TailnetPolicyStatus,
} from '@tailmesh/plugin-mesh-common';
import {
  StatusError,
  StatusOK,
  StatusPending,
  StatusWarning,
} from '../common/status';
import { CARD_HEADING } from '../common/cardHeading';
import { formatAge } from '../common/formatAge';

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

/**
 * Whether the tailnet policy file behind the `grant-too-broad` check could be read: without it,
 * "no finding" about grants means "not checked", which an admin should know.
 */
export function tailnetPolicyText(policy: TailnetPolicyStatus): string {
  const lastRead = policy.lastReadAt
    ? `last read ${formatAge(policy.lastReadAt)}`
    : 'never read';
  switch (policy.state) {
    case 'ok':
      return `Tailnet policy file: read ${formatAge(policy.lastReadAt ?? '')}.`;
    case 'pending':
      return 'Tailnet policy file: first read in progress; grants are not checked yet.';
    case 'not-configured':
      return 'Tailnet policy file: not checked (no Tailscale OAuth client configured).';
    default:
      return `Tailnet policy file: cannot be read (${policy.error ?? 'unknown error'}); grants judged on the file ${lastRead}.`;
  }
}

/** What the membership audit found, most severe first, each with the clusters and the fix. */
export function AuditFindings(props: {
  findings: AuditFinding[];
  tailnetPolicy?: TailnetPolicyStatus;
}) {
  const { tailnetPolicy } = props;
  const findings = sortFindings(props.findings);
  return (
    <InfoCard
      titleTypographyProps={CARD_HEADING}
      title="Audit findings"
      subheader={tailnetPolicy ? tailnetPolicyText(tailnetPolicy) : undefined}
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
                <TableCell style={{ whiteSpace: 'nowrap' }}>
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
