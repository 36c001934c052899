import {
  coreServices,
  createBackendPlugin,
} from '@backstage/backend-plugin-api';
import { randomUUID } from 'node:crypto';
import { actionsRegistryServiceRef } from '@backstage/backend-plugin-api/alpha';
import { catalogServiceRef } from '@backstage/plugin-catalog-node';
import { signalsServiceRef } from '@backstage/plugin-signals-node';
import { meshPermissions } from '@tailmesh/plugin-mesh-common';
import {
  clusterAccessFromSupplier,
  meshClustersSupplierServiceRef,
} from '@tailmesh/plugin-mesh-node';
import { registerMeshActions } from './actions';
import { createRouter } from './router';
import {
  AuthorizationCache,
  authorizationCacheMsFromConfig,
} from './service/AuthorizationCache';
import { MeshStateCache } from './service/cache/MeshStateCache';
import { HistoryRecorder } from './service/HistoryRecorder';
import {
  HistoryStore,
  historyRetentionDaysFromConfig,
} from './service/HistoryStore';
import { MeshAuditor } from './service/MeshAuditor';
import { MeshSignalPublisher } from './service/MeshSignalPublisher';
import { MeshStatusService, placementOf } from './service/MeshStatusService';
import { createTailnetPolicy } from './service/SharedTailnetPolicy';

// One replica records the history; another takes over within this long of its last recording.
const HISTORY_LEASE_SECONDS = 15;

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
        scheduler: coreServices.scheduler,
        catalog: catalogServiceRef,
        actionsRegistry: actionsRegistryServiceRef,
        clustersSupplier: meshClustersSupplierServiceRef,
        signals: signalsServiceRef,
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
        scheduler,
        catalog,
        actionsRegistry,
        clustersSupplier,
        signals,
      }) {
        permissionsRegistry.addPermissions(meshPermissions);

        // The clusters of the supplier the scaffolder module's actions use too.
        // It follows the supplier: clusters added or removed are watched, or no longer, live.
        const clusters = await clusterAccessFromSupplier(
          clustersSupplier,
          config,
          { logger },
        );
        let placement = placementOf(clusters.list());
        clusters.onChange(() => {
          placement = placementOf(clusters.list());
        });
        const cache = MeshStateCache.fromConfig(config, { logger, clusters });
        const retentionDays = historyRetentionDaysFromConfig(config);
        // Runs the plugin's migrations: the policy's table is made here too.
        const history = await HistoryStore.create({ database });
        const policy = await createTailnetPolicy({ config, logger, database });
        const auditor = new MeshAuditor({ state: cache, policy });
        const recorder = new HistoryRecorder({
          audit: auditor,
          store: history,
          logger,
          lease: {
            holder: randomUUID(),
            durationMs: HISTORY_LEASE_SECONDS * 1000,
          },
        });
        // Open views refresh on these instead of polling (where the app has signals).
        const publisher = new MeshSignalPublisher({
          state: cache,
          policy,
          signals,
          logger,
        });
        const service = new MeshStatusService({
          state: cache,
          audit: auditor,
          policy,
          catalog,
          configured: { get: name => placement.get(name) },
        });

        // The cache and the policy file are read in the background: startup never waits on a
        // cluster or on Tailscale, and until they are read the rows say `syncing`/`pending`.
        lifecycle.addStartupHook(() => {
          auditor.start();
          recorder.start();
          publisher.start();
          cache.start();
          policy.start();
        });
        // Once per deployment (a global task is claimed through the database).
        await scheduler.scheduleTask({
          id: 'mesh-history-retention',
          scope: 'global',
          frequency: { hours: 1 },
          timeout: { minutes: 10 },
          initialDelay: { minutes: 1 },
          fn: async () => {
            const before = new Date(
              Date.now() - retentionDays * 24 * 3600 * 1000,
            ).toISOString();
            const deleted = await history.deleteOlderThan(before);
            if (deleted > 0) {
              logger.info(
                `Deleted ${deleted} mesh history events older than ${retentionDays} days`,
              );
            }
          },
        });
        lifecycle.addShutdownHook(async () => {
          clusters.close();
          await policy.stop();
          await cache.stop();
          await recorder.stop();
          publisher.stop();
          auditor.stop();
        });

        registerMeshActions(actionsRegistry, service);
        httpRouter.use(
          await createRouter({
            service,
            history,
            httpAuth,
            permissions,
            authorizationCache: new AuthorizationCache({
              ttlMs: authorizationCacheMsFromConfig(config),
            }),
          }),
        );
        httpRouter.addAuthPolicy({ path: '/health', allow: 'unauthenticated' });
      },
    });
  },
});
