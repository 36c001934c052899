import { renderInTestApp } from '@backstage/test-utils';
import { screen } from '@testing-library/react';
import { memberCluster, membership } from '../../testUtils/meshFixtures';
import { MeshGraph } from './MeshGraph';

// jsdom lays nothing out. DependencyGraph measures each node's group with getBBox, so a node
// measures as the rect ClusterNode draws; anything else as empty.
beforeAll(() => {
  Object.defineProperty(window.SVGElement.prototype, 'getBBox', {
    configurable: true,
    value(this: SVGElement) {
      const rect = this.querySelector('rect');
      return {
        x: 0,
        y: 0,
        width: Number(rect?.getAttribute('width') ?? 0),
        height: Number(rect?.getAttribute('height') ?? 0),
      };
    },
  });
});

const GRAPH_SETTLED = { timeout: 8000 };

function healthyMesh() {
  return [
    memberCluster(1, ['cluster2', 'cluster3']),
    memberCluster(2, ['cluster1', 'cluster3']),
    memberCluster(3, ['cluster1', 'cluster2']),
  ];
}

/** The x and y of an SVG `translate(x,y)` transform; throws on anything else. */
function translation(transform: string | null): [number, number] {
  const match = /^translate\(([^,]+),([^)]+)\)$/.exec(transform ?? '');
  if (!match) throw new Error(`not a translation: ${transform}`);
  return [Number(match[1]), Number(match[2])];
}

describe('MeshGraph', () => {
  it('hides the graph while it lays out, then shows three members and three ok links in place', async () => {
    const { container } = await renderInTestApp(
      <MeshGraph clusters={healthyMesh()} membership={membership()} />,
    );
    expect(
      screen.getByRole('heading', { name: 'Mesh graph' }),
    ).toBeInTheDocument();
    // DependencyGraph keeps the drawing invisible until its layout has settled (two measured
    // layouts, or half a second without a new one): a screenshot taken as soon as the page's
    // data shows catches an empty card. Anything looking at the graph must wait for its nodes.
    expect(
      screen.queryByRole('img', { name: /^cluster1: member/ }),
    ).not.toBeInTheDocument();

    for (const n of [1, 2, 3]) {
      expect(
        await screen.findByRole(
          'img',
          { name: `cluster${n}: member, network network${n}` },
          GRAPH_SETTLED,
        ),
      ).toBeVisible();
    }
    for (const [a, b] of [
      [1, 2],
      [1, 3],
      [2, 3],
    ]) {
      expect(
        screen.getByRole('img', { name: `cluster${a} ↔ cluster${b}: ok` }),
      ).toHaveAttribute('data-status', 'ok');
    }

    const svg = container.querySelector('svg#dependency-graph')!;
    const viewBox = svg.getAttribute('viewBox')!.split(' ').map(Number);
    expect(viewBox).toHaveLength(4);
    expect(viewBox.every(Number.isFinite)).toBe(true);
    expect(viewBox[2]).toBeGreaterThan(0);
    expect(viewBox[3]).toBeGreaterThan(0);

    // Every node is laid out (measured, so not stacked at the origin) at a finite place of its own.
    const nodes = Array.from(svg.querySelectorAll('[data-testid="node"]'));
    expect(nodes).toHaveLength(3);
    const places = nodes.map(node =>
      translation(node.getAttribute('transform')),
    );
    for (const [x, y] of places) {
      expect(Number.isFinite(x) && Number.isFinite(y)).toBe(true);
    }
    expect(new Set(places.map(p => p.join(','))).size).toBe(3);

    // Every link is drawn between finite points; no label, since every link is ok.
    const links = Array.from(svg.querySelectorAll('g[data-status]'));
    expect(links).toHaveLength(3);
    for (const link of links) {
      const d = link.querySelector('path')!.getAttribute('d')!;
      expect(d).toMatch(/^M[-\d.]+,[-\d.]+( L[-\d.]+,[-\d.]+)+$/);
      expect(link.querySelector('text')).toBeNull();
    }
  });
});
