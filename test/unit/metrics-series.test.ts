/**
 * The series mappings' pure half: Istio's and the model servers' series become the router's names,
 * labels and units. Against real Prometheus and real servers: test/integration/prometheus-series.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { parsePlatformConfig } from '../../workers/config';
import { snapshotFromSamples } from '../../serving/metrics/scrape';
import { seriesMappings } from '../../serving/metrics/series';

const v = (metric: Record<string, string>, value: number) => ({
  metric,
  value: [0, String(value)] as [number, string],
});

describe('series mappings', () => {
  it('istio: destination_version is the variant, response codes their class, milliseconds seconds', () => {
    const q = seriesMappings.istio.query('fraud');
    expect(q).toContain('reporter="destination"');
    expect(q).toContain('destination_app="fraud"');
    const samples = seriesMappings.istio.samples('fraud', [
      v({ __name__: 'istio_requests_total', destination_version: '7', response_code: '200' }, 90),
      v({ __name__: 'istio_requests_total', destination_version: '7', response_code: '503' }, 6),
      v({ __name__: 'istio_requests_total', destination_version: '7', response_code: '0' }, 4),
      v({ __name__: 'istio_requests_total', destination_version: 'unknown', response_code: '200' }, 50),
      v({ __name__: 'istio_request_duration_milliseconds_bucket', destination_version: '7', le: '25' }, 60),
      v(
        { __name__: 'istio_request_duration_milliseconds_bucket', destination_version: '7', le: '+Inf' },
        100,
      ),
      v({ __name__: 'istio_request_duration_milliseconds_sum', destination_version: '7' }, 2500),
      v({ __name__: 'istio_request_duration_milliseconds_count', destination_version: '7' }, 100),
    ]);
    expect(samples).toContainEqual({
      name: 'runway_router_request_duration_seconds_bucket',
      labels: { model: 'fraud', variant: 'v7', le: '0.025' },
      value: 60,
    });
    expect(samples).toContainEqual({
      name: 'runway_router_request_duration_seconds_sum',
      labels: { model: 'fraud', variant: 'v7' },
      value: 2.5,
    });
    const snap = snapshotFromSamples('fraud', samples);
    expect(Object.keys(snap.variants)).toEqual(['v7']); // "unknown" (a pod outside runway) is left out
    expect(snap.variants.v7!.requests).toBe(100);
    expect(snap.variants.v7!.errors).toBe(10); // 503s and resets
  });

  it('server: version is the variant, failure an error', () => {
    const snap = snapshotFromSamples(
      'fraud',
      seriesMappings.server.samples('fraud', [
        v({ __name__: 'runway_server_requests_total', version: '2', status: 'success' }, 40),
        v({ __name__: 'runway_server_requests_total', version: '2', status: 'failure' }, 2),
      ]),
    );
    expect(snap.variants.v2!.requests).toBe(42);
    expect(snap.variants.v2!.errors).toBe(2);
  });

  it('is chosen in the platform config, for the prometheus source only', () => {
    expect(
      parsePlatformConfig({ metrics: { source: 'prometheus', url: 'http://p:9090', series: 'istio' } })
        .metrics.series,
    ).toBe('istio');
    expect(() =>
      parsePlatformConfig({ metrics: { source: 'prometheus', url: 'http://p:9090', series: 'envoy' } }),
    ).toThrow(/metrics\.series: Invalid option: expected one of "router"\|"server"\|"istio"/);
    expect(() => parsePlatformConfig({ metrics: { source: 'scrape', series: 'server' } })).toThrow(
      /metrics\.series: metrics\.series is read only by metrics\.source "prometheus"/,
    );
  });
});
