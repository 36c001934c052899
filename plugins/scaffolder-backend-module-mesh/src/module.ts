import {
  coreServices,
  createBackendModule,
} from '@backstage/backend-plugin-api';
import { scaffolderActionsExtensionPoint } from '@backstage/plugin-scaffolder-node';
import {
  clusterAccessFromSupplier,
  meshClustersSupplierServiceRef,
} from '@tailmesh/plugin-mesh-node';
import { createMeshActions } from './actions';
import { sweepAbandonedHelmDirs } from './service/helm';
import { createMeshActionDeps } from './service/MeshActionDeps';

/**
 * Registers the `mesh:*` actions with the scaffolder.
 *
 * @public
 */
export const scaffolderModuleMesh = createBackendModule({
  pluginId: 'scaffolder',
  moduleId: 'mesh',
  register({ registerInit }) {
    registerInit({
      deps: {
        scaffolder: scaffolderActionsExtensionPoint,
        config: coreServices.rootConfig,
        logger: coreServices.logger,
        lifecycle: coreServices.lifecycle,
        clustersSupplier: meshClustersSupplierServiceRef,
      },
      async init({ scaffolder, config, logger, lifecycle, clustersSupplier }) {
        // The same clusters the mesh backend watches: one supplier serves both, and a change of
        // it reaches the actions too (each run looks its cluster up when it starts).
        const clusters = await clusterAccessFromSupplier(
          clustersSupplier,
          config,
          { logger },
        );
        lifecycle.addShutdownHook(() => clusters.close());
        scaffolder.addActions(
          ...createMeshActions(createMeshActionDeps(config, { clusters })),
        );
        // Credentials a backend killed mid-helm left on disk go at the next start.
        const removed = await sweepAbandonedHelmDirs();
        if (removed.length)
          logger.warn(
            `Removed ${removed.length} temp dir(s) with cluster credentials that a stopped backend left behind (${removed.join(', ')})`,
          );
      },
    });
  },
});
