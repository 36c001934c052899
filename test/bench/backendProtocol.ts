import { JsonObject } from '@backstage/types';
import { Entity } from '@backstage/catalog-model';

/** What the bench asks of the backend process (over IPC, so no secret is ever on a command line). */
export type ToBackend =
  | { type: 'start'; config: JsonObject; entities: Entity[] }
  | { type: 'memory' }
  | { type: 'cpu' }
  | { type: 'stop' };

/** Memory of the backend process; heap figures are taken right after a full garbage collection. */
export interface MemoryReading {
  rssBytes: number;
  heapUsedBytes: number;
  externalBytes: number;
}

export type FromBackend =
  | { type: 'loaded'; memory: MemoryReading }
  | { type: 'starting'; at: number }
  | { type: 'started'; at: number }
  | { type: 'memory'; memory: MemoryReading }
  /** CPU time (user + system) the process used so far, in microseconds. */
  | { type: 'cpu'; micros: number }
  | { type: 'stopped' }
  | { type: 'failed'; error: string };
