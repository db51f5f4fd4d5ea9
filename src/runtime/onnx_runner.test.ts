import { assertSameAnswers } from '../testing/same_answers.js';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { headDataset, loadDataset } from '../data/index.js';
import type { Dataset } from '../data/dataset.js';
import { initBackend } from '../engine/backend.js';
import { loadModel, trunkOf } from '../model/io.js';
import { BranchyNet } from '../model/network.js';
import type { BranchyNetSpec, LayerSpec } from '../model/spec.js';
import { bAlexNet, bLeNet, bResNet, MODEL_ZOO } from '../model/zoo.js';
import { exportNetwork, writeExport } from '../onnx/export.js';
import { randomizeBatchNorm } from '../testing/batch_norm_stats.js';
import { randomDataset, tinySpec } from '../testing/fixtures.js';
import { evaluateModel } from '../workflow.js';
import { earlyExit, earlyExitAsync } from './early_exit.js';
import { rowEntropy } from './exit_rule.js';
import { accuracyOf, allExitLogits } from './full_forward.js';
import { chooseRuntime, createOnnxRunner, loadOnnxRuntime, onnxRunnerFromNet, readManifest } from '../node/onnx.js';
import { OnnxRunner, type OnnxActivation } from './onnx_runner.js';
import { modelFromNetworks } from '../node/model_dir.js';
import type { StageOutput, StageRunner } from './runner.js';
import { TfjsRunner } from './tfjs_runner.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The shipped model; BRANCHYNET_PARITY_MODEL points the parity test at another model directory. */
const SHIPPED = process.env.BRANCHYNET_PARITY_MODEL ?? join(ROOT, 'models', 'b-lenet-mnist');

let skipReason: string | null = null;
before(async () => {
  await initBackend('wasm');
  const loaded = await loadOnnxRuntime();
  if ('error' in loaded) skipReason = `onnxruntime-node did not load: ${loaded.error}`;
});

/**
 * Thresholds at the given entropy quantile of each non-final exit, moved to the middle of a gap
 * (wider than `gap`) between neighbouring entropies so that no sample sits within float32 noise of a threshold.
 */
function safeThresholds(logits: Float32Array[], classes: number, count: number, q: number, gap = 1e-3): number[] {
  return logits.slice(0, -1).map((l) => {
    const h = Array.from({ length: count }, (_, i) => rowEntropy(l, i, classes).entropy).sort((a, b) => a - b);
    for (let i = Math.floor(q * (count - 1)); i + 1 < count; i++)
      if (h[i + 1] - h[i] > gap) return (h[i] + h[i + 1]) / 2;
    return h[count - 1] + 1;
  });
}

/** Counts the rows each stage sees (compaction check). */
function counting<A>(
  inner: StageRunner<A>,
  rowsOf: (a: A) => number,
): StageRunner<A> & { rows: number[]; runs: number[] } {
  const rows = new Array(inner.exits).fill(0);
  const runs = new Array(inner.exits).fill(0);
  return {
    rows,
    runs,
    exits: inner.exits,
    classes: inner.classes,
    input: (images, count) => inner.input(images, count),
    runStage: (k, a) => {
      rows[k] += rowsOf(a);
      runs[k]++;
      return inner.runStage(k, a);
    },
    selectRows: (a, r) => inner.selectRows(a, r),
    concatRows: (parts) => inner.concatRows(parts),
    dispose: (a) => inner.dispose(a),
  };
}

