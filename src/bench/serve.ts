/**
 * Load test of `branchynet serve`: the same model served with early exit and as its baseline
 * network (the trunk alone), two server processes on 127.0.0.1, driven in turn by autocannon with
 * real test images at each concurrency, a bounded number of requests per run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { loadDataset } from '../data/index.js';
import { benchArgs, modelDirOption, positiveOption, runBench } from './args.js';

const HELP = `usage: npm run bench:serve -- [--model DIR] [--requests N] [--concurrency 1,16,64] [--images 1,16]
                              [--max-batch N] [--max-delay-ms T] [--json]
  Serves --model twice on 127.0.0.1 (early exit; --baseline) and drives both with the same load:
  N requests (default 2000) of each --images size at each concurrency, binary tensor bodies of real
  test images; prints requests/s, rows/s, p50/p90/p99 latency, errors and early exit's ratios.
`;

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'cli.js');
const BODIES = 64;

interface Served {
  child: ChildProcess;
  url: string;
}

function startServer(dir: string, extra: string[]): Promise<Served> {
  const child = spawn(process.execPath, [CLI, 'serve', '--model', dir, '--name', 'm', '--port', '0', ...extra], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  return new Promise((resolve, reject) => {
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const m = /serving .* at (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr);
      if (m) resolve({ child, url: m[1] });
    });
    child.on('exit', (code) => reject(new Error(`the server exited with ${code}: ${stderr.trim()}`)));
  });
}

function stopServer(s: Served): Promise<number | null> {
  return new Promise((resolve) => {
    s.child.on('exit', (code) => resolve(code));
    s.child.kill('SIGTERM');
  });
}

/** Binary-extension bodies of `n` test images each, cycling through the test set. */
function bodies(pixels: Uint8Array, shape: [number, number, number], n: number): { body: Buffer[]; lengths: number[] } {
  const size = shape[0] * shape[1] * shape[2];
  const total = pixels.length / size;
  const made = Array.from({ length: BODIES }, (_, b) => {
    const first = (b * n) % (total - n);
    const data = Buffer.from(pixels.subarray(first * size, (first + n) * size));
    const header = Buffer.from(
      JSON.stringify({
        inputs: [
          { name: 'image', datatype: 'UINT8', shape: [n, ...shape], parameters: { binary_data_size: data.length } },
        ],
      }),
    );
    return { body: Buffer.concat([header, data]), length: header.length };
  });
  return { body: made.map((m) => m.body), lengths: made.map((m) => m.length) };
}

interface RunFigures {
  requestsPerSecond: number;
  rowsPerSecond: number;
  p50: number;
  p90: number;
  p99: number;
  errors: number;
}

async function load(url: string, body: Buffer[], headerLengths: number[], connections: number, amount: number) {
  let next = 0;
  // autocannon notices `amount` reached only on its one-second tick, so its duration is rounded
  // up to whole seconds: the run's time is taken from the first request to the last answer.
  let first = 0;
  let last = 0;
  const result = await autocannon({
    url: `${url}/v2/models/m/infer`,
    connections,
    amount,
    timeout: 30,
    requests: [
      {
        method: 'POST',
        onResponse: () => {
          last = performance.now();
        },
        setupRequest: (request) => {
          if (next === 0) first = performance.now();
          const k = next++ % body.length;
          return {
            ...request,
            body: body[k],
            headers: {
              'content-type': 'application/octet-stream',
              'inference-header-content-length': String(headerLengths[k]),
            },
          };
        },
      },
    ],
  });
  return { result, seconds: (last - first) / 1000 };
}

async function measure(url: string, body: Buffer[], lengths: number[], c: number, n: number, rows: number) {
  const { result: r, seconds } = await load(url, body, lengths, c, n);
  const ok = r['2xx'];
  return {
    requestsPerSecond: ok / seconds,
    rowsPerSecond: (ok * rows) / seconds,
    p50: r.latency.p50,
    p90: r.latency.p90,
    p99: r.latency.p99,
    errors: r.errors + r.timeouts + r.non2xx,
  } satisfies RunFigures;
}

async function residentBytes(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('branchynet_process_resident_memory_bytes '));
  return line ? Number(line.split(' ')[1]) : NaN;
}

