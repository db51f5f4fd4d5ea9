import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { EarlyExitModel, type Answer } from '../api/early_exit_model.js';
import { loadMnist } from '../data/mnist.js';
import { buildServer, type ServedModel, type ServerOptions } from './app.js';

const LENET = 'models/b-lenet-mnist';
const NAME = 'b-lenet-mnist';
const COUNT = 64;
const PIXELS = 784;
const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'cli.js');

let model: EarlyExitModel;
let digits: Uint8Array;
let expected: Answer[];
let server: FastifyInstance;
let base: string;

const digitsOf = (first: number, n: number) => Array.from(digits.subarray(first * PIXELS, (first + n) * PIXELS));

async function start(models: ServedModel[], options: ServerOptions = {}) {
  const app = buildServer(models, { processMetrics: false, ...options });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, url };
}

function imageRequest(first: number, n: number, extra: Record<string, unknown> = {}) {
  return {
    inputs: [{ name: 'image', datatype: 'UINT8', shape: [n, 28, 28, 1], data: digitsOf(first, n) }],
    ...extra,
  };
}

interface Tensor {
  name: string;
  datatype: string;
  shape: number[];
  data: number[];
}

async function infer(url: string, body: unknown, init: RequestInit = {}) {
  const response = await fetch(`${url}/v2/models/${NAME}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : body instanceof Uint8Array ? new Uint8Array(body) : JSON.stringify(body),
    ...init,
  });
  const json = (await response.json()) as { outputs?: Tensor[]; error?: string; id?: string };
  return { status: response.status, headers: response.headers, json };
}

function output(json: { outputs?: Tensor[] }, name: string): Tensor {
  const t = json.outputs?.find((o) => o.name === name);
  assert.ok(t, `output ${name} missing in ${JSON.stringify(json).slice(0, 200)}`);
  return t;
}

/** The answers of rows [first, first + n) must be classifyBatch's for those digits. */
function assertRowsMatch(json: { outputs?: Tensor[] }, first: number, n: number): void {
  const labels = output(json, 'label');
  const exits = output(json, 'exit');
  const entropies = output(json, 'entropy');
  assert.deepEqual(labels.shape, [n]);
  assert.equal(labels.datatype, 'INT64');
  assert.equal(entropies.datatype, 'FP32');
  for (let i = 0; i < n; i++) {
    const want = expected[first + i];
    assert.equal(labels.data[i], want.label, `row ${i} (digit ${first + i}): label`);
    assert.equal(exits.data[i], want.exit, `row ${i} (digit ${first + i}): exit`);
    assert.ok(Math.abs(entropies.data[i] - want.entropy) < 1e-4, `row ${i}: entropy ${entropies.data[i]}`);
  }
}

async function metricsText(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`)).text();
}

function metricValue(text: string, line: RegExp): number {
  const m = text.split('\n').find((l) => line.test(l));
  assert.ok(m, `no metric line matches ${line}`);
  return Number(m.split(' ').at(-1));
}

before(async () => {
  model = await EarlyExitModel.load(LENET);
  const { test: set } = loadMnist();
  digits = Uint8Array.from(set.images.subarray(0, COUNT * PIXELS), (v) => Math.round(v * 255));
  expected = await model.classifyBatch(digits);
  ({ app: server, url: base } = await start([{ name: NAME, model }], { maxDelayMs: 20 }));
});

after(async () => {
  await server?.close();
  await model?.dispose();
});

