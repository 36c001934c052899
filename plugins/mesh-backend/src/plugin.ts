import {
  coreServices,
  createBackendPlugin,
} from '@backstage/backend-plugin-api';
import { actionsRegistryServiceRef } from '@backstage/backend-plugin-api/alpha';
import { catalogServiceRef } from '@backstage/plugin-catalog-node';
import { meshPermissions } from '@tailmesh/plugin-mesh-common';
import {
  clusterAccessFromSupplier,
  meshClustersSupplierServiceRef,
} from '@tailmesh/plugin-mesh-node';
import { registerMeshActions } from './actions';
import { createRouter } from './router';
import { MeshStateCache } from './service/cache/MeshStateCache';
import { HistoryRecorder } from './service/HistoryRecorder';
import { HistoryStore } from './service/HistoryStore';
import { MeshAuditor } from './service/MeshAuditor';
import { MeshStatusService, placementOf } from './service/MeshStatusService';
import { TailnetPolicyWatcher } from './service/TailnetPolicyWatcher';

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
        actionsRegistry: actionsRegistryServiceRef,
        clustersSupplier: meshClustersSupplierServiceRef,
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
        actionsRegistry,
        clustersSupplier,
      }) {
        permissionsRegistry.addPermissions(meshPermissions);

        // The clusters of the supplier the scaffolder module's actions use too.
        const clusters = await clusterAccessFromSupplier(
          clustersSupplier,
          config,
        );
        const cache = MeshStateCache.fromConfig(config, { logger, clusters });
        const policy = TailnetPolicyWatcher.fromConfig(config, { logger });
        const auditor = new MeshAuditor({ state: cache, policy });
        const history = await HistoryStore.create({ database });
        const recorder = new HistoryRecorder({
          audit: auditor,
          store: history,
          logger,
        });
        const service = new MeshStatusService({
          state: cache,
          audit: auditor,
          policy,
          catalog,
          configured: placementOf(clusters.list()),
        });

        // The cache and the policy file are read in the background: startup never waits on a
        // cluster or on Tailscale, and until they are read the rows say `syncing`/`pending`.
        lifecycle.addStartupHook(() => {
          auditor.start();
          recorder.start();
          cache.start();
          policy.start();
        });
        lifecycle.addShutdownHook(async () => {
          await policy.stop();
          await cache.stop();
          await recorder.stop();
          auditor.stop();
        });

        registerMeshActions(actionsRegistry, service);
        httpRouter.use(
          await createRouter({ service, history, httpAuth, permissions }),
        );
        httpRouter.addAuthPolicy({ path: '/health', allow: 'unauthenticated' });
      },
    });
  },
});
