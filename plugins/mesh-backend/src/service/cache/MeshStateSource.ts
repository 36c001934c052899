import { MeshStateCache } from './MeshStateCache';

/**
 * The part of the watch cache the status and the audit are built from: reads from memory only.
 * A module of its own, so that the status service and the auditor both depend on it instead of on
 * each other.
 */
export type MeshStateSource = Pick<
  MeshStateCache,
  | 'clusters'
  | 'snapshots'
  | 'health'
  | 'serviceEndpoints'
  | 'nodeLocalities'
  | 'onChange'
>;
