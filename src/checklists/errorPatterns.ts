/**
 * The daily check "new error patterns in the logs" (the runbook's "Check Sentry for new errors"), in code: the error
 * lines of a log (ERROR / FATAL lines, requests answered 5xx) grouped by their pattern — the line with its time,
 * addresses, numbers and ids taken out — and a pattern is new when it shows in the window but not before it in the
 * lines read. Pure.
 */
const ERROR_LINE = /\b(ERROR|FATAL)\b|\bstatus=5\d\d\b/;
/** Shown per pattern, cut so workflow history stays small. */
const EXAMPLE_MAX = 300;
const PATTERNS_MAX = 20;

export interface ErrorPattern {
  pattern: string;
  /** Lines of it in the window. */
  count: number;
  /** Not seen before the window in the lines read. */
  isNew: boolean;
  example: string;
}

export interface ErrorPatterns {
  container: string;
  exists: boolean;
  linesRead: number;
  windowStart: string;
  /** Error lines in the window. */
  errorLines: number;
  /** The window's patterns, new ones first, most frequent first (at most 20). */
  patterns: ErrorPattern[];
  newPatterns: number;
}

/** `2026-11-27T10:00:00.000Z GET /x duration 12ms status=500 user=alice` → `GET /x duration <n>ms status=500 user=<id>` */
export function patternOf(message: string): string {
  return message
    .replace(/\b\d{4}-\d\d-\d\dT[\d:.]+Z?\b/g, '<time>')
    .replace(/\b(?:\d{1,3}\.){3}\d{1,3}\b/g, '<ip>')
    .replace(/\b[0-9a-f]{8,}\b/gi, '<hex>')
    .replace(/\buser=\S+/g, 'user=<id>')
    .replace(/(?<!status=)\b\d+(\.\d+)?/g, '<n>')
    .trim();
}

/** Lines as `docker logs --timestamps` prints them: `<RFC 3339 time> <line>`. */
export function errorPatterns(container: string, lines: readonly string[], windowStartMs: number): ErrorPatterns {
  const before = new Set<string>();
  const inWindow = new Map<string, { count: number; example: string }>();
  let errorLines = 0;
  for (const line of lines) {
    const space = line.indexOf(' ');
    const at = Date.parse(line.slice(0, space));
    const message = line.slice(space + 1);
    if (!ERROR_LINE.test(message)) continue;
    const pattern = patternOf(message);
    if (!(at >= windowStartMs)) {
      before.add(pattern);
      continue;
    }
    errorLines += 1;
    const seen = inWindow.get(pattern);
    if (seen) seen.count += 1;
    else inWindow.set(pattern, { count: 1, example: message.slice(0, EXAMPLE_MAX) });
  }
  const patterns = [...inWindow.entries()]
    .map(([pattern, { count, example }]) => ({ pattern, count, isNew: !before.has(pattern), example }))
    .sort((a, b) => Number(b.isNew) - Number(a.isNew) || b.count - a.count);
  return {
    container,
    exists: true,
    linesRead: lines.length,
    windowStart: new Date(windowStartMs).toISOString(),
    errorLines,
    patterns: patterns.slice(0, PATTERNS_MAX),
    newPatterns: patterns.filter((p) => p.isNew).length,
  };
}
