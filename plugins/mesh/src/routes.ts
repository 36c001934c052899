import { createRouteRef } from '@backstage/core-plugin-api';

/**
 * The mesh page, mounted by the app (by convention at `/mesh`).
 *
 * @public
 */
export const rootRouteRef = createRouteRef({
  id: 'mesh',
});
