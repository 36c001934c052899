import { createApp } from '@backstage/frontend-defaults';
import catalogPlugin from '@backstage/plugin-catalog/alpha';
import catalogGraphPlugin from '@backstage/plugin-catalog-graph/alpha';
import orgPlugin from '@backstage/plugin-org/alpha';
import scaffolderPlugin from '@backstage/plugin-scaffolder/alpha';
import signalsPlugin from '@backstage/plugin-signals/alpha';
import userSettingsPlugin from '@backstage/plugin-user-settings/alpha';
import meshPlugin from '@tailmesh/plugin-mesh/alpha';
import { appModule } from './modules/app';

/**
 * The local product's app, on Backstage's new frontend system (what `@backstage/create-app`
 * makes today). The features are listed, not discovered (`app.packages`), so the app holds
 * exactly these plugins: the mesh plugin brings its page with its nav item, the entity card on
 * annotated services and the Join template's cluster picker. The legacy exports of
 * `@tailmesh/plugin-mesh` are exercised by the adoption test's `--legacy` app (test/adoption).
 */
export default createApp({
  features: [
    catalogPlugin,
    catalogGraphPlugin,
    orgPlugin,
    scaffolderPlugin,
    userSettingsPlugin,
    // The signal API the mesh views refresh on, instead of polling.
    signalsPlugin,
    meshPlugin,
    appModule,
  ],
});