test('health, server metadata and model metadata follow the protocol, with thresholds and exits in parameters', async () => {
  for (const path of ['/v2/health/live', '/v2/health/ready', `/v2/models/${NAME}/ready`])
    assert.equal((await fetch(base + path)).status, 200, path);
  const server = (await (await fetch(`${base}/v2`)).json()) as { extensions: string[] };
  assert.ok(server.extensions.includes('binary_tensor_data'));
  const meta = (await (await fetch(`${base}/v2/models/${NAME}`)).json()) as {
    name: string;
    inputs: { name: string; datatype: string; shape: number[] }[];
    outputs: { name: string; datatype: string; shape: number[] }[];
    parameters: { exits: number; thresholds: number[]; class_names: string[]; macs: { per_exit: number[] } };
  };
  assert.equal(meta.name, NAME);
  assert.deepEqual(meta.inputs, [{ name: 'image', datatype: 'FP32', shape: [-1, 28, 28, 1] }]);
  assert.deepEqual(
    meta.outputs.map((o) => [o.name, o.datatype, o.shape]),
    [
      ['label', 'INT64', [-1]],
      ['exit', 'INT64', [-1]],
      ['entropy', 'FP32', [-1]],
      ['probabilities', 'FP32', [-1, 10]],
    ],
  );
  assert.equal(meta.parameters.exits, 2);
  assert.deepEqual(meta.parameters.thresholds, model.thresholds);
  assert.deepEqual(meta.parameters.class_names, model.classNames);
  assert.deepEqual(meta.parameters.macs.per_exit, model.macs().perExit);
  const missing = await fetch(`${base}/v2/models/nope`);
  assert.equal(missing.status, 404);
});

test('infer: 64 MNIST digits as UINT8 JSON answer what classifyBatch answers; probabilities when asked', async () => {
  const r = await infer(
    base,
    imageRequest(0, COUNT, {
      id: 'req-1',
      outputs: [{ name: 'label' }, { name: 'exit' }, { name: 'entropy' }, { name: 'probabilities' }],
    }),
  );
  assert.equal(r.status, 200, r.json.error);
  assert.equal(r.json.id, 'req-1');
  assertRowsMatch(r.json, 0, COUNT);
  const probabilities = output(r.json, 'probabilities');
  assert.deepEqual(probabilities.shape, [COUNT, 10]);
  for (let i = 0; i < COUNT; i++)
    for (let c = 0; c < 10; c++)
      assert.ok(Math.abs(probabilities.data[i * 10 + c] - expected[i].probabilities[c]) < 1e-5, `row ${i} class ${c}`);
  // Both exits answer some of these digits: the test covers early exit, not one exit.
  const exits = new Set(output(r.json, 'exit').data);
  assert.deepEqual([...exits].sort(), [1, 2]);
  // Without `outputs`: label, exit, entropy, in that order, and no probabilities.
  const plain = await infer(base, imageRequest(0, 2));
  assert.deepEqual(
    plain.json.outputs!.map((o) => o.name),
    ['label', 'exit', 'entropy'],
  );
});

test('infer: FP32 JSON, nested data and the binary extension (UINT8 and FP32) give the same answers', async () => {
  const n = 8;
  const fp32 = {
    inputs: [{ name: 'image', datatype: 'FP32', shape: [n, 28, 28, 1], data: digitsOf(0, n) }],
  };
  assertRowsMatch((await infer(base, fp32)).json, 0, n);
  const flat = digitsOf(0, n);
  const nested = Array.from({ length: n }, (_, i) =>
    Array.from({ length: 28 }, (_, y) => Array.from({ length: 28 }, (_, x) => [flat[i * PIXELS + y * 28 + x]])),
  );
  const nestedRequest = { inputs: [{ name: 'image', datatype: 'UINT8', shape: [n, 28, 28, 1], data: nested }] };
  assertRowsMatch((await infer(base, nestedRequest)).json, 0, n);

  for (const [datatype, bytes] of [
    ['UINT8', Buffer.from(digits.subarray(0, n * PIXELS))],
    ['FP32', Buffer.from(Float32Array.from(digits.subarray(0, n * PIXELS)).buffer)],
  ] as const) {
    const header = Buffer.from(
      JSON.stringify({
        inputs: [{ name: 'image', datatype, shape: [n, 28, 28, 1], parameters: { binary_data_size: bytes.length } }],
      }),
    );
    const r = await infer(base, Buffer.concat([header, bytes]), {
      headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
    });
    assert.equal(r.status, 200, `${datatype}: ${r.json.error}`);
    assertRowsMatch(r.json, 0, n);
  }
});

