/**
 * Runbook §7 "Investigate", in code: the backend's log lines of one client (`docker logs backend | grep <ip>`, but
 * matched on the line's client field, never a grep pattern built from a label) summarised for the timeline. Pure.
 * The backend's lines: `<time> <ip> <METHOD> <path> duration <ms>ms status=<status> user=<id>`, and
 * `<time> WARN Rate limit exceeded <ip>` / `<time> WARN Blocked <ip>` (the IP last).
 */
import { contains, parseNetwork, type IpNetwork } from './address';

export interface BackendLogEvidence {
  container: string;
  exists: boolean;
  /** Log lines read (the tail asked for). */
  linesRead: number;
  /** Lines of this client (or network). */
  matched: number;
  /** Request lines among them, by status. */
  requests: number;
  statuses: Record<string, number>;
  /** Users named on its requests (`user=`), at most 20. */
  users: string[];
  /** Its busiest paths, at most 10. */
  paths: Array<{ path: string; count: number }>;
  /** Answered 403 by the deny-list, 429 by the rate limiter. */
  blocked: number;
  rateLimited: number;
  firstSeen?: string;
  lastSeen?: string;
  /** Its last lines, each cut to 300 characters. */
  excerpt: string[];
}

const REQUEST = /^(\S+) (\S+) ([A-Z]+) (\S+) duration \S+ status=(\d{3}) user=(\S+)$/;
const WARN = /^(\S+) WARN (Rate limit exceeded|Blocked) (\S+)$/;

export function summarizeBackendLog(container: string, lines: string[], source: IpNetwork): Omit<BackendLogEvidence, 'exists'> {
  const ofSource = (token: string) => {
    const parsed = parseNetwork(token);
    return parsed.ok && contains(source, parsed.network);
  };
  const statuses: Record<string, number> = {};
  const users = new Set<string>();
  const paths = new Map<string, number>();
  const matchedLines: string[] = [];
  let requests = 0;
  let blocked = 0;
  let rateLimited = 0;
  let firstSeen: string | undefined;
  let lastSeen: string | undefined;
  for (const line of lines) {
    const request = REQUEST.exec(line);
    const warn = request ? null : WARN.exec(line);
    const time = request?.[1] ?? warn?.[1];
    if (request && ofSource(request[2]!)) {
      requests += 1;
      statuses[request[5]!] = (statuses[request[5]!] ?? 0) + 1;
      if (request[6] !== '-' && users.size < 20) users.add(request[6]!.slice(0, 100));
      const path = request[4]!.split('?')[0]!.slice(0, 200);
      paths.set(path, (paths.get(path) ?? 0) + 1);
    } else if (warn && ofSource(warn[3]!)) {
      if (warn[2] === 'Blocked') blocked += 1;
      else rateLimited += 1;
    } else continue;
    matchedLines.push(line);
    firstSeen ??= time;
    lastSeen = time;
  }
  return {
    container,
    linesRead: lines.length,
    matched: matchedLines.length,
    requests,
    statuses,
    users: [...users],
    paths: [...paths].sort((a, b) => b[1] - a[1]).slice(0, 10).map(([path, count]) => ({ path, count })),
    blocked,
    rateLimited,
    ...(firstSeen ? { firstSeen } : {}),
    ...(lastSeen ? { lastSeen } : {}),
    excerpt: matchedLines.slice(-5).map((l) => l.slice(0, 300)),
  };
}