async function main(): Promise<void> {
  const values = benchArgs(
    {
      model: { type: 'string' },
      requests: { type: 'string' },
      concurrency: { type: 'string' },
      images: { type: 'string' },
      'max-batch': { type: 'string' },
      'max-delay-ms': { type: 'string' },
      json: { type: 'boolean' },
    },
    HELP,
  );
  const dir = modelDirOption(values.model);
  const requests = positiveOption(values.requests, 'requests', 2000);
  const list = (raw: string | undefined, fallback: number[], name: string) =>
    raw === undefined ? fallback : raw.split(',').map((v) => positiveOption(v, name, 1));
  const concurrencies = list(values.concurrency, [1, 16, 64], 'concurrency');
  const sizes = list(values.images, [1, 16], 'images');
  const serverFlags = [
    '--max-batch',
    String(positiveOption(values['max-batch'], 'max-batch', 256)),
    '--max-delay-ms',
    values['max-delay-ms'] ?? '2',
  ];
  const info = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as {
    dataset?: string;
    spec: { input: [number, number, number] };
  };
  const shape = info.spec.input;
  const test = loadDataset(info.dataset ?? 'mnist').test;
  // Back to the bytes a client holds (the loaders scale to [0, 1]).
  const pixels = Uint8Array.from(test.images, (v) => Math.round(v * 255));

  const early = await startServer(dir, serverFlags);
  const baseline = await startServer(dir, [...serverFlags, '--baseline']).catch(async (e: unknown) => {
    await stopServer(early);
    throw e;
  });
  const runs: { images: number; concurrency: number; earlyExit: RunFigures; baseline: RunFigures }[] = [];
  const rss: { start: number; end: number } = { start: NaN, end: NaN };
  try {
    for (const images of sizes) {
      const { body, lengths } = bodies(pixels, shape, images);
      // Warm-up at the highest concurrency: ONNX Runtime's first run at each batch size is slow.
      const most = Math.max(...concurrencies);
      for (const s of [early, baseline]) await load(s.url, body, lengths, most, Math.max(500, 4 * most));
      if (Number.isNaN(rss.start)) rss.start = await residentBytes(early.url);
      for (const c of concurrencies) {
        const e = await measure(early.url, body, lengths, c, requests, images);
        const b = await measure(baseline.url, body, lengths, c, requests, images);
        runs.push({ images, concurrency: c, earlyExit: e, baseline: b });
        if (!values.json)
          process.stdout.write(
            `${images} image(s)/request, concurrency ${c}: rows/s ${e.rowsPerSecond.toFixed(0)} vs ${b.rowsPerSecond.toFixed(0)} ` +
              `(${(e.rowsPerSecond / b.rowsPerSecond).toFixed(2)}x), p99 ${e.p99} vs ${b.p99} ms\n`,
          );
      }
    }
    rss.end = await residentBytes(early.url);
  } finally {
    const codes = await Promise.all([stopServer(early), stopServer(baseline)]);
    if (codes.some((c) => c !== 0)) process.stderr.write(`bench: a server exited with ${codes.join(', ')}\n`);
  }
  const at64 = runs.find((r) => r.images === 1 && r.concurrency === 64) ?? runs.at(-1)!;
  const summary = {
    model: dir,
    requests,
    serverFlags,
    rowsPerSecondRatio: at64.earlyExit.rowsPerSecond / at64.baseline.rowsPerSecond,
    ratioAt: { images: at64.images, concurrency: at64.concurrency },
    errors: runs.reduce((s, r) => s + r.earlyExit.errors + r.baseline.errors, 0),
    earlyExitResidentBytes: rss,
    runs: runs.map((r) => ({
      ...r,
      rowsPerSecondRatio: r.earlyExit.rowsPerSecond / r.baseline.rowsPerSecond,
      p99Ratio: r.earlyExit.p99 / r.baseline.p99,
    })),
  };
  if (values.json) {
    process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
    return;
  }
  process.stdout.write(
    `\n${'images'.padStart(6)} ${'conc'.padStart(4)} | ${'EE req/s'.padStart(9)} ${'EE rows/s'.padStart(9)} ` +
      `${'p50'.padStart(6)} ${'p90'.padStart(6)} ${'p99'.padStart(6)} | ${'BL req/s'.padStart(9)} ${'BL rows/s'.padStart(9)} ` +
      `${'p50'.padStart(6)} ${'p90'.padStart(6)} ${'p99'.padStart(6)} | rows/s x  p99 x  errors\n`,
  );
  for (const r of summary.runs) {
    const cols = (f: RunFigures) =>
      `${f.requestsPerSecond.toFixed(0).padStart(9)} ${f.rowsPerSecond.toFixed(0).padStart(9)} ` +
      `${String(f.p50).padStart(6)} ${String(f.p90).padStart(6)} ${String(f.p99).padStart(6)}`;
    process.stdout.write(
      `${String(r.images).padStart(6)} ${String(r.concurrency).padStart(4)} | ${cols(r.earlyExit)} | ${cols(r.baseline)} | ` +
        `${r.rowsPerSecondRatio.toFixed(2).padStart(8)} ${r.p99Ratio.toFixed(2).padStart(6)} ${String(r.earlyExit.errors + r.baseline.errors).padStart(7)}\n`,
    );
  }
  process.stdout.write(
    `latency in ms; EE: early exit, BL: baseline network; errors total ${summary.errors}; early-exit server RSS ` +
      `${(rss.start / 2 ** 20).toFixed(0)} MiB after warm-up, ${(rss.end / 2 ** 20).toFixed(0)} MiB at the end\n`,
  );
}

runBench(main);