/** Every exit's logits and entropies from a runner's stages, the whole batch through every stage. */
async function stageOutputs<A>(
  runner: StageRunner<A>,
  images: Float32Array,
  count: number,
): Promise<{ logits: ArrayLike<number>[]; entropies: (ArrayLike<number> | undefined)[] }> {
  const logits: ArrayLike<number>[] = [];
  const entropies: (ArrayLike<number> | undefined)[] = [];
  let a: A | null = runner.input(images, count);
  for (let k = 0; a !== null; k++) {
    const out = await runner.runStage(k, a);
    runner.dispose(a);
    logits.push(Array.from(out.logits));
    entropies.push(out.entropies && Array.from(out.entropies));
    a = out.next;
  }
  return { logits, entropies };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

interface EarlyExitCase {
  name: string;
  spec: () => BranchyNetSpec;
  count: number;
  /** Pixels (u - 0.5) * imageScale for u uniform in [0, 1) (default u itself). */
  imageScale?: number;
  /** Smallest entropy gap a threshold sits in (default 1e-3; logits agree to about 1e-6). */
  gap?: number;
}

const EARLY_EXIT_CASES: EarlyExitCase[] = [
  { name: 'B-LeNet', spec: bLeNet, count: 53 },
  { name: 'tiny (3 exits)', spec: tinySpec, count: 53 },
  // Random-weight CIFAR-10 networks give entropies within a few hundredths of ln 10: smaller gaps.
  { name: 'B-AlexNet', spec: bAlexNet, count: 24, imageScale: 4, gap: 1e-4 },
  { name: 'B-ResNet-20', spec: () => bResNet(20), count: 24, imageScale: 4, gap: 1e-4 },
  {
    name: 'B-ResNet-20, compact heads after blocks 1, 3, 6',
    spec: () => bResNet(20, { heads: 'compact', exitsAfter: [1, 3, 6] }),
    count: 24,
    imageScale: 4,
    gap: 1e-4,
  },
];

for (const { name, spec: makeSpec, count, imageScale, gap } of EARLY_EXIT_CASES) {
  test(`${name}: early exit on ONNX Runtime gives the tfjs runtime's answers at batch 1 and batched`, async (t) => {
    if (skipReason) return t.skip(skipReason);
    const spec = makeSpec();
    const net = new BranchyNet(spec, 8);
    randomizeBatchNorm(net, 23);
    const data = randomDataset(count, spec.input, spec.classes, 30);
    if (imageScale !== undefined)
      for (let i = 0; i < data.images.length; i++) data.images[i] = (data.images[i] - 0.5) * imageScale;
    const logits = allExitLogits(net, data);
    const thresholds = safeThresholds(logits, spec.classes, count, 0.45, gap);
    const onnx = await onnxRunnerFromNet(net);
    // The same graphs through onnxruntime-node's public API instead of its native session.
    const viaApi = await onnxRunnerFromNet(net, { direct: false });
    assert.equal(onnx.direct, true, 'runs go to the native session directly on the pinned onnxruntime-node');
    assert.equal(viaApi.direct, false);
    const tfjs = new TfjsRunner(net);
    const stages = await stageOutputs(onnx, data.images, count);
    for (let k = 0; k < net.exits; k++) {
      assert.ok(maxAbsDiff(stages.logits[k], logits[k]) <= 1e-4, `exit ${k + 1} logits`);
      // fromNet's graphs leave the entropy to the early-exit loop (compared below, in the results).
      assert.equal(stages.entropies[k], undefined, `exit ${k + 1}: no entropy output`);
    }
    const reference = earlyExit(tfjs, data.images, count, thresholds, 1);
    const used = new Set(reference.exitTaken);
    assert.equal(used.size, net.exits, `every exit should answer some samples: ${[...reference.exitTaken]}`);
    for (const batchSize of [1, 4, 64]) {
      const runner = counting(onnx, (a: OnnxActivation) => a.rows);
      const r = await earlyExitAsync(runner, data.images, count, thresholds, batchSize);
      assertSameAnswers(r, reference, `batch ${batchSize}`);
      let remaining = count;
      for (let k = 0; k < net.exits; k++) {
        assert.equal(runner.rows[k], remaining, `rows through stage ${k + 1} at batch ${batchSize}`);
        assert.equal(
          runner.runs[k],
          Math.ceil(remaining / batchSize),
          `runs of stage ${k + 1} at batch ${batchSize} (continuing rows regrouped)`,
        );
        remaining -= reference.exitTaken.filter((e) => e === k + 1).length;
      }
      assertSameAnswers(
        earlyExit(tfjs, data.images, count, thresholds, batchSize),
        reference,
        `tfjs at batch ${batchSize}`,
      );
      assertSameAnswers(
        earlyExit(onnx, data.images, count, thresholds, batchSize),
        reference,
        `synchronous loop, batch ${batchSize}`,
      );
      assertSameAnswers(
        await earlyExitAsync(viaApi, data.images, count, thresholds, batchSize),
        reference,
        `public API, batch ${batchSize}`,
      );
    }
    assert.throws(() => earlyExit(viaApi, data.images, count, thresholds, 1), /use earlyExitAsync/);
    await Promise.all([onnx.release(), viaApi.release()]);
    net.dispose();
  });
}

test('a batch larger than maxRunRows runs as tiles: the same outputs as one run, and a bad maxRunRows is refused', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const spec = tinySpec();
  const net = new BranchyNet(spec, 9);
  const count = 23;
  const data = randomDataset(count, spec.input, spec.classes, 5);
  const whole = await onnxRunnerFromNet(net, { maxRunRows: 256 });
  const tiled = await onnxRunnerFromNet(net, { maxRunRows: 4 });
  let a: OnnxActivation | null = whole.input(data.images, count);
  let b: OnnxActivation | null = tiled.input(data.images, count);
  for (let k = 0; k < net.exits; k++) {
    const x: StageOutput<OnnxActivation> = await whole.runStage(k, a!);
    const y: StageOutput<OnnxActivation> = await tiled.runStage(k, b!);
    assert.equal(y.logits.length, count * spec.classes);
    assert.ok(maxAbsDiff(x.logits, y.logits) <= 1e-5, `stage ${k + 1} logits`);
    assert.equal(x.next === null, y.next === null);
    if (x.next && y.next) {
      // The tiled run hands on its tiles as they are (4 + 4 + ... + 3 rows), unstacked.
      assert.deepEqual(
        y.next.blocks.map((t) => t.dims[0]),
        [4, 4, 4, 4, 4, 3],
      );
      assert.equal(y.next.rows, count);
      const stack = (r: OnnxRunner, v: OnnxActivation) => r.concatRows([v]).blocks[0];
      assert.deepEqual(stack(tiled, y.next).dims, stack(whole, x.next).dims);
      assert.ok(
        maxAbsDiff(stack(whole, x.next).data as Float32Array, stack(tiled, y.next).data as Float32Array) <= 1e-5,
        `stage ${k + 1} activation`,
      );
      // Rows picked across tiles, in any order, are the rows of the stacked activation.
      const pick = Int32Array.from([22, 0, 3, 4, 9, 21, 5]);
      const picked = tiled.selectRows(y.next, pick).blocks[0];
      const whole1 = whole.selectRows(x.next, pick).blocks[0];
      assert.deepEqual(picked.dims, whole1.dims);
      assert.ok(
        maxAbsDiff(picked.data as Float32Array, whole1.data as Float32Array) <= 1e-5,
        `stage ${k + 1} selected rows`,
      );
    }
    [a, b] = [x.next, y.next];
  }
  await Promise.all([whole.release(), tiled.release()]);
  await assert.rejects(() => onnxRunnerFromNet(net, { maxRunRows: 0 }), /maxRunRows must be an integer >= 1/);
  net.dispose();
});

