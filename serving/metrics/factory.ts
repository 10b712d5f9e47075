/**
 * The one place that builds the MetricsSource the platform config names (`metrics.source`). A new
 * source is a file beside these and a case here (docs/extending.md).
 */
import type { Logger } from '../../common/log';
import { ConfigError, METRICS_SOURCES, type PlatformConfig } from '../../workers/config';
import { PrometheusMetricsSource } from './prometheus';
import { ScrapeMetricsSource } from './scrape';
import type { MetricsSource } from './source';

/** `routerUrl`: the runway router's base URL, which `scrape` reads when metrics.url is unset. */
export function createMetricsSource(
  metrics: PlatformConfig['metrics'],
  routerUrl: string | undefined,
  logger: Logger,
): MetricsSource {
  const source: string = metrics.source;
  switch (metrics.source) {
    case 'scrape': {
      const url = metrics.url ?? routerUrl;
      if (!url) {
        throw new ConfigError(
          'metrics.url: metrics.source "scrape" reads a runway router\'s /metrics; set metrics.url or router.adminUrl',
        );
      }
      return new ScrapeMetricsSource({ url });
    }
    case 'prometheus':
      if (!metrics.url) {
        throw new ConfigError(
          'metrics.url: metrics.source "prometheus" needs the server\'s URL (e.g. http://127.0.0.1:9090)',
        );
      }
      return new PrometheusMetricsSource({
        url: metrics.url,
        logger,
        series: metrics.series,
        startupWaitMs: (metrics.startupWaitSeconds ?? 60) * 1000,
      });
    default:
      throw new ConfigError(
        `metrics.source: expected one of ${METRICS_SOURCES.map((s) => `"${s}"`).join(', ')}, got "${source}"`,
      );
  }
}