test('batching: 32 concurrent requests share batches, each answered with its own rows in order', async () => {
  const before = await metricsText(base);
  const batchesBefore = metricValue(before, /^branchynet_batch_requests_count\{model="b-lenet-mnist"\}/);
  const requestsBefore = metricValue(before, /^branchynet_batch_requests_sum\{model="b-lenet-mnist"\}/);
  const jobs = Array.from({ length: 32 }, (_, k) => ({ first: (k * 7) % (COUNT - 3), n: 1 + (k % 3) }));
  const answers = await Promise.all(jobs.map((j) => infer(base, imageRequest(j.first, j.n))));
  answers.forEach((r, k) => {
    assert.equal(r.status, 200, r.json.error);
    assertRowsMatch(r.json, jobs[k].first, jobs[k].n);
  });
  const afterText = await metricsText(base);
  const batches = metricValue(afterText, /^branchynet_batch_requests_count\{model="b-lenet-mnist"\}/) - batchesBefore;
  const requests = metricValue(afterText, /^branchynet_batch_requests_sum\{model="b-lenet-mnist"\}/) - requestsBefore;
  assert.equal(requests, 32);
  assert.ok(batches < 32 / 2, `32 concurrent requests ran in ${batches} batches: expected them shared`);
});

test('per-request thresholds: validated, and they decide the exits (0: all at the last, huge: all at the first)', async () => {
  const none = await infer(base, imageRequest(0, 16, { parameters: { thresholds: [0] } }));
  assert.deepEqual(output(none.json, 'exit').data, new Array(16).fill(2));
  const all = await infer(base, imageRequest(0, 16, { parameters: { thresholds: [1e9] } }));
  assert.deepEqual(output(all.json, 'exit').data, new Array(16).fill(1));
  const saved = model.thresholds!;
  try {
    model.thresholds = [0];
    const full = await model.classifyBatch(digits.subarray(0, 16 * PIXELS));
    assert.deepEqual(
      output(none.json, 'label').data,
      full.map((a) => a.label),
    );
  } finally {
    model.thresholds = saved;
  }
  const wrong = await infer(base, imageRequest(0, 1, { parameters: { thresholds: [0.1, 0.2] } }));
  assert.equal(wrong.status, 400);
  assert.match(wrong.json.error!, /thresholds.*2 exits needs 1/);
});

const BAD: [string, unknown, RegExp, number?][] = [
  ['malformed JSON', '{"inputs": [', /malformed JSON/],
  ['empty body', '', /empty body/],
  ['a JSON array', '[1, 2]', /expected an infer request/],
  ['no inputs', {}, /inputs: expected one tensor/],
  ['two inputs', { inputs: [{}, {}] }, /inputs: expected one tensor/],
  ['input not an object', { inputs: [3] }, /inputs\[0\]: expected a tensor/],
  ['wrong input name', { inputs: [{ name: 'x' }] }, /named 'image'/],
  ['unknown datatype', { inputs: [{ name: 'image', datatype: 'INT8' }] }, /datatype must be FP32 or UINT8/],
  ['shape not 4-D', { inputs: [{ name: 'image', datatype: 'UINT8', shape: [784] }] }, /shape must be \[N, 28, 28, 1\]/],
  [
    'wrong image size',
    { inputs: [{ name: 'image', datatype: 'UINT8', shape: [1, 32, 32, 3] }] },
    /shape must be \[N, 28, 28, 1\] for b-lenet-mnist/,
  ],
  ['zero images', { inputs: [{ name: 'image', datatype: 'UINT8', shape: [0, 28, 28, 1] }] }, /N must be >= 1/],
  ['fractional N', { inputs: [{ name: 'image', datatype: 'UINT8', shape: [1.5, 28, 28, 1] }] }, /shape must be/],
  ['no data', { inputs: [{ name: 'image', datatype: 'UINT8', shape: [1, 28, 28, 1] }] }, /data must be an array/],
  [
    'too little data',
    { inputs: [{ name: 'image', datatype: 'UINT8', shape: [2, 28, 28, 1], data: new Array(784).fill(0) }] },
    /holds 784 values, but its shape needs 1568/,
  ],
  [
    'a string in data',
    { inputs: [{ name: 'image', datatype: 'FP32', shape: [1, 28, 28, 1], data: ['0', ...new Array(783).fill(0)] }] },
    /data\[0\] must be a finite number/,
  ],
  [
    'null (NaN as JSON writes it) in data',
    { inputs: [{ name: 'image', datatype: 'FP32', shape: [1, 28, 28, 1], data: [...new Array(783).fill(0), null] }] },
    /data\[783\] must be a finite number, got null/,
  ],
  [
    'UINT8 out of range',
    { inputs: [{ name: 'image', datatype: 'UINT8', shape: [1, 28, 28, 1], data: [256, ...new Array(783).fill(0)] }] },
    /UINT8 data\[0\] must be an integer 0-255, got 256/,
  ],
  ['unknown output', { ...imageRequestOf(), outputs: [{ name: 'logits' }] }, /unknown output "logits"/],
  ['output twice', { ...imageRequestOf(), outputs: [{ name: 'label' }, { name: 'label' }] }, /asked for twice/],
  ['thresholds not numbers', { ...imageRequestOf(), parameters: { thresholds: ['a'] } }, /expected 1 numbers/],
  ['negative threshold', { ...imageRequestOf(), parameters: { thresholds: [-1] } }, /must be a number >= 0/],
  ['parameters not an object', { ...imageRequestOf(), parameters: 7 }, /parameters: expected an object/],
  ['id not a string', { ...imageRequestOf(), id: 5 }, /id: expected a string/],
  [
    'binary size without the header',
    { inputs: [{ name: 'image', datatype: 'UINT8', shape: [1, 28, 28, 1], parameters: { binary_data_size: 784 } }] },
    /no Inference-Header-Content-Length/,
  ],
];

