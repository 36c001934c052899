import {
  coreServices,
  createBackendModule,
} from '@backstage/backend-plugin-api';
import { scaffolderActionsExtensionPoint } from '@backstage/plugin-scaffolder-node';
import { createMeshActions } from './actions';
import { sweepAbandonedHelmDirs } from './service/helm';
import { createMeshActionDeps } from './service/MeshActionDeps';

/** Registers the `mesh:*` actions with the scaffolder. */
export const scaffolderModuleMesh = createBackendModule({
  pluginId: 'scaffolder',
  moduleId: 'mesh',
  register({ registerInit }) {
    registerInit({
      deps: {
        scaffolder: scaffolderActionsExtensionPoint,
        config: coreServices.rootConfig,
        logger: coreServices.logger,
      },
      async init({ scaffolder, config, logger }) {
        scaffolder.addActions(
          ...createMeshActions(createMeshActionDeps(config)),
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
