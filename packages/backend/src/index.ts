/**
 * The local Tailmesh product's backend: catalog, scaffolder with the mesh actions, the mesh
 * backend and its MCP tools, two sign-ins (guest, who reads the mesh; a mesh admin, who may change
 * it) and the permission policy that tells them apart. It also serves the built app.
 */
import { createBackend } from '@backstage/backend-defaults';
import { authModuleLocalAdminProvider } from './modules/localAdminProvider';
import { permissionModuleMeshAdminsPolicy } from './modules/meshAdminsPolicy';

const backend = createBackend();

backend.add(import('@backstage/plugin-app-backend'));

backend.add(import('@backstage/plugin-auth-backend'));
backend.add(import('@backstage/plugin-auth-backend-module-guest-provider'));
backend.add(authModuleLocalAdminProvider);

backend.add(import('@backstage/plugin-catalog-backend'));
backend.add(
  import('@backstage/plugin-catalog-backend-module-scaffolder-entity-model'),
);

// Everything allowed but the mesh actions, which only mesh admins may run (see the README).
backend.add(import('@backstage/plugin-permission-backend'));
backend.add(permissionModuleMeshAdminsPolicy);

backend.add(import('@backstage/plugin-scaffolder-backend'));
backend.add(import('@tailmesh/plugin-scaffolder-backend-module-mesh'));

backend.add(import('@tailmesh/plugin-mesh-backend'));
// Pushes the mesh backend's change signals to open mesh views (they poll without it).
backend.add(import('@backstage/plugin-signals-backend'));

// The mesh's read-only answers (status, who serves an entity and how each cluster reaches it,
// the audit) as MCP tools for AI agents, at /api/mcp-actions/v1; see backend.actions.pluginSources.
backend.add(import('@backstage/plugin-mcp-actions-backend'));

backend.start();
