import { createBackendModule } from '@backstage/backend-plugin-api';
import { NotAllowedError } from '@backstage/errors';
import {
  authProvidersExtensionPoint,
  createProxyAuthProviderFactory,
  createProxyAuthenticator,
} from '@backstage/plugin-auth-node';
import { MESH_ADMINS_GROUP } from './meshAdminsPolicy';

/** The local product's mesh admin (examples/org.yaml): a member of group mesh-admins. */
export const LOCAL_ADMIN_USER = 'user:default/mesh-admin';

/**
 * A second sign-in of the local product, beside guest: "Enter as mesh admin" signs in as
 * user:default/mesh-admin, so the product shows both sides of its permission policy (the guest
 * reads the mesh; the admin joins and removes clusters). Like Backstage's guest provider
 * (@backstage/plugin-auth-backend-module-guest-provider, authenticator.ts), it asks for no
 * credential at all, so it refuses to work outside a development environment.
 */
const localAdminAuthenticator = createProxyAuthenticator({
  defaultProfileTransform: async () => ({ profile: {} }),
  initialize: () => ({ disabled: process.env.NODE_ENV !== 'development' }),
  async authenticate(_, { disabled }) {
    if (disabled) {
      throw new NotAllowedError(
        'The local-admin sign-in signs anyone in as a mesh admin: it only works in development',
      );
    }
    return { result: {} };
  },
});

export const authModuleLocalAdminProvider = createBackendModule({
  pluginId: 'auth',
  moduleId: 'local-admin-provider',
  register(reg) {
    reg.registerInit({
      deps: { providers: authProvidersExtensionPoint },
      async init({ providers }) {
        providers.registerProvider({
          providerId: 'local-admin',
          factory: createProxyAuthProviderFactory({
            authenticator: localAdminAuthenticator,
            // The catalog's user, so its groups (mesh-admins) are in the token; until the catalog
            // has read examples/org.yaml (just after start), the same claims directly, as the
            // guest provider's resolver falls back (resolvers.ts of its module).
            signInResolver: async (_, ctx) => {
              try {
                return await ctx.signInWithCatalogUser({
                  entityRef: LOCAL_ADMIN_USER,
                });
              } catch {
                return ctx.issueToken({
                  claims: {
                    sub: LOCAL_ADMIN_USER,
                    ent: [LOCAL_ADMIN_USER, MESH_ADMINS_GROUP],
                  },
                });
              }
            },
          }),
        });
      },
    });
  },
});
