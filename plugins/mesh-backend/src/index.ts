/**
 * The mesh backend: every cluster's mesh state, kept current by watches, served over HTTP with
 * its membership audit and history.
 *
 * @packageDocumentation
 */
export { meshPlugin as default } from './plugin';
export { MeshStateCache } from './service/cache/MeshStateCache';
export type {
  MeshStateCacheOptions,
  MeshStateChange,
  MeshStateListener,
} from './service/cache/MeshStateCache';
export type { WatchedCluster } from './service/cache/ClusterWatcher';
export type { BackoffOptions } from './service/cache/ResourceWatch';
export { HistoryStore } from './service/HistoryStore';
export type {
  HistoryChanges,
  HistoryLease,
  NewHistoryEvent,
  RecordResult,
  RecordedState,
} from './service/HistoryStore';