function imageRequestOf() {
  return { inputs: [{ name: 'image', datatype: 'UINT8', shape: [1, 28, 28, 1], data: new Array(784).fill(0) }] };
}

test(`bad requests (${BAD.length + 6} kinds): 4xx with a one-line reason, and the server keeps serving`, async () => {
  for (const [what, body, reason, status = 400] of BAD) {
    const r = await infer(base, body);
    assert.equal(r.status, status, `${what}: status ${r.status} (${r.json.error})`);
    assert.match(r.json.error ?? '', reason, what);
    assert.ok(!r.json.error!.includes('\n'), `${what}: one line`);
  }
  const unknownModel = await fetch(`${base}/v2/models/nope/infer`, { method: 'POST', body: '{}' });
  assert.equal(unknownModel.status, 404);
  assert.match(((await unknownModel.json()) as { error: string }).error, /unknown model 'nope'.*b-lenet-mnist/);
  const wrongVersion = await fetch(`${base}/v2/models/${NAME}/versions/7/infer`, { method: 'POST', body: '{}' });
  assert.equal(wrongVersion.status, 404);
  const noRoute = await fetch(`${base}/v3/whatever`);
  assert.equal(noRoute.status, 404);
  // The binary extension: a header longer than the body, and bytes that do not match the shape.
  const badHeader = await infer(base, '{}', { headers: { 'inference-header-content-length': '99' } });
  assert.equal(badHeader.status, 400);
  assert.match(badHeader.json.error!, /Inference-Header-Content-Length/);
  const header = Buffer.from(
    JSON.stringify({
      inputs: [{ name: 'image', datatype: 'FP32', shape: [1, 28, 28, 1], parameters: { binary_data_size: 784 } }],
    }),
  );
  const short = await infer(base, Buffer.concat([header, Buffer.alloc(784)]), {
    headers: { 'inference-header-content-length': String(header.length) },
  });
  assert.equal(short.status, 400);
  assert.match(short.json.error!, /784 bytes, but 784 FP32 values need 3136/);
  const nanHeader = Buffer.from(
    JSON.stringify({
      inputs: [{ name: 'image', datatype: 'FP32', shape: [1, 28, 28, 1], parameters: { binary_data_size: 3136 } }],
    }),
  );
  const nan = new Float32Array(784);
  nan[5] = NaN;
  const r = await infer(base, Buffer.concat([nanHeader, Buffer.from(nan.buffer)]), {
    headers: { 'inference-header-content-length': String(nanHeader.length) },
  });
  assert.equal(r.status, 400);
  assert.match(r.json.error!, /binary FP32 value 5 must be finite, got NaN/);
  // Still serving.
  assertRowsMatch((await infer(base, imageRequest(3, 2))).json, 3, 2);
  const text = await metricsText(base);
  assert.ok(metricValue(text, /^branchynet_requests_total\{route="\/v2\/models\/:name\/infer",code="400"\}/) >= 27);
});

