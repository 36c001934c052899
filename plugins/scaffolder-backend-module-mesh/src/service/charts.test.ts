import { ConfigReader } from '@backstage/config';
import { readMeshCharts } from './charts';

describe('readMeshCharts', () => {
  it('pins every default chart to a released version', () => {
    const charts = readMeshCharts(new ConfigReader({}));
    expect(charts.istiod).toEqual({
      chart: 'istiod',
      repo: 'https://istio-release.storage.googleapis.com/charts',
      version: '1.29.6',
    });
    expect(charts.istioBase.version).toBe('1.29.6');
    expect(charts.gateway.version).toBe('1.29.6');
    expect(charts.tailscaleOperator).toEqual({
      chart: 'tailscale-operator',
      repo: 'https://pkgs.tailscale.com/helmcharts',
      version: '1.102.5',
    });
  });

  it('takes a local chart directory as it is, and refuses a repository chart without a version', () => {
    expect(
      readMeshCharts(
        new ConfigReader({
          mesh: { charts: { istiod: { chart: '/charts/istiod' } } },
        }),
      ).istiod,
    ).toEqual({ chart: '/charts/istiod', repo: undefined, version: undefined });
    expect(() =>
      readMeshCharts(
        new ConfigReader({
          mesh: {
            charts: {
              gateway: { chart: 'gateway', repo: 'https://charts.example.com' },
            },
          },
        }),
      ),
    ).toThrow(
      'mesh.charts.gateway: a chart from a repository needs a version (e.g. version: "1.29.6"), so that a re-run installs what the first run did',
    );
  });
});