test('image packing: whole groups of 16 rows of a run go to the packed graph, the rest to the plain one', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const spec = bLeNet();
  const [a, b] = [new BranchyNet(spec, 4), new BranchyNet(spec, 11)];
  const trunks = [a, b].map((net) => trunkOf(net));
  const [bundleA, bundleB] = [a, b].map((net, i) => exportNetwork(net, trunks[i]));
  const stages = bundleA.manifest.stages;
  assert.equal(stages[0].packed?.rowMultiple, 16);
  // A's graphs, but B's packed stage 1: which rows answer like B shows which graph ran them.
  const files = new Map(bundleA.files);
  files.set(stages[0].packed!.file, bundleB.files.get(bundleB.manifest.stages[0].packed!.file)!);
  const count = 37;
  const data = randomDataset(count, spec.input, spec.classes, 12);
  const [wantA, wantB] = [a, b].map((net) => allExitLogits(net, data)[0]);
  const classes = spec.classes;
  const rowsLike = (logits: ArrayLike<number>, want: Float32Array, rows: number[]) =>
    rows.every(
      (r) =>
        maxAbsDiff(
          Array.from(logits).slice(r * classes, (r + 1) * classes),
          want.subarray(r * classes, (r + 1) * classes),
        ) <= 1e-4,
    );
  const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
  for (const [maxRunRows, fromB] of [
    [64, range(0, 32)],
    [20, [...range(0, 16), ...range(20, 36)]],
  ] as const) {
    const runner = await createOnnxRunner({ kind: 'stages', stages, files }, { maxRunRows });
    assert.equal(runner.packed, true);
    const out = await runner.runStage(0, runner.input(data.images, count));
    const fromA = range(0, count).filter((r) => !fromB.includes(r));
    assert.ok(
      rowsLike(out.logits, wantB, [...fromB]),
      `${maxRunRows} rows per run: rows ${fromB} from the packed graph`,
    );
    assert.ok(rowsLike(out.logits, wantA, fromA), `${maxRunRows} rows per run: rows ${fromA} from the plain graph`);
    assert.equal(out.next!.rows, count);
    await runner.release();
  }
  const plainOnly = await createOnnxRunner({ kind: 'stages', stages, files }, { imagePacking: false });
  assert.equal(plainOnly.packed, false);
  assert.ok(
    rowsLike((await plainOnly.runStage(0, plainOnly.input(data.images, count))).logits, wantA, range(0, count)),
    'imagePacking: false runs the plain graph only',
  );
  await plainOnly.release();
  for (const n of [a, b, ...trunks]) n.dispose();
});

