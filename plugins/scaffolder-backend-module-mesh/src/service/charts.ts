import { Config } from '@backstage/config';
import { InputError } from '@backstage/errors';
import { ChartRef } from './helm';

const ISTIO_REPO = 'https://istio-release.storage.googleapis.com/charts';
const TAILSCALE_REPO = 'https://pkgs.tailscale.com/helmcharts';

/**
 * The releases Tailmesh is tested with (Istio's released charts, vendored unmodified in
 * test/fixtures/istio-release-charts; the Tailscale operator chart of the release the test bed
 * builds from).
 * Pinned so a re-run never jumps to whatever a repository serves that day; the README says how to
 * move to newer ones (set `mesh.charts.<chart>.version`).
 */
export const DEFAULT_ISTIO_CHART_VERSION = '1.29.6';
export const DEFAULT_TAILSCALE_OPERATOR_CHART_VERSION = '1.102.5';

/** @public */
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
  const ref = {
    chart: c.getString('chart'),
    repo: c.getOptionalString('repo'),
    version: c.getOptionalString('version'),
  };
  // A chart from a repository without a version is whatever the repository serves on the day of
  // each run; a local chart directory is as pinned as the directory.
  if (ref.repo && !ref.version) {
    throw new InputError(
      `mesh.charts.${key}: a chart from a repository needs a version (e.g. version: "${fallback.version}"), so that a re-run installs what the first run did`,
    );
  }
  return ref;
}

/** The charts from `mesh.charts`, defaulting to the official chart repositories at pinned versions. */
export function readMeshCharts(config: Config): MeshCharts {
  return {
    istioBase: read(config, 'istioBase', {
      chart: 'base',
      repo: ISTIO_REPO,
      version: DEFAULT_ISTIO_CHART_VERSION,
    }),
    istiod: read(config, 'istiod', {
      chart: 'istiod',
      repo: ISTIO_REPO,
      version: DEFAULT_ISTIO_CHART_VERSION,
    }),
    gateway: read(config, 'gateway', {
      chart: 'gateway',
      repo: ISTIO_REPO,
      version: DEFAULT_ISTIO_CHART_VERSION,
    }),
    tailscaleOperator: read(config, 'tailscaleOperator', {
      chart: 'tailscale-operator',
      repo: TAILSCALE_REPO,
      version: DEFAULT_TAILSCALE_OPERATOR_CHART_VERSION,
    }),
    tailscaleOperatorCrds: config.getOptionalString(
      'mesh.charts.tailscaleOperatorCrds',
    ),
  };
}
