import type {
  HistoryResponse,
  MembershipHistoryEvent,
} from '@tailmesh/plugin-mesh-common';

/**
 * Every event `/api/mesh/history` stores, oldest first, read page by page through its cursor
 * with whatever client the caller has (`get` returns the parsed JSON of a GET).
 */
export async function allHistoryEvents(
  get: (path: string) => Promise<HistoryResponse>,
): Promise<MembershipHistoryEvent[]> {
  const out: MembershipHistoryEvent[] = [];
  let cursor: string | undefined;
  do {
    const page = await get(
      `/api/mesh/history?limit=100${cursor ? `&before=${encodeURIComponent(cursor)}` : ''}`,
    );
    out.push(...page.events);
    cursor = page.nextCursor;
  } while (cursor);
  return out.reverse();
}
