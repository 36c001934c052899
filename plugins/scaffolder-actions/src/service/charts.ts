import { Config } from '@backstage/config';
import { ChartRef } from './helm';

const ISTIO_REPO = 'https://istio-release.storage.googleapis.com/charts';
const TAILSCALE_REPO = 'https://pkgs.tailscale.com/helmcharts';

export interface MeshCharts {
  istioBase: ChartRef;
  istiod: ChartRef;
  gateway: ChartRef;
  tailscaleOperator: ChartRef;
  tailscaleOperatorCrds?: string;
}

function read(config: Config, key: string, fallback: ChartRef): ChartRef {
  const c = config.getOptionalConfig(`mesh.charts.${key}`);
  if (!c) return fallback;
  return {
    chart: c.getString('chart'),
    repo: c.getOptionalString('repo'),
    version: c.getOptionalString('version'),
  };
}

/** The charts from `mesh.charts`, defaulting to the official chart repositories. */
export function readMeshCharts(config: Config): MeshCharts {
  return {
    istioBase: read(config, 'istioBase', { chart: 'base', repo: ISTIO_REPO }),
    istiod: read(config, 'istiod', { chart: 'istiod', repo: ISTIO_REPO }),
    gateway: read(config, 'gateway', { chart: 'gateway', repo: ISTIO_REPO }),
    tailscaleOperator: read(config, 'tailscaleOperator', {
      chart: 'tailscale-operator',
      repo: TAILSCALE_REPO,
    }),
    tailscaleOperatorCrds: config.getOptionalString(
      'mesh.charts.tailscaleOperatorCrds',
    ),
  };
}
