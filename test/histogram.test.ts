import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { histogramSeries, latencyByRoute, quantile } from '../src/metrics/histogram';

const scrape = (slowCount: number) => `# HELP http_request_duration_seconds Request latency
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{route="/fast",status_code="200",le="0.1"} 100
http_request_duration_seconds_bucket{route="/fast",status_code="200",le="1"} 100
http_request_duration_seconds_bucket{route="/fast",status_code="200",le="+Inf"} 100
http_request_duration_seconds_sum{route="/fast",status_code="200"} 2
http_request_duration_seconds_count{route="/fast",status_code="200"} 100
http_request_duration_seconds_bucket{route="/slow",status_code="200",le="0.1"} 0
http_request_duration_seconds_bucket{route="/slow",status_code="200",le="1"} 0
http_request_duration_seconds_bucket{route="/slow",status_code="200",le="2.5"} ${slowCount}
http_request_duration_seconds_bucket{route="/slow",status_code="200",le="+Inf"} ${slowCount}
http_request_duration_seconds_sum{route="/slow",status_code="200"} ${slowCount * 2}
http_request_duration_seconds_count{route="/slow",status_code="200"} ${slowCount}
`;

describe('latency quantiles from a Prometheus histogram', () => {
  test('interpolate inside the bucket the rank falls in, as histogram_quantile does', () => {
    assert.equal(quantile(0.5, { '0.1': 0, '1': 10, '+Inf': 10 }), 0.55);
    assert.equal(quantile(0.95, { '0.1': 100, '+Inf': 100 }), 0.095);
    assert.equal(quantile(0.95, { '0.5': 0, '+Inf': 10 }), 0.5, 'past the last finite bucket: its upper bound');
    assert.equal(quantile(0.95, { '+Inf': 0 }), undefined, 'no observations, no quantile');
  });

  test('p95 per route over the increase between two scrapes, slowest first, routes without requests left out', async () => {
    const before = await histogramSeries(scrape(10), 'http_request_duration_seconds');
    const after = await histogramSeries(scrape(30), 'http_request_duration_seconds');
    const routes = latencyByRoute(before, after);
    assert.deepEqual(routes.map((r) => r.route), ['/slow'], '/fast had no request in the window');
    assert.equal(routes[0]!.requests, 20);
    assert.ok(Math.abs(routes[0]!.p95! - 2.425) < 1e-9, String(routes[0]!.p95));
    assert.deepEqual(latencyByRoute([], after).map((r) => r.route), ['/slow', '/fast']);
    assert.deepEqual(await histogramSeries('# TYPE other counter\nother 1\n', 'http_request_duration_seconds'), []);
  });
});
