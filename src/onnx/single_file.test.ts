import { assertSameAnswers } from '../testing/same_answers.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Dataset } from '../data/dataset.js';
import { headDataset, loadDataset } from '../data/index.js';
import { normalizeDataset } from '../data/transform.js';
import { initBackend } from '../engine/backend.js';
import { loadModel, trunkOf, type LoadedModel } from '../model/io.js';
import { BranchyNet } from '../model/network.js';
import type { ExitResults } from '../runtime/early_exit.js';
import { earlyExitAsync } from '../runtime/early_exit.js';
import { rowEntropy } from '../runtime/exit_rule.js';
import { allExitLogits } from '../runtime/full_forward.js';
import { loadOnnxRuntime, onnxRunnerFromNet } from '../node/onnx.js';
import { SingleFileSession, toPixels } from '../node/single_file_session.js';
import { Rng } from '../rng.js';
import { tinySpec } from '../testing/fixtures.js';
import { decodeModel } from './graph.js';
import { exportSingleFile, SINGLE_NAMES } from './single_file.js';
import { cifarTestDir, NO_CIFAR } from '../testing/cifar.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const LENET = join(ROOT, 'models', 'b-lenet-mnist');
const RESNET = join(ROOT, 'models', 'b-resnet-56-cifar10');
const BATCHES = [1, 7, 64, 256];

let ortError: string | null = null;
const tmp = mkdtempSync(join(tmpdir(), 'bn-single-'));
before(async () => {
  await initBackend('wasm');
  const loaded = await loadOnnxRuntime();
  if ('error' in loaded) ortError = loaded.error;
});
after(() => rmSync(tmp, { recursive: true, force: true }));

/**
 * Thresholds at the given entropy quantile of each non-final exit, in the middle of a gap wider
 * than `gap` between neighbouring entropies, so that no sample sits within float32 noise of one.
 */
function safeThresholds(net: BranchyNet, data: Dataset, q: number, gap = 1e-4): number[] {
  const logits = allExitLogits(net, data, 256);
  const classes = net.spec.classes;
  return logits.slice(0, -1).map((l) => {
    const h = Array.from({ length: data.count }, (_, i) => rowEntropy(l, i, classes).entropy).sort((a, b) => a - b);
    for (let i = Math.floor(q * (data.count - 1)); i + 1 < data.count; i++)
      if (h[i + 1] - h[i] > gap) return (h[i] + h[i + 1]) / 2;
    return h[data.count - 1] + 1;
  });
}

/**
 * The single file (exported with `thresholds`) against the per-stage runner at every batch size:
 * `data` as the network takes it, `pixels` the same images as 0-255 values.
 */
async function checkParity(
  net: BranchyNet,
  normalization: LoadedModel['normalization'],
  data: Dataset,
  pixels: Float32Array,
  thresholds: number[],
  what: string,
  imagePacking = false,
): Promise<ExitResults[]> {
  const { bytes } = exportSingleFile(net, { thresholds, normalization, imagePacking });
  const single = await SingleFileSession.create(bytes, net.spec.input, net.spec.classes);
  const perStage = await onnxRunnerFromNet(net);
  const answers: ExitResults[] = [];
  try {
    for (const batch of BATCHES) {
      const want = await earlyExitAsync(perStage, data.images, data.count, thresholds, batch);
      const got = await single.classify(pixels, data.count, batch);
      assertSameAnswers(got, want, `${what}, thresholds [${thresholds.join(', ')}], batch ${batch}`);
      answers.push(got);
    }
  } finally {
    await Promise.all([single.release(), perStage.release()]);
  }
  return answers;
}

/** With every threshold 0 each row runs to the last exit: the answers of the trunk alone (the branchy net's own baseline graph). */
async function checkLastExit(
  net: BranchyNet,
  normalization: LoadedModel['normalization'],
  data: Dataset,
  pixels: Float32Array,
  what: string,
): Promise<void> {
  const { bytes } = exportSingleFile(net, { thresholds: new Array(net.exits - 1).fill(0), normalization });
  const single = await SingleFileSession.create(bytes, net.spec.input, net.spec.classes);
  const trunk = trunkOf(net);
  const baseline = await onnxRunnerFromNet(trunk);
  try {
    const want = await earlyExitAsync(baseline, data.images, data.count, [], 64);
    const got = await single.classify(pixels, data.count, 64);
    assert.ok(
      got.exitTaken.every((e) => e === net.exits),
      `${what}: every row answers at exit ${net.exits}`,
    );
    assertSameAnswers(
      { ...got, exitTaken: want.exitTaken },
      want,
      `${what}, thresholds all 0 against the trunk's baseline graph`,
    );
  } finally {
    trunk.dispose();
    await Promise.all([single.release(), baseline.release()]);
  }
}