test("an export directory loads back: stages and baseline give the in-memory export's answers", async (t) => {
  if (skipReason) return t.skip(skipReason);
  const spec = bLeNet();
  const net = new BranchyNet(spec, 4);
  const base = trunkOf(net);
  const dir = mkdtempSync(join(tmpdir(), 'bn-onnx-'));
  try {
    const bundle = exportNetwork(net, base, { thresholds: [0.3] });
    writeExport(dir, bundle);
    assert.deepEqual(readManifest(dir), bundle.manifest);
    const data = randomDataset(20, spec.input, spec.classes, 3);
    const fromDir = await createOnnxRunner({ kind: 'dir', dir }, { intraOpNumThreads: 2 });
    const inMemory = await createOnnxRunner({ kind: 'bundle', bundle });
    assertSameAnswers(
      await earlyExitAsync(fromDir, data.images, 20, [0.3], 8),
      await earlyExitAsync(inMemory, data.images, 20, [0.3], 1),
      'dir vs memory',
    );
    const baseline = await createOnnxRunner({ kind: 'dir', dir, which: 'baseline' });
    assert.equal(baseline.exits, 1);
    const want = earlyExit(new TfjsRunner(base), data.images, 20, [], 1);
    assertSameAnswers(await earlyExitAsync(baseline, data.images, 20, [], 7), want, 'baseline');
    await Promise.all([fromDir.release(), inMemory.release(), baseline.release()]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    base.dispose();
    net.dispose();
  }
  assert.throws(
    () => readManifest(join(dir, 'nope')),
    /manifest\.json: no such file; expected a directory written by 'branchynet export'/,
  );
});

test('runtime choice: ONNX by default where onnxruntime-node loads, tfjs on request', async (t) => {
  assert.equal(await chooseRuntime('tfjs'), 'tfjs');
  if (skipReason) return t.skip(skipReason);
  assert.equal(await chooseRuntime(undefined), 'onnx');
  assert.equal(await chooseRuntime('onnx'), 'onnx');
  // Every layer kind exports: the zoo's networks (B-AlexNet, B-ResNet with LRN, batch norm,
  // dropout, average pooling, residual blocks) get ONNX Runtime with no notice.
  const notices: string[] = [];
  for (const make of Object.values(MODEL_ZOO))
    assert.equal(await chooseRuntime(undefined, (line) => notices.push(line), make()), 'onnx');
  assert.equal(notices.length, 0, notices.join('\n'));
  // A layer kind without an exporter (one this build does not know) falls back to tfjs, with a notice.
  const spec = tinySpec();
  spec.segments[2].splice(1, 0, { kind: 'mystery' } as unknown as LayerSpec);
  assert.equal(await chooseRuntime(undefined, (line) => notices.push(line), spec), 'tfjs');
  assert.deepEqual(notices, [
    'note: tiny has layers the ONNX exporter does not handle yet (mystery); using the tfjs runtime',
  ]);
  await assert.rejects(
    () => chooseRuntime('onnx', undefined, spec),
    /runtime: 'onnx' cannot run it: tiny has layers the ONNX exporter does not handle yet \(mystery\)/,
  );
  assert.equal(await chooseRuntime(undefined, undefined, tinySpec()), 'onnx');
});

test("evaluateModel runs B-AlexNet on ONNX Runtime by default, with the tfjs runtime's answers", async (t) => {
  if (skipReason) return t.skip(skipReason);
  const spec = bAlexNet();
  const net = new BranchyNet(spec, 6);
  const test = randomDataset(12, spec.input, spec.classes, 9);
  for (let i = 0; i < test.images.length; i++) test.images[i] = (test.images[i] - 0.5) * 4;
  const thresholds = safeThresholds(allExitLogits(net, test), spec.classes, test.count, 0.4, 1e-4);
  const networks = { spec, net, baseline: null, thresholds, dataset: 'random' };
  const lines: string[] = [];
  const options = { timingSamples: 4, batchSize: 4, log: (line: string) => lines.push(line) };
  const onnxModel = await modelFromNetworks(networks, { notice: options.log });
  const tfjsModel = await modelFromNetworks(networks, { runtime: 'tfjs' });
  const onnx = await evaluateModel(onnxModel, test, options);
  const tfjs = await evaluateModel(tfjsModel, test, options);
  await Promise.all([onnxModel.dispose(), tfjsModel.dispose()]);
  assert.equal(onnx.runtime, 'onnx');
  assert.deepEqual(
    lines.filter((l) => l.startsWith('note:')),
    [],
  );
  for (const key of ['accuracy', 'exitFractions', 'exitAccuracies', 'macs'] as const)
    assert.deepEqual(onnx[key], tfjs[key], key);
  net.dispose();
});

test('evaluateModel reports the same fields and answers on ONNX Runtime as on tfjs', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const spec = bLeNet();
  const net = new BranchyNet(spec, 6);
  const test = randomDataset(48, spec.input, spec.classes, 9);
  const thresholds = safeThresholds(allExitLogits(net, test), spec.classes, test.count, 0.5);
  const networks = { spec, net, baseline: null, thresholds, dataset: 'random' };
  const onnxModel = await modelFromNetworks(networks, { runtime: 'onnx' });
  const tfjsModel = await modelFromNetworks(networks, { runtime: 'tfjs' });
  const onnx = await evaluateModel(onnxModel, test, { timingSamples: 16, batchSize: 16 });
  const tfjs = await evaluateModel(tfjsModel, test, { timingSamples: 16, batchSize: 16 });
  await Promise.all([onnxModel.dispose(), tfjsModel.dispose()]);
  assert.equal(onnx.runtime, 'onnx');
  assert.equal(tfjs.runtime, 'tfjs');
  const shape = (o: object): string[] =>
    Object.entries(o)
      .flatMap(([k, v]) => (v && typeof v === 'object' && !Array.isArray(v) ? shape(v).map((s) => `${k}.${s}`) : [k]))
      .sort();
  assert.deepEqual(shape(onnx), shape(tfjs));
  for (const key of [
    'accuracy',
    'exitFractions',
    'exitAccuracies',
    'lastExitAccuracy',
    'macSpeedup',
    'macs',
    'samples',
  ] as const)
    assert.deepEqual(onnx[key], tfjs[key], key);
  assert.equal(onnx.baseline.accuracy, tfjs.baseline.accuracy);
  // The last exit's accuracy, from the reference path (every exit's logits, the last one's argmax).
  const last = allExitLogits(net, test)[spec.segments.length - 1];
  assert.equal(onnx.lastExitAccuracy, accuracyOf(last, test.labels, spec.classes));
  for (const v of [onnx.msPerSample, onnx.speedup, onnx.batched.samplesPerSecond, onnx.batched.speedup])
    assert.ok(Number.isFinite(v) && v > 0);
  net.dispose();
});

