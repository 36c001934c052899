import {
  DependencyGraph,
  DependencyGraphTypes,
  InfoCard,
} from '@backstage/core-components';
import { makeStyles } from '@material-ui/core/styles';
import Typography from '@material-ui/core/Typography';
import {
  MembershipResponse,
  MeshClusterStatus,
} from '@tailmesh/plugin-mesh-common';
import { useMemo } from 'react';
import {
  buildMeshGraph,
  MeshGraph as MeshGraphModel,
  MeshGraphEdgeData,
  MeshGraphNodeData,
} from './meshGraphModel';
import { CARD_HEADING } from '../common/cardHeading';
import { formatCount } from '../common/formatCount';

const NODE_HEIGHT = 44;
/** Class names joined, skipping the conditions that are off. */
function classNames(...names: Array<string | false | undefined>): string {
  return names.filter(Boolean).join(' ');
}

/** Wide enough for the longest cluster name (41 characters) in the graph's font. */
const CHAR_WIDTH = 8;
const NODE_PADDING = 24;

const useStyles = makeStyles(theme => ({
  member: {
    fill: theme.palette.primary.main,
    stroke: theme.palette.primary.dark,
  },
  nonMember: {
    fill: theme.palette.background.paper,
    stroke: theme.palette.text.secondary,
    strokeDasharray: '4 3',
  },
  unreachable: { stroke: theme.palette.error.main, strokeWidth: 3 },
  memberText: { fill: theme.palette.primary.contrastText },
  nonMemberText: { fill: theme.palette.text.primary },
  edge: { fill: 'none', strokeWidth: 2 },
  ok: { stroke: theme.palette.success.main },
  missing: { stroke: theme.palette.warning.main, strokeDasharray: '6 4' },
  broken: { stroke: theme.palette.error.main, strokeDasharray: '6 4' },
  missingLabel: { fill: theme.palette.warning.dark, fontSize: 12 },
  brokenLabel: { fill: theme.palette.error.main, fontSize: 12 },
  // A halo in the background colour keeps a label readable where it crosses its line.
  label: {
    paintOrder: 'stroke',
    stroke: theme.palette.background.paper,
    strokeWidth: 4,
  },
}));

function ClusterNode(
  props: DependencyGraphTypes.RenderNodeProps<MeshGraphNodeData>,
) {
  const { id, member, unreachable, network } = props.node;
  const classes = useStyles();
  const caption = `${member ? 'member' : 'not a member'}${unreachable ? ', unreachable' : ''}`;
  const width = Math.max(id.length, caption.length) * CHAR_WIDTH + NODE_PADDING;
  return (
    <g
      aria-label={`${id}: ${caption}${network ? `, network ${network}` : ''}`}
      role="img"
    >
      <title>{`${id}: ${caption}${network ? `, network ${network}` : ''}`}</title>
      <rect
        className={classNames(
          member ? classes.member : classes.nonMember,
          unreachable && classes.unreachable,
        )}
        width={width}
        height={NODE_HEIGHT}
        rx={8}
      />
      <text
        className={member ? classes.memberText : classes.nonMemberText}
        x={width / 2}
        y={18}
        textAnchor="middle"
      >
        {id}
      </text>
      <text
        className={member ? classes.memberText : classes.nonMemberText}
        x={width / 2}
        y={34}
        textAnchor="middle"
        fontSize={11}
      >
        {caption}
      </text>
    </g>
  );
}

function LinkEdge(
  props: DependencyGraphTypes.RenderEdgeProps<MeshGraphEdgeData>,
) {
  const { edge, id } = props;
  const classes = useStyles();
  const points = edge.points.filter(
    p => Number.isFinite(p.x) && Number.isFinite(p.y),
  );
  if (points.length < 2) return null;
  const path = points
    .map((p, i) => `${i === 0 ? 'M' : 'L'}${p.x},${p.y}`)
    .join(' ');
  const mid = points[Math.floor(points.length / 2)];
  const description =
    edge.status === 'ok'
      ? `${id.v} ↔ ${id.w}: ok`
      : `${id.v} ↔ ${id.w}: ${edge.problems.join('; ')}`;
  return (
    <g aria-label={description} role="img" data-status={edge.status}>
      <title>{description}</title>
      <path
        className={classNames(classes.edge, classes[edge.status])}
        d={path}
      />
      {edge.status !== 'ok' && (
        <text
          className={
            edge.status === 'broken'
              ? classes.brokenLabel
              : classes.missingLabel
          }
          x={mid.x}
          y={mid.y - 4}
          textAnchor="middle"
        >
          {edge.status}
        </text>
      )}
    </g>
  );
}

/** What a reduced graph leaves out, in one sentence. */
function omittedText(
  omitted: NonNullable<MeshGraphModel['omitted']>,
  drawn: number,
): string {
  const parts = [
    `${formatCount(omitted.healthyLinks)} healthy links`,
    ...(omitted.problemLinks
      ? [`${formatCount(omitted.problemLinks)} links with a problem`]
      : []),
    `${formatCount(omitted.clusters)} clusters`,
  ];
  return `${drawn ? `Only the ${formatCount(drawn)} links with a problem are drawn` : 'Too large to draw'}: ${parts.join(', ')} not shown.`;
}

/** What an empty graph card says instead. */
function emptyGraphText(omitted: MeshGraphModel['omitted']): string {
  if (!omitted) return 'No cluster is configured.';
  if (omitted.problemLinks > 0)
    return 'Too many links with a problem to draw: the membership card lists them.';
  return 'Every link is healthy.';
}

/**
 * A picture of the mesh: clusters as nodes (members filled, others dashed, unreachable outlined
 * red) and a link per pair of members, dashed and labelled when broken or missing in a direction.
 */
export function MeshGraph(props: {
  clusters: MeshClusterStatus[];
  membership: MembershipResponse;
}) {
  const { clusters, membership } = props;
  // Polling hands over new but usually equal objects; keying on content keeps the graph's
  // layout still instead of relaying it out every refresh.
  const key = JSON.stringify([
    clusters,
    membership.clusters,
    membership.matrix,
  ]);
  const graph = useMemo(
    () => buildMeshGraph(clusters, membership),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [key],
  );
  const { omitted } = graph;
  return (
    <InfoCard
      titleTypographyProps={CARD_HEADING}
      title="Mesh graph"
      subheader={omitted ? omittedText(omitted, graph.edges.length) : undefined}
    >
      {graph.nodes.length === 0 ? (
        <Typography variant="body2">{emptyGraphText(omitted)}</Typography>
      ) : (
        <DependencyGraph<MeshGraphNodeData, MeshGraphEdgeData>
          aria-label="Mesh graph"
          nodes={graph.nodes}
          edges={graph.edges}
          // Elements rather than plain calls: the graph calls these inside its own render, and the
          // hooks of a component called as a function would become the graph's hooks.
          renderNode={nodeProps => <ClusterNode {...nodeProps} />}
          renderEdge={edgeProps => (
            <LinkEdge
              key={`${edgeProps.id.v}-${edgeProps.id.w}`}
              {...edgeProps}
            />
          )}
          direction={DependencyGraphTypes.Direction.TOP_BOTTOM}
          rankMargin={60}
          nodeMargin={60}
          // dagre routes a link that skips a rank around the nodes, outside the box it sizes the
          // graph by; the margin keeps those links and their labels in view.
          paddingX={70}
          paddingY={30}
          zoom="enable-on-click"
          fit="contain"
          style={{ minHeight: 240 }}
        />
      )}
    </InfoCard>
  );
}
