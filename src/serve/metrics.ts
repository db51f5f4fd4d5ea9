/** The server's Prometheus metrics (prom-client), on a registry of its own. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface ServerMetrics {
  registry: Registry;
  requests: Counter<'route' | 'code'>;
  latency: Histogram<'route'>;
  batchRows: Histogram<'model'>;
  batchRequests: Histogram<'model'>;
  queueDepth: Gauge<'model'>;
  rows: Counter<'model' | 'exit'>;
  macs: Counter<'model'>;
  baselineMacs: Gauge<'model'>;
  meanMacs: Gauge<'model'>;
}

/** Powers of two up to `max` and one past it: batch sizes land on their own bucket. */
function powersOfTwo(max: number): number[] {
  const out: number[] = [];
  for (let b = 1; b < max * 2; b *= 2) out.push(b);
  return out;
}

/**
 * `queueDepth(model)` is read at each scrape; `macsSoFar(model)` gives the MACs and rows answered
 * so far, from which the mean per row is worked out at each scrape.
 */
export function createMetrics(
  models: string[],
  maxBatch: number,
  queueDepth: (model: string) => number,
  meanMacs: (model: string) => number,
  defaults = true,
): ServerMetrics {
  const registry = new Registry();
  if (defaults) collectDefaultMetrics({ register: registry, prefix: 'branchynet_' });
  const registers = [registry];
  return {
    registry,
    requests: new Counter({
      name: 'branchynet_requests_total',
      help: 'HTTP requests answered, by route and status code',
      labelNames: ['route', 'code'],
      registers,
    }),
    latency: new Histogram({
      name: 'branchynet_request_duration_seconds',
      help: 'Time from receiving a request to sending its answer, by route',
      labelNames: ['route'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    batchRows: new Histogram({
      name: 'branchynet_batch_rows',
      help: 'Images (rows) per batch run through early exit',
      labelNames: ['model'],
      buckets: powersOfTwo(maxBatch),
      registers,
    }),
    batchRequests: new Histogram({
      name: 'branchynet_batch_requests',
      help: 'Requests sharing one batch',
      labelNames: ['model'],
      buckets: powersOfTwo(maxBatch),
      registers,
    }),
    queueDepth: new Gauge({
      name: 'branchynet_queue_depth',
      help: 'Requests waiting for a batch',
      labelNames: ['model'],
      registers,
      collect() {
        for (const m of models) this.set({ model: m }, queueDepth(m));
      },
    }),
    rows: new Counter({
      name: 'branchynet_rows_total',
      help: 'Images answered, by model and the exit that answered (1-based)',
      labelNames: ['model', 'exit'],
      registers,
    }),
    macs: new Counter({
      name: 'branchynet_macs_total',
      help: 'Multiply-accumulates spent on the images answered',
      labelNames: ['model'],
      registers,
    }),
    baselineMacs: new Gauge({
      name: 'branchynet_baseline_macs_per_row',
      help: 'Multiply-accumulates per image of the baseline network (the trunk without exits)',
      labelNames: ['model'],
      registers,
    }),
    meanMacs: new Gauge({
      name: 'branchynet_mean_macs_per_row',
      help: 'Mean multiply-accumulates per image answered so far',
      labelNames: ['model'],
      registers,
      collect() {
        for (const m of models) this.set({ model: m }, meanMacs(m));
      },
    }),
  };
}