test('single file on B-LeNet: same predictions, exits and entropies as the per-stage runner at batch 1, 7, 64, 256', async (t) => {
  if (ortError) return t.skip(`onnxruntime-node did not load: ${ortError}`);
  const model = loadModel(LENET);
  try {
    const data = headDataset(loadDataset('mnist').test, 1000);
    const pixels = toPixels(data.images);
    const fromFile = await checkParity(model.net, null, data, pixels, model.thresholds!, 'MNIST');
    // The shipped thresholds send some rows on: the compaction and the If branch are exercised.
    assert.ok(fromFile[3].exitTaken.some((e) => e === 2) && fromFile[3].exitTaken.some((e) => e === 1));
    const overridden = safeThresholds(model.net, data, 0.6);
    const answers = await checkParity(model.net, null, data, pixels, overridden, 'MNIST');
    const onward = (r: ExitResults) => r.exitTaken.filter((e) => e === 2).length;
    assert.ok(
      onward(answers[0]) > 2 * onward(fromFile[0]),
      `the overridden threshold sends more rows to exit 2 (${onward(answers[0])} vs ${onward(fromFile[0])})`,
    );
    await checkLastExit(model.net, null, data, pixels, 'MNIST');
    // Image packing: whole groups of 16 rows through the packed first convolution, the rest plain (batch 7: none packed).
    await checkParity(model.net, null, data, pixels, overridden, 'MNIST, image packing', true);
    const packedGraph = decodeModel(
      exportSingleFile(model.net, { thresholds: overridden, imagePacking: true }).bytes,
    ).graph!;
    const groups: number[] = [];
    const walk = (g: typeof packedGraph) => {
      for (const n of g.node!) {
        if (n.opType === 'Conv') groups.push(Number(n.attribute!.find((a) => a.name === 'group')?.i ?? 1));
        for (const a of n.attribute ?? []) if (a.g) walk(a.g);
      }
    };
    walk(packedGraph);
    assert.equal(
      groups.filter((g) => g === 16).length,
      5,
      "one depthwise convolution over 16 images per filter of B-LeNet's first layer",
    );
  } finally {
    model.net.dispose();
    model.baseline?.dispose();
  }
});

test('single file with three exits (every layer kind): rows answer at each exit, as the per-stage runner', async (t) => {
  if (ortError) return t.skip(`onnxruntime-node did not load: ${ortError}`);
  const net = new BranchyNet(tinySpec(), 5);
  try {
    const rng = new Rng(11);
    const count = 300;
    const pixels = Float32Array.from({ length: count * 9 * 9 * 2 }, () => rng.int(256));
    const data: Dataset = {
      images: Float32Array.from(pixels, (p) => p / 255),
      labels: new Uint8Array(count),
      count,
      shape: [9, 9, 2],
      classes: ['0', '1', '2', '3'],
    };
    const thresholds = safeThresholds(net, data, 0.4, 1e-5);
    const answers = await checkParity(net, null, data, pixels, thresholds, 'tiny');
    for (const k of [0, 1, 2])
      assert.ok(
        answers[0].exitTaken.some((e) => e === k + 1),
        `some row answers at exit ${k + 1} (thresholds [${thresholds.join(', ')}])`,
      );
    await checkParity(net, null, data, pixels, [0, 100], 'tiny (all rows through exit 2)');
    await checkLastExit(net, null, data, pixels, 'tiny');
  } finally {
    net.dispose();
  }
});

test('single file on B-ResNet-56 with CIFAR-10 test images (normalisation inside the graph)', async (t) => {
  if (ortError) return t.skip(`onnxruntime-node did not load: ${ortError}`);
  if (cifarTestDir() === undefined) return t.skip(NO_CIFAR);
  const model = loadModel(RESNET);
  try {
    const raw = headDataset(loadDataset('cifar10').test, 128);
    const data = normalizeDataset(raw, model.normalization!);
    const pixels = toPixels(raw.images);
    await checkParity(model.net, model.normalization, data, pixels, model.thresholds!, 'CIFAR-10');
    await checkParity(model.net, model.normalization, data, pixels, safeThresholds(model.net, data, 0.5), 'CIFAR-10');
    await checkLastExit(model.net, model.normalization, data, pixels, 'CIFAR-10');
  } finally {
    model.net.dispose();
    model.baseline?.dispose();
  }
});

