/** Reads a Prometheus text exposition: the value of a series given exactly as exposed (`name{label="…"}`), or undefined. */
export function metricValues(text: string): (series: string) => number | undefined {
  return (series) => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };
}