test('shipped B-LeNet (models/b-lenet-mnist): ONNX Runtime matches tfjs on MNIST test digits', async (t) => {
  if (skipReason) return t.skip(skipReason);
  if (!existsSync(join(SHIPPED, 'model.json'))) return t.skip(`${SHIPPED} does not exist yet`);
  const model = loadModel(SHIPPED);
  let digits: Dataset;
  try {
    digits = headDataset(loadDataset('mnist').test, 300);
  } catch (e) {
    return t.skip(`MNIST test set unavailable: ${(e as Error).message}`);
  }
  const thresholds = model.thresholds ?? [0.05];
  const logits = allExitLogits(model.net, digits);
  // The exported graphs (entropy computed in the graph), as a deployment would load them.
  const onnx = await createOnnxRunner({
    kind: 'bundle',
    bundle: exportNetwork(model.net, model.baseline ?? trunkOf(model.net)),
  });
  const stages = await stageOutputs(onnx, digits.images, digits.count);
  let worst = 0;
  for (let k = 0; k < model.net.exits; k++) {
    const d = maxAbsDiff(stages.logits[k], logits[k]);
    worst = Math.max(worst, d);
    assert.ok(d <= 1e-4, `exit ${k + 1} logits differ by ${d}`);
    const h = Array.from({ length: digits.count }, (_, i) => rowEntropy(logits[k], i, model.spec.classes).entropy);
    assert.ok(maxAbsDiff(stages.entropies[k]!, h) <= 1e-4, `exit ${k + 1} entropies`);
  }
  const tfjs = new TfjsRunner(model.net);
  for (const batchSize of [1, 256]) {
    const want = earlyExit(tfjs, digits.images, digits.count, thresholds, batchSize);
    const got = await earlyExitAsync(onnx, digits.images, digits.count, thresholds, batchSize);
    assert.deepEqual(got.predictions, want.predictions, `predictions at batch ${batchSize}`);
    assert.deepEqual(got.exitTaken, want.exitTaken, `exits at batch ${batchSize}`);
  }
  t.diagnostic(`300 digits, thresholds [${thresholds}], max |logits diff| ${worst.toExponential(2)}`);
  await onnx.release();
  model.net.dispose();
  model.baseline?.dispose();
});
