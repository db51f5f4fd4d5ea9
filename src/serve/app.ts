/**
 * The HTTP server (fastify): the Open Inference Protocol's health, metadata and infer routes over
 * one batcher per model, plus /metrics. Every error answers `{"error": "<one line>"}`.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { EarlyExitModel } from '../api/early_exit_model.js';
import { oneLine, UserError } from '../errors.js';
import { earlyExitAsync } from '../runtime/early_exit.js';
import { Batcher, QueueFullError, RequestTimeoutError, type BatchRun } from './batcher.js';
import { createMetrics, type ServerMetrics } from './metrics.js';
import type { ModelShape } from './protocol.js';
import { BINARY_HEADER, modelMetadata, outputTensors, parseInferRequest, parseJson, splitBody } from './protocol.js';

export interface ServedModel {
  /** The name in URLs (/v2/models/{name}). */
  name: string;
  model: EarlyExitModel;
  /** Serve the baseline network (the trunk alone, no early exits) instead of early exit. */
  baseline?: boolean;
}

export interface ServerOptions {
  /** Rows a batch takes at most (default 256). */
  maxBatch?: number;
  /** How long a request waits for others to batch with, in ms (default 2). */
  maxDelayMs?: number;
  /** Requests that may wait per model; more answer 503 (default 1024). */
  maxQueue?: number;
  /** Per-request limit from queueing to answer, in ms; late answers are 504 (default 30000; 0: none). */
  timeoutMs?: number;
  /** Largest request body, in bytes (default 16 MiB). */
  bodyLimit?: number;
  /** Process metrics (memory, CPU, event loop) in /metrics too (default true). */
  processMetrics?: boolean;
}

export const SERVER_DEFAULTS: Required<ServerOptions> = {
  maxBatch: 256,
  maxDelayMs: 2,
  maxQueue: 1024,
  timeoutMs: 30_000,
  bodyLimit: 16 * 1024 * 1024,
  processMetrics: true,
};

/** An error with the HTTP status it answers. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

interface Entry {
  served: ServedModel;
  shape: ModelShape;
  batcher: Batcher;
  thresholds: number[];
  macsPerExit: number[];
  rowsAnswered: number;
  macsSpent: number;
}

function entryOf(served: ServedModel, options: Required<ServerOptions>, metrics: () => ServerMetrics): Entry {
  const { model, name } = served;
  const macs = model.macs();
  const baseline = served.baseline ?? false;
  let run: BatchRun;
  let thresholds: number[];
  if (baseline) {
    const runner = model.runners.baseline;
    if (!runner) throw new UserError(`${name}: the model has no baseline network to serve`, { option: 'baseline' });
    thresholds = [];
    run = (images, count) => earlyExitAsync(runner, images, count, [], options.maxBatch, { logits: true });
  } else {
    const own = model.thresholds;
    if (!own)
      throw new UserError(`${name}: the model has no calibrated thresholds; calibrate it (branchynet calibrate)`, {
        option: 'location',
      });
    thresholds = own;
    run = (images, count, t) =>
      model.exitResults(images, count, { batchSize: options.maxBatch, thresholds: t, logits: true });
  }
  const [h, w, c] = model.inputShape;
  const shape: ModelShape = {
    name,
    inputShape: model.inputShape,
    classes: model.classNames.length,
    exits: baseline ? 1 : model.exits,
  };
  const batcher = new Batcher(run, {
    maxBatch: options.maxBatch,
    maxDelayMs: options.maxDelayMs,
    maxQueue: options.maxQueue,
    timeoutMs: options.timeoutMs,
    imageSize: h * w * c,
    classes: shape.classes,
    onBatch: (rows, requests) => {
      metrics().batchRows.observe({ model: name }, rows);
      metrics().batchRequests.observe({ model: name }, requests);
    },
  });
  const macsPerExit = baseline ? [macs.baseline] : macs.perExit;
  return { served, shape, batcher, thresholds, macsPerExit, rowsAnswered: 0, macsSpent: 0 };
}

function routeOf(request: FastifyRequest): string {
  return request.routeOptions.url ?? 'unmatched';
}

/**
 * Builds the server over loaded models (not yet listening). `close()` stops accepting, answers
 * the requests in flight, then returns; the models stay the caller's to dispose.
 */
