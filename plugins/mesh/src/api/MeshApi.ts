import { createApiRef } from '@backstage/core-plugin-api';
import {
  ClustersResponse,
  HistoryResponse,
  MembershipResponse,
  MeshServiceRef,
  ServiceStatusResponse,
} from '@tailmesh/plugin-mesh-common';

/**
 * Options of {@link MeshApi.getHistory}.
 *
 * @public
 */
export interface MeshHistoryOptions {
  /** Page size; the backend caps it. */
  limit?: number;
  /** The `nextCursor` of the previous page, to read older events. */
  before?: string;
}

/**
 * The mesh backend's status API (`/api/mesh`).
 *
 * @public
 */
export interface MeshApi {
  /** Every configured cluster, member or not, with its sync health. */
  getClusters(): Promise<ClustersResponse>;
  /** The N x N membership matrix of the members and the audit's findings. */
  getMembership(): Promise<MembershipResponse>;
  /** One Service, looked up by namespace and name in every cluster. */
  getServiceStatus(service: MeshServiceRef): Promise<ServiceStatusResponse>;
  /** The Service a catalog entity names through its annotations. */
  getEntityStatus(entityRef: string): Promise<ServiceStatusResponse>;
  /** One page of membership history, newest first. */
  getHistory(options?: MeshHistoryOptions): Promise<HistoryResponse>;
}

/**
 * Reference to the {@link MeshApi}.
 *
 * @public
 */
export const meshApiRef = createApiRef<MeshApi>({
  id: 'plugin.mesh.service',
});
