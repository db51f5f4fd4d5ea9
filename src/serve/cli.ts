/** `branchynet serve`: loads the models, listens, and drains on SIGTERM / SIGINT. */
import cluster from 'node:cluster';
import { basename, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { EarlyExitModel, type RuntimeChoice } from '../api/early_exit_model.js';
import { UserError } from '../errors.js';
import { buildServer, SERVER_DEFAULTS, type ServedModel } from './app.js';

export const SERVE_USAGE = `usage: branchynet serve --model DIR [--model DIR2 ...] [options]

Serves models over HTTP with the Open Inference Protocol (KServe v2); see docs/serving.md.
  --model DIR          a model directory or an export directory (repeat to serve several)
  --name N             the name of the matching --model in URLs (repeat in the same order;
                       default: the directory's base name)
  --host H             address to listen on (default 127.0.0.1)
  --port P             port (default 8000; 0: any free port, printed on start)
  --max-batch N        images a batch takes at most (default ${SERVER_DEFAULTS.maxBatch})
  --max-delay-ms T     how long a request waits for others to batch with (default ${SERVER_DEFAULTS.maxDelayMs})
  --max-queue N        requests that may wait per model; more answer 503 (default ${SERVER_DEFAULTS.maxQueue})
  --timeout-ms T       per-request limit; later answers are 504 (default ${SERVER_DEFAULTS.timeoutMs}; 0: none)
  --body-limit-mb M    largest request body in MiB (default ${SERVER_DEFAULTS.bodyLimit / 1024 / 1024})
  --runtime R          auto (default), onnx or tfjs
  --threads N          ONNX Runtime intra-op threads per process (default 1)
  --workers N          processes sharing the port (node:cluster), each with its own models (default 1)
  --baseline           serve the baseline network (the trunk alone, no early exits), for comparison
`;

const OPTIONS = {
  model: { type: 'string', multiple: true },
  name: { type: 'string', multiple: true },
  host: { type: 'string' },
  port: { type: 'string' },
  'max-batch': { type: 'string' },
  'max-delay-ms': { type: 'string' },
  'max-queue': { type: 'string' },
  'timeout-ms': { type: 'string' },
  'body-limit-mb': { type: 'string' },
  runtime: { type: 'string' },
  threads: { type: 'string' },
  workers: { type: 'string' },
  baseline: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function number(raw: string | undefined, flag: string, fallback: number, min: number, integer = true): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || n < min || (integer && !Number.isInteger(n)))
    throw new UserError(`--${flag}: expected ${integer ? 'an integer' : 'a number'} >= ${min}, got '${raw}'`);
  return n;
}

const log = (line: string) => process.stderr.write(`branchynet: ${line}\n`);

export async function serveCommand(argv: string[]): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: OPTIONS, strict: true }));
  } catch (e) {
    throw new UserError(`${(e as Error).message} (see branchynet serve --help)`);
  }
  if (values.help) {
    process.stdout.write(SERVE_USAGE);
    return;
  }
  const dirs = values.model ?? [];
  if (dirs.length === 0) throw new UserError('--model DIR is required: the model directory to serve');
  const names = values.name ?? [];
  if (names.length > dirs.length)
    throw new UserError(`--name: ${names.length} names for ${dirs.length} models; give at most one per --model`);
  const runtime = (values.runtime ?? 'auto') as RuntimeChoice;
  if (!['auto', 'onnx', 'tfjs'].includes(runtime))
    throw new UserError(`--runtime: expected auto, onnx or tfjs, got '${runtime}'`);
  const port = number(values.port, 'port', 8000, 0);
  if (port > 65535) throw new UserError(`--port: expected 0-65535, got ${port}`);
  const host = values.host ?? '127.0.0.1';
  const threads = number(values.threads, 'threads', 1, 1);
  const workers = number(values.workers, 'workers', 1, 1);
  const options = {
    maxBatch: number(values['max-batch'], 'max-batch', SERVER_DEFAULTS.maxBatch, 1),
    maxDelayMs: number(values['max-delay-ms'], 'max-delay-ms', SERVER_DEFAULTS.maxDelayMs, 0, false),
    maxQueue: number(values['max-queue'], 'max-queue', SERVER_DEFAULTS.maxQueue, 1),
    timeoutMs: number(values['timeout-ms'], 'timeout-ms', SERVER_DEFAULTS.timeoutMs, 0),
    bodyLimit: Math.round(
      number(values['body-limit-mb'], 'body-limit-mb', SERVER_DEFAULTS.bodyLimit / 1024 / 1024, 0.001, false) *
        1024 *
        1024,
    ),
  };

  if (workers > 1 && cluster.isPrimary) return superviseWorkers(workers);

  const models: ServedModel[] = [];
  const disposeAll = () => Promise.all(models.map((m) => m.model.dispose()));
  try {
    for (const [i, dir] of dirs.entries()) {
      const model = await EarlyExitModel.load(dir, { runtime, threads, notice: cluster.isPrimary ? log : undefined });
      models.push({ name: names[i] ?? basename(resolve(dir)), model, baseline: values.baseline ?? false });
    }
  } catch (e) {
    await disposeAll();
    throw e;
  }
  const app = buildServer(models, options);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    if (cluster.isPrimary) log(`${signal}: answering the requests in flight, then exiting`);
    app
      .close()
      .then(disposeAll)
      .then(
        () => process.exit(0),
        (e: unknown) => {
          log(`shutdown failed: ${e instanceof Error ? e.message : String(e)}`);
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  const address = await app.listen({ host, port });
  const what = models.map((m) => `${m.name} (${m.baseline ? 'baseline' : 'early exit'}, ${m.model.runtime})`);
  if (cluster.isPrimary) log(`serving ${what.join(', ')} at ${address}`);
  else process.send?.({ listening: address });
}

/** The primary of --workers N: forks the workers, passes signals on, exits when they all have. */
function superviseWorkers(count: number): Promise<void> {
  return new Promise((resolveAll) => {
    let stopping = false;
    let failed = false;
    let announced = false;
    let alive = 0;
    for (let i = 0; i < count; i++) {
      const worker = cluster.fork();
      alive++;
      worker.on('message', (m: { listening?: string }) => {
        if (m.listening && !announced) {
          announced = true;
          log(`serving with ${count} workers at ${m.listening}`);
        }
      });
    }
    cluster.on('exit', (_worker, code) => {
      alive--;
      if (code !== 0) failed = true;
      // A worker that dies unasked takes its share of the port with it: stop all, loudly.
      if (!stopping && code !== 0) {
        stopping = true;
        log(`a worker exited with status ${code}; stopping the others`);
        for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
      }
      if (alive === 0) {
        process.exitCode = failed ? 1 : 0;
        resolveAll();
      }
    });
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      log(`${signal}: stopping ${count} workers`);
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill(signal);
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}
