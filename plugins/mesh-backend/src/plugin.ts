import {
  coreServices,
  createBackendPlugin,
} from '@backstage/backend-plugin-api';
import { catalogServiceRef } from '@backstage/plugin-catalog-node';
import { meshPermissions } from '@tailmesh/plugin-mesh-common';
import { createRouter } from './router';
import { MeshStateCache } from './service/cache/MeshStateCache';
import { HistoryRecorder } from './service/HistoryRecorder';
import { HistoryStore } from './service/HistoryStore';
import {
  MeshStatusService,
  readConfiguredPlacement,
} from './service/MeshStatusService';

/**
 * The mesh backend plugin: the status of every cluster of the mesh, its membership and history.
 *
 * @public
 */
export const meshPlugin = createBackendPlugin({
  pluginId: 'mesh',
  register(env) {
    env.registerInit({
      deps: {
        config: coreServices.rootConfig,
        logger: coreServices.logger,
        httpRouter: coreServices.httpRouter,
        database: coreServices.database,
        permissions: coreServices.permissions,
        permissionsRegistry: coreServices.permissionsRegistry,
        httpAuth: coreServices.httpAuth,
        lifecycle: coreServices.lifecycle,
        catalog: catalogServiceRef,
      },
      async init({
        config,
        logger,
        httpRouter,
        database,
        permissions,
        permissionsRegistry,
        httpAuth,
        lifecycle,
        catalog,
      }) {
        permissionsRegistry.addPermissions(meshPermissions);

        const cache = MeshStateCache.fromConfig(config, { logger });
        const history = await HistoryStore.create({ database });
        const recorder = new HistoryRecorder({
          state: cache,
          store: history,
          logger,
        });
        const service = new MeshStatusService({
          state: cache,
          catalog,
          configured: readConfiguredPlacement(config),
        });

        // The cache syncs in the background: startup never waits on a cluster, and until a
        // cluster is read its rows say `syncing`.
        lifecycle.addStartupHook(() => {
          recorder.start();
          cache.start();
        });
        lifecycle.addShutdownHook(async () => {
          await cache.stop();
          await recorder.stop();
        });

        httpRouter.use(
          await createRouter({ service, history, httpAuth, permissions }),
        );
        httpRouter.addAuthPolicy({ path: '/health', allow: 'unauthenticated' });
      },
    });
  },
});
