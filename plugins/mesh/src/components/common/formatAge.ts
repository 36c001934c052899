/**
 * How long ago an ISO 8601 time was, coarse enough to read at a glance ("12 s ago", "5 min ago",
 * "3 h ago", "2 d ago"). Times in the future (clock skew between browser and backend) read as
 * "just now" rather than as a negative age.
 */
export function formatAge(iso: string, now: Date = new Date()): string {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return 'at an unknown time';
  const seconds = Math.floor((now.getTime() - then) / 1000);
  if (seconds < 5) return 'just now';
  if (seconds < 60) return `${seconds} s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ago`;
  return `${Math.floor(hours / 24)} d ago`;
}
