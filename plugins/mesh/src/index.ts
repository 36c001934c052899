/**
 * The mesh frontend: the entity mesh card, the admin mesh page and the scaffolder cluster picker.
 *
 * @packageDocumentation
 */

export {
  meshPlugin,
  MeshPage,
  EntityMeshCard,
  MeshClusterPickerFieldExtension,
} from './plugin';
export type { MeshPageProps } from './components/MeshPage/MeshPage';
export type { EntityMeshCardProps } from './components/EntityMeshCard/EntityMeshCard';
export { meshApiRef, MeshClient } from './api';
export type { MeshApi, MeshHistoryOptions } from './api';
export { rootRouteRef } from './routes';
export { isMeshAvailable } from '@tailmesh/plugin-mesh-common';