export function buildServer(models: ServedModel[], options: ServerOptions = {}): FastifyInstance {
  const settings = { ...SERVER_DEFAULTS, ...options };
  const names = models.map((m) => m.name);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) throw new UserError(`two models are named '${twice}'; give each its own --name`, { option: 'name' });
  const entries = new Map<string, Entry>();
  const metrics: ServerMetrics = createMetrics(
    names,
    settings.maxBatch,
    (name) => entries.get(name)!.batcher.queued,
    (name) => {
      const e = entries.get(name)!;
      return e.rowsAnswered === 0 ? 0 : e.macsSpent / e.rowsAnswered;
    },
    settings.processMetrics,
  );
  for (const served of models)
    entries.set(
      served.name,
      entryOf(served, settings, () => metrics),
    );
  for (const [name, e] of entries) metrics.baselineMacs.set({ model: name }, e.served.model.macs().baseline);

  const app = Fastify({ bodyLimit: settings.bodyLimit, return503OnClosing: true, forceCloseConnections: 'idle' });
  let closing = false;

  // Bodies are read as bytes whatever their type: the JSON part's length may come in a header
  // (the binary extension), and malformed JSON then gets the protocol's error answer.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  app.addHook('onResponse', async (request, reply) => {
    const route = routeOf(request);
    metrics.requests.inc({ route, code: String(reply.statusCode) });
    metrics.latency.observe({ route }, reply.elapsedTime / 1000);
  });
  app.addHook('preClose', async () => {
    closing = true;
  });
  // While draining, each answer closes its connection: a kept-alive one would hold the close up.
  app.addHook('onSend', async (_request, reply) => {
    if (closing) void reply.header('connection', 'close');
  });
  app.addHook('onClose', async () => {
    await Promise.all([...entries.values()].map((e) => e.batcher.idle()));
  });

  app.setErrorHandler((error: Error & { statusCode?: number }, request, reply) => {
    let status = 500;
    if (error instanceof UserError) status = 400;
    else if (error instanceof QueueFullError) {
      status = 503;
      void reply.header('retry-after', '1');
    } else if (error instanceof RequestTimeoutError) status = 504;
    else if (typeof error.statusCode === 'number' && error.statusCode >= 400) status = error.statusCode;
    if (status === 500) request.log.error(error);
    const message = status === 500 ? `internal error: ${error.message}` : error.message;
    return reply.code(status).send({ error: oneLine(message) });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: oneLine(`no route ${request.method} ${request.url}`, 200) }),
  );

  const lookup = (name: string, version?: string): Entry => {
    const e = entries.get(name);
    if (!e) throw new HttpError(404, oneLine(`unknown model '${name}'; this server serves ${names.join(', ')}`, 300));
    if (version !== undefined && version !== '1')
      throw new HttpError(404, oneLine(`model '${name}' has version 1 only, got '${version}'`, 200));
    return e;
  };

  app.get('/v2', async () => ({ name: 'branchynet', version: '1', extensions: ['binary_tensor_data'] }));
  app.get('/v2/health/live', async () => ({ live: true }));
  app.get('/v2/health/ready', async (_request, reply) =>
    closing ? reply.code(503).send({ ready: false }) : { ready: true },
  );

  type ModelParams = { Params: { name: string; version?: string } };
  const metadata = async (request: FastifyRequest<ModelParams>) => {
    const e = lookup(request.params.name, request.params.version);
    const { model } = e.served;
    return modelMetadata(e.shape, {
      thresholds: e.shape.exits > 1 ? e.thresholds : null,
      classNames: model.classNames,
      mode: e.served.baseline ? 'baseline' : 'early-exit',
      runtime: model.runtime,
      macs: { per_exit: e.macsPerExit, baseline: model.macs().baseline },
    });
  };
  app.get('/v2/models/:name', metadata);
  app.get('/v2/models/:name/versions/:version', metadata);
  const ready = async (request: FastifyRequest<ModelParams>, reply: FastifyReply) => {
    lookup(request.params.name, request.params.version);
    return closing ? reply.code(503).send({ ready: false }) : { name: request.params.name, ready: true };
  };
  app.get('/v2/models/:name/ready', ready);
  app.get('/v2/models/:name/versions/:version/ready', ready);

  const infer = async (request: FastifyRequest<ModelParams>) => {
    const e = lookup(request.params.name, request.params.version);
    const header = request.headers[BINARY_HEADER];
    const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    const { json, binary } = splitBody(body, typeof header === 'string' ? header : undefined);
    const parsed = parseInferRequest(parseJson(json), binary, e.shape);
    const thresholds = parsed.thresholds ?? e.thresholds;
    const answers = await e.batcher.submit(e.served.model.preprocess(parsed.pixels), parsed.count, thresholds);
    const perExit = new Array<number>(e.macsPerExit.length).fill(0);
    for (const exit of answers.exitTaken) perExit[exit - 1]++;
    perExit.forEach((n, k) => {
      if (n === 0) return;
      metrics.rows.inc({ model: e.shape.name, exit: String(k + 1) }, n);
      e.macsSpent += n * e.macsPerExit[k];
    });
    metrics.macs.inc(
      { model: e.shape.name },
      perExit.reduce((s, n, k) => s + n * e.macsPerExit[k], 0),
    );
    e.rowsAnswered += parsed.count;
    return {
      model_name: e.shape.name,
      model_version: '1',
      ...(parsed.id === undefined ? {} : { id: parsed.id }),
      parameters: e.shape.exits > 1 ? { thresholds } : {},
      outputs: outputTensors(answers, parsed.count, e.shape.classes, parsed.outputs),
    };
  };
  app.post('/v2/models/:name/infer', infer);
  app.post('/v2/models/:name/versions/:version/infer', infer);

  app.get('/metrics', async (_request, reply) => {
    const text = await metrics.registry.metrics();
    return reply.header('content-type', metrics.registry.contentType).send(text);
  });
  return app;
}