test('limits: a body over the limit is 413, a full queue 503 with Retry-After, a late answer 504', async () => {
  const small = await start([{ name: NAME, model }], { bodyLimit: 2000, maxQueue: 1, maxDelayMs: 300 });
  try {
    const big = await infer(small.url, imageRequest(0, 4));
    assert.equal(big.status, 413);
    assert.match(big.json.error!, /body/i);
    // One request waits 300 ms for company; the queue holds one, so the next two are refused.
    const minimal = Buffer.from(digits.subarray(0, PIXELS));
    const header = Buffer.from(
      JSON.stringify({
        inputs: [{ name: 'image', datatype: 'UINT8', shape: [1, 28, 28, 1], parameters: { binary_data_size: 784 } }],
      }),
    );
    const send = () =>
      infer(small.url, Buffer.concat([header, minimal]), {
        headers: { 'inference-header-content-length': String(header.length) },
      });
    const first = send();
    await new Promise((r) => setTimeout(r, 50));
    const [second, third] = await Promise.all([send(), send()]);
    for (const r of [second, third]) {
      assert.equal(r.status, 503);
      assert.equal(r.headers.get('retry-after'), '1');
      assert.match(r.json.error!, /queue is full/);
    }
    const answered = await first;
    assert.equal(answered.status, 200);
    assertRowsMatch(answered.json, 0, 1);
  } finally {
    await small.app.close();
  }
  const slow = await start([{ name: NAME, model }], { timeoutMs: 50, maxDelayMs: 1000 });
  try {
    const late = await infer(slow.url, imageRequest(0, 1));
    assert.equal(late.status, 504);
    assert.match(late.json.error!, /no answer within 50 ms/);
    assert.equal(metricValue(await metricsText(slow.url), /^branchynet_queue_depth\{model="b-lenet-mnist"\}/), 0);
  } finally {
    await slow.app.close();
  }
});

