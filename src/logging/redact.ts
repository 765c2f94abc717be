/** Connection URLs as they may be shown: passwords never reach a terminal or a log. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    // libpq-style URLs may carry the password as a query parameter.
    if (parsed.searchParams.has('password')) parsed.searchParams.set('password', '***');
    return parsed.toString();
  } catch {
    return '(an unparseable URL)';
  }
}

/** Every URL in a text (a command's output, a log line) with its password redacted, the rest as it was. */
export function redactUrlsIn(text: string): string {
  return text.replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]+/gi, (url) => (/[:@]/.test(url.slice(url.indexOf('//') + 2)) ? redactUrl(url) : url));
}