test('single file: names, types, the thresholds default and the metadata a user of the bare file needs', () => {
  const net = new BranchyNet(tinySpec(), 5);
  try {
    const { bytes, info } = exportSingleFile(net, {
      thresholds: [0.5, 0.75],
      classes: ['a', 'b', 'c', 'd'],
      normalization: { mean: [0.5, 0.25], std: [0.2, 0.1] },
    });
    const model = decodeModel(bytes);
    const graph = model.graph!;
    const tensorOf = (v: {
      type?: {
        tensorType?: {
          elemType?: number | null;
          shape?: { dim?: { dimValue?: unknown; dimParam?: string | null }[] | null } | null;
        } | null;
      } | null;
    }) => ({
      elem: v.type!.tensorType!.elemType,
      dims: v.type!.tensorType!.shape!.dim!.map((d) => (d.dimParam ? d.dimParam : Number(d.dimValue))),
    });
    assert.deepEqual(
      graph.input!.map((i) => [i.name, tensorOf(i)]),
      [
        [SINGLE_NAMES.image, { elem: 1, dims: ['N', 9, 9, 2] }],
        [SINGLE_NAMES.thresholds, { elem: 1, dims: [2] }],
      ],
    );
    assert.deepEqual(
      graph.output!.map((o) => [o.name, tensorOf(o)]),
      [
        [SINGLE_NAMES.logits, { elem: 1, dims: ['N', 4] }],
        [SINGLE_NAMES.exit, { elem: 7, dims: ['N'] }],
        [SINGLE_NAMES.entropy, { elem: 1, dims: ['N'] }],
      ],
    );
    const init = graph.initializer!.find((i) => i.name === SINGLE_NAMES.thresholds)!;
    assert.deepEqual(Array.from(new Float32Array(Uint8Array.from(init.rawData!).buffer)), [0.5, 0.75]);
    const meta = Object.fromEntries(model.metadataProps!.map((p) => [p.key, p.value]));
    assert.deepEqual(JSON.parse(meta['branchynet.classes']!), ['a', 'b', 'c', 'd']);
    assert.deepEqual(JSON.parse(meta['branchynet.thresholds']!), [0.5, 0.75]);
    assert.deepEqual(JSON.parse(meta['branchynet.macs_per_exit']!), info.macsPerExit);
    assert.match(meta['branchynet.exit_rule']!, /entropy < thresholds\[k - 1\].*natural log/);
    assert.match(meta['branchynet.normalization']!, /0-255.*mean \[0\.5, 0\.25\], std \[0\.2, 0\.1\]/);
    // Control flow: one If per non-final exit, nested; compaction and scatter inside the branches.
    const ops: string[] = [];
    const walk = (g: typeof graph, depth: number) => {
      for (const n of g.node!) {
        ops.push(`${depth}:${n.opType}`);
        for (const a of n.attribute ?? []) if (a.g) walk(a.g, depth + 1);
      }
    };
    walk(graph, 0);
    assert.equal(ops.filter((o) => o === '0:If').length, 1);
    assert.equal(ops.filter((o) => o === '1:If').length, 1);
    for (const op of ['NonZero', 'GatherND', 'ScatterND'])
      assert.ok(ops.includes(`1:${op}`) && ops.includes(`2:${op}`), op);
    assert.ok(
      !ops.some((o) => /^0:(NonZero|GatherND|ScatterND)$/.test(o)),
      'a batch that answers at exit 1 runs no compaction',
    );
  } finally {
    net.dispose();
  }
});

/** A python3 that has the onnx package (Debian's python3-onnx), or null. */
function pythonWithOnnx(): string | null {
  for (const python of ['python3', '/usr/bin/python3']) {
    const r = spawnSync(python, ['-c', 'import onnx'], { encoding: 'utf8' });
    if (r.status === 0) return python;
  }
  return null;
}

test('single file passes the ONNX checker with full shape inference', (t: TestContext) => {
  const python = pythonWithOnnx();
  if (!python) return t.skip('python3 with the onnx package not found (Debian: apt-get install python3-onnx)');
  const model = loadModel(LENET);
  const tiny = new BranchyNet(tinySpec(), 5);
  try {
    const files = [
      ['b-lenet', exportSingleFile(model.net, { thresholds: model.thresholds! }).bytes],
      ['b-lenet-packed', exportSingleFile(model.net, { thresholds: model.thresholds!, imagePacking: true }).bytes],
      [
        'tiny',
        exportSingleFile(tiny, { thresholds: [0.5, 0.75], normalization: { mean: [0.5, 0.25], std: [0.2, 0.1] } })
          .bytes,
      ],
    ] as const;
    for (const [name, bytes] of files) {
      const path = join(tmp, `${name}.onnx`);
      writeFileSync(path, bytes);
      const r: ReturnType<typeof spawnSync> = spawnSync(
        python,
        [
          '-c',
          'import onnx, sys; m = onnx.load(sys.argv[1]); onnx.checker.check_model(m, full_check=True); print("ok")',
          path,
        ],
        { encoding: 'utf8' },
      );
      assert.equal(r.status, 0, `${name}: ${String(r.stderr)}`);
      assert.equal(String(r.stdout).trim(), 'ok');
    }
  } finally {
    model.net.dispose();
    model.baseline?.dispose();
    tiny.dispose();
  }
});