test('/metrics: requests by code, rows per exit, mean MACs per row against the baseline, batch sizes', async () => {
  const fresh = await start([{ name: NAME, model }]);
  try {
    const r = await infer(fresh.url, imageRequest(0, COUNT));
    assert.equal(r.status, 200);
    await infer(fresh.url, '{');
    const text = await metricsText(fresh.url);
    const exits = output(r.json, 'exit').data;
    const atFirst = exits.filter((e) => e === 1).length;
    assert.equal(metricValue(text, /^branchynet_rows_total\{model="b-lenet-mnist",exit="1"\}/), atFirst);
    assert.equal(metricValue(text, /^branchynet_rows_total\{model="b-lenet-mnist",exit="2"\}/), COUNT - atFirst);
    const { perExit, baseline } = model.macs();
    const mean = (atFirst * perExit[0] + (COUNT - atFirst) * perExit[1]) / COUNT;
    assert.ok(Math.abs(metricValue(text, /^branchynet_mean_macs_per_row\{/) - mean) < 1e-6 * mean);
    assert.equal(metricValue(text, /^branchynet_baseline_macs_per_row\{/), baseline);
    assert.equal(metricValue(text, /^branchynet_requests_total\{route="\/v2\/models\/:name\/infer",code="200"\}/), 1);
    assert.equal(metricValue(text, /^branchynet_requests_total\{route="\/v2\/models\/:name\/infer",code="400"\}/), 1);
    assert.equal(metricValue(text, /^branchynet_batch_rows_bucket\{le="32",/), 0);
    assert.equal(metricValue(text, /^branchynet_batch_rows_bucket\{le="64",/), 1);
    assert.ok(
      metricValue(text, /^branchynet_request_duration_seconds_count\{route="\/v2\/models\/:name\/infer"\}/) >= 2,
    );
  } finally {
    await fresh.app.close();
  }
});

test('baseline mode serves the trunk alone: every row from exit 1 of 1, the labels of thresholds 0', async () => {
  const b = await start([{ name: NAME, model, baseline: true }]);
  try {
    const meta = (await (await fetch(`${b.url}/v2/models/${NAME}`)).json()) as {
      parameters: { exits: number; mode: string };
    };
    assert.deepEqual([meta.parameters.exits, meta.parameters.mode], [1, 'baseline']);
    const r = await infer(b.url, imageRequest(0, 16));
    assert.equal(r.status, 200, r.json.error);
    assert.deepEqual(output(r.json, 'exit').data, new Array(16).fill(1));
    const labels = output(r.json, 'label').data;
    const agree = labels.filter((l, i) => l === expected[i].label).length;
    assert.ok(agree >= 14, `the baseline agrees with early exit on ${agree} of 16 digits`);
    const withThresholds = await infer(b.url, imageRequest(0, 1, { parameters: { thresholds: [0.1] } }));
    assert.equal(withThresholds.status, 400);
    assert.match(withThresholds.json.error!, /serves one exit/);
  } finally {
    await b.app.close();
  }
});

/** Spawns the CLI's serve on port 0 and resolves with the child and its URL once it listens. */
function spawnServe(args: string[]) {
  const child = spawn(process.execPath, [CLI, 'serve', '--model', LENET, '--port', '0', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const exited = new Promise<number | string | null>((resolve) =>
    child.on('exit', (code, signal) => resolve(code ?? signal)),
  );
  const url = new Promise<string>((resolve, reject) => {
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const m = /serving .* at (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`serve exited with ${code} before listening: ${stderr}`)));
  });
  return { child, url, exited, stderr: () => stderr };
}

test('SIGTERM: the request in flight is answered, then the server exits 0 and stops accepting', async () => {
  const served = spawnServe(['--max-delay-ms', '1500']);
  const timer = setTimeout(() => served.child.kill('SIGKILL'), 60_000);
  try {
    const url = await served.url;
    const pending = infer(url, imageRequest(5, 3));
    // SIGTERM once the request waits in the queue (its batch waits 1500 ms for company).
    for (let polls = 0; polls < 100; polls++) {
      const depth = metricValue(await metricsText(url), /^branchynet_queue_depth\{/);
      if (depth === 1) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    served.child.kill('SIGTERM');
    const r = await pending;
    assert.equal(r.status, 200, r.json.error);
    assertRowsMatch(r.json, 5, 3);
    assert.equal(await served.exited, 0, served.stderr());
    assert.match(served.stderr(), /SIGTERM: answering the requests in flight/);
    await assert.rejects(fetch(`${url}/v2/health/live`));
  } finally {
    clearTimeout(timer);
  }
});

test('--workers 2: both processes serve the port; SIGTERM drains them and the primary exits 0', async () => {
  const served = spawnServe(['--workers', '2', '--max-delay-ms', '3000']);
  const timer = setTimeout(() => served.child.kill('SIGKILL'), 90_000);
  try {
    const url = await served.url;
    assert.match(served.stderr(), /serving with 2 workers/);
    const pending = infer(url, imageRequest(10, 2));
    await new Promise((r) => setTimeout(r, 1000));
    served.child.kill('SIGTERM');
    const r = await pending;
    assert.equal(r.status, 200, r.json.error);
    assertRowsMatch(r.json, 10, 2);
    assert.equal(await served.exited, 0, served.stderr());
  } finally {
    clearTimeout(timer);
  }
});

test('serve refuses bad flags with one line: no --model, a bad --max-batch, an unknown flag', async () => {
  for (const [args, reason] of [
    [[], /--model DIR is required/],
    [['--model', LENET, '--max-batch', '0'], /--max-batch: expected an integer >= 1, got '0'/],
    [['--model', LENET, '--bogus'], /Unknown option '--bogus'/],
    [['--model', LENET, '--name', 'a', '--name', 'b'], /2 names for 1 models/],
  ] as const) {
    const child = spawn(process.execPath, [CLI, 'serve', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise((resolve) => child.on('exit', resolve));
    assert.equal(code, 1, stderr);
    assert.match(stderr, reason);
    assert.equal(stderr.trim().split('\n').length, 1, stderr);
  }
});
