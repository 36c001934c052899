/**
 * The local Tailmesh product's backend: catalog, scaffolder with the mesh actions, the mesh
 * backend and its MCP tools, guest sign-in and an allow-all permission policy. It also serves the
 * built app.
 */
import { createBackend } from '@backstage/backend-defaults';

const backend = createBackend();

backend.add(import('@backstage/plugin-app-backend'));

backend.add(import('@backstage/plugin-auth-backend'));
backend.add(import('@backstage/plugin-auth-backend-module-guest-provider'));

backend.add(import('@backstage/plugin-catalog-backend'));
backend.add(
  import('@backstage/plugin-catalog-backend-module-scaffolder-entity-model'),
);

// The mesh routes are guarded by mesh permissions; a real deployment swaps this policy for its own.
backend.add(import('@backstage/plugin-permission-backend'));
backend.add(
  import('@backstage/plugin-permission-backend-module-allow-all-policy'),
);

backend.add(import('@backstage/plugin-scaffolder-backend'));
backend.add(import('@tailmesh/plugin-scaffolder-backend-module-mesh'));

backend.add(import('@tailmesh/plugin-mesh-backend'));
// Pushes the mesh backend's change signals to open mesh views (they poll without it).
backend.add(import('@backstage/plugin-signals-backend'));

// The mesh's read-only answers (status, who serves an entity and how each cluster reaches it,
// the audit) as MCP tools for AI agents, at /api/mcp-actions/v1; see backend.actions.pluginSources.
backend.add(import('@backstage/plugin-mcp-actions-backend'));

backend.start();
