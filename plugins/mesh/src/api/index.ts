export { meshApiRef } from './MeshApi';
export type { MeshApi, MeshHistoryOptions } from './MeshApi';
export { MeshClient } from './MeshClient';
