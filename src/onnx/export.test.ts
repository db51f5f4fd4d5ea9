import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import type { InferenceSession } from 'onnxruntime-node';
import { initBackend } from '../engine/backend.js';
import { trunkOf } from '../model/io.js';
import { BranchyNet } from '../model/network.js';
import type { BranchyNetSpec } from '../model/spec.js';
import { bAlexNet, bLeNet, bResNet } from '../model/zoo.js';
import { rowEntropy } from '../runtime/exit_rule.js';
import { loadOnnxRuntime } from '../node/onnx.js';
import { randomizeBatchNorm } from '../testing/batch_norm_stats.js';
import { randomDataset, tinySpec } from '../testing/fixtures.js';
import type { GraphOptions } from './export.js';
import type { OnnxExport, StageManifest } from './manifest.js';
import { exportNetwork, toNetworkOrder } from './export.js';
import { decodeModel, IR_VERSION, OPSET } from './graph.js';

type Ort = typeof import('onnxruntime-node');
let ort: Ort | null = null;
let skipReason = '';

before(async () => {
  await initBackend('wasm');
  const loaded = await loadOnnxRuntime();
  if ('ort' in loaded) ort = loaded.ort;
  else skipReason = `onnxruntime-node did not load: ${loaded.error}`;
});

/**
 * Flatten straight after a 3-channel conv on a non-square (7x5) map, the flat vector handed between stages, relu
 * between flatten and dense.
 */
function flattenOrderSpec(): BranchyNetSpec {
  return {
    name: 'flatten-order',
    input: [7, 5, 2],
    classes: 4,
    segments: [
      [{ kind: 'conv2d', filters: 3, kernel: 3, pad: 1 }, { kind: 'relu' }, { kind: 'flatten' }],
      [{ kind: 'relu' }, { kind: 'dense', units: 6 }, { kind: 'relu' }, { kind: 'dense', units: 4 }],
    ],
    heads: [[{ kind: 'dense', units: 4 }], []],
  };
}

/** A dense layer right after a multi-channel, non-square conv output, inside one stage and in an exit head. */
function flattenInStageSpec(): BranchyNetSpec {
  return {
    name: 'flatten-in-stage',
    input: [6, 4, 3],
    classes: 5,
    segments: [
      [{ kind: 'conv2d', filters: 4, kernel: 3, stride: 1, pad: 1 }],
      [{ kind: 'maxPool', size: 2, stride: 2 }, { kind: 'relu' }, { kind: 'flatten' }, { kind: 'dense', units: 5 }],
    ],
    heads: [
      [
        { kind: 'relu' },
        { kind: 'conv2d', filters: 3, kernel: 2, stride: 2 },
        { kind: 'flatten' },
        { kind: 'dense', units: 5 },
      ],
      [],
    ],
  };
}

/** The phase-convolution rewrite with an even kernel (odd padded size: an extra pad row and column) and 2 channels. */
function phaseConvSpec(): BranchyNetSpec {
  return {
    name: 'phase-conv-even-kernel',
    input: [9, 7, 2],
    classes: 3,
    segments: [
      [{ kind: 'conv2d', filters: 3, kernel: 4, pad: 2 }, { kind: 'relu' }, { kind: 'maxPool', size: 2, stride: 2 }],
      [{ kind: 'flatten' }, { kind: 'dense', units: 3 }],
    ],
    heads: [[{ kind: 'conv2d', filters: 2, kernel: 3, pad: 1 }, { kind: 'flatten' }, { kind: 'dense', units: 3 }], []],
  };
}

/**
 * The CIFAR-10 layer kinds in the cases the zoo's networks do not reach: LRN with an even n (a
 * window of n + 1 channels in Chainer's definition) and an alpha large enough that ONNX's alpha /
 * size convention shows; batch norm with a large epsilon, after a flatten (per-feature statistics
 * in (c, h, w) order) and after a dense layer; residual blocks of stride 2 on odd sizes, with and
 * without new channels; average pooling with stride 1 and 2; dropout at the end of a stage.
 */
function lrnBetaSpec(beta: number): BranchyNetSpec {
  return {
    name: 'lrn-beta',
    input: [5, 4, 6],
    classes: 3,
    segments: [[{ kind: 'lrn', n: 5, k: 1.5, alpha: 0.3, beta }, { kind: 'flatten' }, { kind: 'dense', units: 3 }]],
    heads: [[]],
  };
}

function cifarCasesSpec(): BranchyNetSpec {
  return {
    name: 'cifar-cases',
    input: [9, 7, 3],
    classes: 3,
    segments: [
      [
        { kind: 'conv2d', filters: 4, kernel: 3, pad: 1 },
        { kind: 'batchNorm', epsilon: 0.5 },
        { kind: 'relu' },
        { kind: 'lrn', n: 4, k: 1, alpha: 0.5, beta: 0.75 },
        { kind: 'resBlock', filters: 6, stride: 2 },
      ],
      [
        { kind: 'resBlock', filters: 6, stride: 2 },
        { kind: 'avgPool', size: 2, stride: 1 },
        { kind: 'flatten' },
        { kind: 'batchNorm' },
        { kind: 'dropout', rate: 0.5 },
      ],
      [{ kind: 'dense', units: 8 }, { kind: 'batchNorm', epsilon: 0.1 }, { kind: 'relu' }, { kind: 'dense', units: 3 }],
    ],
    heads: [
      [
        { kind: 'avgPool', size: 2, stride: 2 },
        { kind: 'lrn', n: 3, k: 2, alpha: 1, beta: 0.5 },
        { kind: 'flatten' },
        { kind: 'dropout', rate: 0.3 },
        { kind: 'dense', units: 3 },
      ],
      [{ kind: 'dense', units: 3 }],
      [],
    ],
  };
}

/** [name, spec, graph options, image scale: pixels (u - 0.5) * scale for u uniform in [0, 1), default u itself]. */
const SPECS: [string, () => BranchyNetSpec, GraphOptions, number?][] = [
  ['B-LeNet', bLeNet, {}],
  ['B-LeNet without the phase-convolution rewrite', bLeNet, { phaseConv: false }],
  ['B-LeNet without channel padding', bLeNet, { padChannels: false }],
  ['tiny (3 exits)', tinySpec, {}],
  ['flatten order (flat activation handed on)', flattenOrderSpec, {}],
  ['flatten order (inside a stage)', flattenInStageSpec, {}],
  ['phase convolution (even kernel, 2 channels)', phaseConvSpec, {}],
  // CIFAR-10 networks, on images in [-2, 2] (about what the normalised CIFAR-10 pixels span).
  ['B-AlexNet', bAlexNet, {}, 4],
  ['B-ResNet-20', () => bResNet(20), {}, 4],
  ['CIFAR layer cases (LRN, batch norm, residual blocks, average pooling, dropout)', cifarCasesSpec, {}, 4],
  ['CIFAR layer cases with ONNX LRN nodes', cifarCasesSpec, { lrnAsConv: false }, 4],
  ['LRN of another beta (through Pow)', () => lrnBetaSpec(0.6), {}, 4],
];

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function sessions(bundle: OnnxExport, stages: StageManifest[]): Promise<InferenceSession[]> {
  return Promise.all(
    stages.map((s) => ort!.InferenceSession.create(bundle.files.get(s.file)!, { intraOpNumThreads: 1 })),
  );
}

test('the export is a valid ONNX model per stage: opset, dynamic batch, the manifest names and shapes', () => {
  const net = new BranchyNet(bLeNet(), 1);
  const base = trunkOf(net);
  const bundle = exportNetwork(net, base, { thresholds: [0.05] });
  const m = bundle.manifest;
  assert.equal(m.stages.length, 2);
  assert.deepEqual(m.classes, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
  assert.deepEqual(m.thresholds, [0.05]);
  assert.deepEqual(m.input, { name: 'image', shape: ['N', 28, 28, 1], layout: 'NHWC' });
  assert.deepEqual(m.stages[0].outputs.activation, {
    name: 'next_activation',
    shape: ['N', 5, 15, 15],
    layout: 'NCHW',
  });
  assert.deepEqual(m.stages[1].input, { name: 'activation', shape: ['N', 5, 15, 15], layout: 'NCHW' });
  assert.equal(m.stages[1].outputs.activation, null);
  const macs = net.macs();
  assert.equal(m.stages[0].macs, macs.segments[0] + macs.heads[0]);
  // Answering at exit 2 costs both segments and both heads: a sample there ran exit 1 too.
  assert.equal(m.stages[1].cumulativeMacs, macs.segments[0] + macs.heads[0] + macs.segments[1] + macs.heads[1]);
  assert.equal(m.baseline.macs, base.macs().segments[0]);
  assert.deepEqual([...bundle.files.keys()].sort(), [
    'baseline.onnx',
    'baseline.packed.onnx',
    'stage-1.onnx',
    'stage-1.packed.onnx',
    'stage-2.onnx',
  ]);
  assert.deepEqual(m.stages[0].packed, { file: 'stage-1.packed.onnx', rowMultiple: 16 });
  assert.equal(m.stages[1].packed, undefined, 'stage 2 takes a 5-channel activation: nothing to pack');
  assert.deepEqual(m.baseline.packed, { file: 'baseline.packed.onnx', rowMultiple: 16 });
  const files = [...m.stages, m.baseline].flatMap((s) => [
    { stage: s, file: s.file },
    ...(s.packed ? [{ stage: s, file: s.packed.file }] : []),
  ]);
  for (const { stage, file } of files) {
    const model = decodeModel(bundle.files.get(file)!);
    assert.equal(Number(model.irVersion), IR_VERSION);
    assert.deepEqual(
      model.opsetImport.map((o) => [o.domain, Number(o.version)]),
      [['', OPSET]],
    );
    const g = model.graph!;
    const [inputs, outputsOf, nodes] = [g.input ?? [], g.output ?? [], g.node ?? []];
    assert.deepEqual(
      inputs.map((i) => i.name),
      [stage.input.name],
    );
    const outputs = [stage.outputs.activation, stage.outputs.logits, stage.outputs.entropy].filter((o) => o !== null);
    assert.deepEqual(
      outputsOf.map((o) => o.name),
      outputs.map((o) => o!.name),
    );
    for (const v of [...inputs, ...outputsOf]) {
      const dims = v.type!.tensorType!.shape!.dim!;
      assert.equal(dims[0].dimParam, 'N', `${v.name}: dynamic batch`);
    }
    assert.ok(
      nodes.some((n) => n.opType === 'ReduceLogSumExp'),
      'entropy computed in the graph',
    );
  }
  base.dispose();
  net.dispose();
});

for (const [name, makeSpec, graphOptions, imageScale] of SPECS) {
  test(`${name}: every stage on ONNX Runtime matches the tfjs forward pass (activation, logits, entropy)`, async (t) => {
    if (!ort) return t.skip(skipReason);
    const spec = makeSpec();
    const net = new BranchyNet(spec, 5);
    // Batch norms run on running statistics other than a fresh network's (0 and 1).
    randomizeBatchNorm(net, 17);
    const base = trunkOf(net);
    const bundle = exportNetwork(net, base, graphOptions);
    const stageSessions = await sessions(bundle, bundle.manifest.stages);
    const [baseSession] = await sessions(bundle, [bundle.manifest.baseline]);
    let worst = 0;
    let worstActivation = 0;
    let largest = 0;
    for (const count of [1, 6]) {
      const data = randomDataset(count, spec.input, spec.classes, 40 + count);
      if (imageScale !== undefined)
        for (let i = 0; i < data.images.length; i++) data.images[i] = (data.images[i] - 0.5) * imageScale;
      const image = new ort.Tensor('float32', data.images, [count, ...spec.input]);
      let fed: import('onnxruntime-node').Tensor = image;
      let x: tf.Tensor = tf.tensor4d(data.images, [count, ...spec.input]);
      for (let k = 0; k < net.exits; k++) {
        const stage = bundle.manifest.stages[k];
        const out = await stageSessions[k].run({ [stage.input.name]: fed });
        const a = net.inferSegment(k, x);
        const logits = net.inferHead(k, a);
        const expected = logits.dataSync();
        const got = out[stage.outputs.logits.name];
        assert.deepEqual(got.dims, [count, spec.classes]);
        const d = maxAbsDiff(got.data as Float32Array, expected);
        assert.ok(d <= 1e-4, `exit ${k + 1} logits differ by ${d}`);
        worst = Math.max(worst, d);
        largest = Math.max(largest, maxAbsDiff(expected, new Float32Array(expected.length)));
        const entropy = out[stage.outputs.entropy!.name];
        assert.deepEqual(entropy.dims, [count]);
        const h = Array.from({ length: count }, (_, i) => rowEntropy(expected, i, spec.classes).entropy);
        const dh = maxAbsDiff(entropy.data as Float32Array, h);
        assert.ok(dh <= 1e-4, `exit ${k + 1} entropies differ by ${dh}`);
        if (logits !== a) logits.dispose();
        if (stage.outputs.activation) {
          const next = out[stage.outputs.activation.name];
          assert.deepEqual(next.dims, [count, ...stage.outputs.activation.shape.slice(1)]);
          const da = maxAbsDiff(toNetworkOrder(next.data as Float32Array, stage.outputs.activation), a.dataSync());
          assert.ok(da <= 1e-4, `activation handed on by stage ${k + 1} differs by ${da}`);
          worstActivation = Math.max(worstActivation, da);
          fed = next;
        }
        x.dispose();
        x = a;
      }
      x.dispose();
      // The baseline (trunk alone) is one stage from the image.
      const bout = await baseSession.run({ image });
      const trunk = tf.tidy(
        () => base.forwardAll(tf.tensor4d(data.images, [count, ...spec.input]), { training: false })[0],
      );
      const db = maxAbsDiff(bout.logits.data as Float32Array, trunk.dataSync());
      trunk.dispose();
      assert.ok(db <= 1e-4, `baseline logits differ by ${db}`);
    }
    t.diagnostic(
      `max |logits diff| ${worst.toExponential(2)} (max |logit| ${largest.toFixed(2)}), max |activation diff| ${worstActivation.toExponential(2)}`,
    );
    await Promise.all([...stageSessions, baseSession].map((s) => s.release()));
    base.dispose();
    net.dispose();
  });
}

test('the flatten-order case is a real test: the graph flattens in (c, h, w) order and the dense rows are permuted', () => {
  const net = new BranchyNet(flattenOrderSpec(), 3);
  const bundle = exportNetwork(net, trunkOf(net));
  const handed = bundle.manifest.stages[0].outputs.activation!;
  assert.deepEqual(handed, { name: 'next_activation', shape: ['N', 105], layout: 'NF', flattenedFrom: [7, 5, 3] });
  // NCHW feature (ch, i, j) sits at (ch * 7 + i) * 5 + j; in the network's order at (i * 5 + j) * 3 + ch.
  const chw = Float32Array.from({ length: 105 }, (_, f) => f);
  const hwc = toNetworkOrder(chw, handed);
  assert.equal(hwc[(2 * 5 + 4) * 3 + 1], (1 * 7 + 2) * 5 + 4);
  assert.notDeepEqual(hwc, chw);
  net.dispose();
});

test('the phase-convolution rewrite applies where it should and can be turned off', () => {
  const ops = (bundle: OnnxExport, file: string) =>
    (decodeModel(bundle.files.get(file)!).graph!.node ?? []).map((n) => n.opType);
  const net = new BranchyNet(bLeNet(), 1);
  const base = trunkOf(net);
  const on = exportNetwork(net, base);
  assert.deepEqual(on.manifest.stages[0].layers.trunk, ['conv2d+relu+maxPool (phase convolution)']);
  assert.deepEqual(ops(on, 'stage-1.onnx').slice(0, 5), ['Reshape', 'Conv', 'Relu', 'Reshape', 'ReduceMax']);
  const phaseConvs = (b: OnnxExport, file: string) =>
    (decodeModel(b.files.get(file)!).graph!.node ?? []).filter((n) => n.name?.includes('phase_conv')).length;
  // Only the first layer qualifies: the branch conv has 5 input channels, the trunk's next convs odd outputs.
  assert.equal(phaseConvs(on, 'stage-2.onnx'), 0);
  assert.equal(phaseConvs(on, 'baseline.onnx'), 1);
  const off = exportNetwork(net, base, { phaseConv: false });
  assert.deepEqual(off.manifest.stages[0].layers.trunk, ['conv2d', 'relu', 'maxPool']);
  assert.ok(!ops(off, 'stage-1.onnx').includes('ReduceMax'));
  assert.equal(phaseConvs(off, 'stage-1.onnx'), 0);
  const even = new BranchyNet(phaseConvSpec(), 1);
  const evenTrunk = trunkOf(even);
  assert.deepEqual(exportNetwork(even, evenTrunk).manifest.stages[0].layers.trunk, [
    'conv2d+relu+maxPool (phase convolution)',
  ]);
  for (const n of [base, net, even, evenTrunk]) n.dispose();
});

test('image packing: a packed first stage and baseline where the image has one channel, none elsewhere or when turned off', () => {
  const net = new BranchyNet(bLeNet(), 1);
  const base = trunkOf(net);
  const on = exportNetwork(net, base);
  // The manifest describes the plain graph (the phase convolution); the packed one replaces it.
  assert.deepEqual(on.manifest.stages[0].layers.trunk, ['conv2d+relu+maxPool (phase convolution)']);
  const graph = decodeModel(on.files.get('stage-1.packed.onnx')!).graph!;
  const convs = (graph.node ?? []).filter(
    (n) => n.opType === 'Conv' && n.attribute?.some((a) => a.name === 'group' && Number(a.i) === 16),
  );
  assert.equal(convs.length, 5, 'one depthwise convolution per filter of the 1 -> 5 layer');
  assert.deepEqual(
    (graph.node ?? []).slice(0, 3).map((n) => n.opType),
    ['Reshape', 'Reshape', 'Conv'],
  );
  assert.ok(!(graph.node ?? []).some((n) => n.opType === 'ReduceMax'), 'no phase convolution in the packed graph');
  const off = exportNetwork(net, base, { imagePacking: false });
  assert.deepEqual([...off.files.keys()].sort(), ['baseline.onnx', 'stage-1.onnx', 'stage-2.onnx']);
  assert.equal(off.manifest.stages[0].packed, undefined);
  assert.equal(off.manifest.baseline.packed, undefined);
  // Three-channel images (CIFAR-10): no packed graph.
  const alex = new BranchyNet(bAlexNet(), 1);
  const alexTrunk = trunkOf(alex);
  const cifar = exportNetwork(alex, alexTrunk);
  assert.equal(cifar.manifest.stages[0].packed, undefined);
  assert.ok(![...cifar.files.keys()].some((f) => f.includes('packed')));
  for (const n of [base, net, alex, alexTrunk]) n.dispose();
});

test("a packed graph gives its plain graph's outputs on whole groups of 16 images and refuses other batch sizes", async (t) => {
  if (!ort) return t.skip(skipReason);
  const o: Ort = ort;
  const spec = bLeNet();
  const net = new BranchyNet(spec, 6);
  const base = trunkOf(net);
  const bundle = exportNetwork(net, base);
  for (const stage of [bundle.manifest.stages[0], bundle.manifest.baseline]) {
    const [plain, packed] = await Promise.all(
      [stage.file, stage.packed!.file].map((f) =>
        o.InferenceSession.create(bundle.files.get(f)!, { intraOpNumThreads: 1 }),
      ),
    );
    const data = randomDataset(32, spec.input, spec.classes, 71);
    const image = new o.Tensor('float32', data.images, [32, ...spec.input]);
    const [want, got] = await Promise.all([plain.run({ image }), packed.run({ image })]);
    for (const name of plain.outputNames) {
      assert.deepEqual(got[name].dims, want[name].dims, `${stage.file} ${name}: shape`);
      let d = 0;
      const [a, b] = [want[name].data as Float32Array, got[name].data as Float32Array];
      for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
      assert.ok(d <= 1e-5, `${stage.file} ${name}: packed differs by ${d}`);
    }
    const odd = new o.Tensor('float32', data.images.subarray(0, 20 * 784), [20, ...spec.input]);
    await assert.rejects(() => packed.run({ image: odd }), Error, 'a batch of 20 does not split into groups of 16');
    await Promise.all([plain.release(), packed.release()]);
  }
  base.dispose();
  net.dispose();
});

test('entropy: false leaves the six entropy nodes and the entropy output out of every stage', () => {
  const net = new BranchyNet(bLeNet(), 1);
  const base = trunkOf(net);
  const withEntropy = exportNetwork(net, base);
  const without = exportNetwork(net, base, { entropy: false });
  for (const [i, stage] of without.manifest.stages.entries()) {
    assert.equal(stage.outputs.entropy, null);
    const graph = (b: OnnxExport, file: string) => decodeModel(b.files.get(file)!).graph!;
    const full = graph(withEntropy, withEntropy.manifest.stages[i].file);
    const lean = graph(without, stage.file);
    assert.deepEqual(
      (lean.output ?? []).map((o) => o.name),
      (full.output ?? []).map((o) => o.name).filter((n) => n !== 'entropy'),
    );
    assert.equal((full.node ?? []).length - (lean.node ?? []).length, 6);
    assert.ok(!(lean.node ?? []).some((n) => n.opType === 'ReduceLogSumExp'));
  }
  base.dispose();
  net.dispose();
});

test('channel padding widens exactly the convolutions pooled within a stage, to 16 filters, and can be turned off', () => {
  const convShapes = (bundle: OnnxExport, file: string) => {
    const graph = decodeModel(bundle.files.get(file)!).graph!;
    const dims = new Map((graph.initializer ?? []).map((i) => [i.name, (i.dims ?? []).map(Number)]));
    return (graph.node ?? [])
      .filter((n) => n.opType === 'Conv' || n.opType === 'Gemm')
      .map((n) => `${n.opType} ${dims.get(n.input![1])}`);
  };
  const net = new BranchyNet(bLeNet(), 1);
  const base = trunkOf(net);
  const on = exportNetwork(net, base);
  // Stage 1: the first conv is the phase convolution (left alone, its output is handed on); the
  // branch's 5->10 conv becomes 5->16 and its dense layer reads 8*8*16 features.
  assert.deepEqual(convShapes(on, 'stage-1.onnx'), ['Conv 20,1,6,6', 'Conv 16,5,3,3', 'Gemm 1024,10']);
  // Stage 2 (as the baseline after its first layer): 5->10 becomes 5->16, 10->20 becomes 16->32, the dense layer
  // 6*6*32 rows.
  assert.deepEqual(convShapes(on, 'stage-2.onnx'), ['Conv 16,5,5,5', 'Conv 32,16,5,5', 'Gemm 1152,84', 'Gemm 84,10']);
  assert.deepEqual(convShapes(on, 'baseline.onnx'), [
    'Conv 20,1,6,6',
    'Conv 16,5,5,5',
    'Conv 32,16,5,5',
    'Gemm 1152,84',
    'Gemm 84,10',
  ]);
  const off = exportNetwork(net, base, { padChannels: false });
  assert.deepEqual(convShapes(off, 'stage-2.onnx'), ['Conv 10,5,5,5', 'Conv 20,10,5,5', 'Gemm 720,84', 'Gemm 84,10']);
  // The handed-on activation keeps its real channels.
  assert.deepEqual(on.manifest.stages[0].outputs.activation, off.manifest.stages[0].outputs.activation);
  base.dispose();
  net.dispose();
});

test('LRN is exported as a band 1x1 convolution of the squares unless lrnAsConv is false', () => {
  const net = new BranchyNet(cifarCasesSpec(), 1);
  const ops = (b: OnnxExport) => (decodeModel(b.files.get('stage-1.onnx')!).graph!.node ?? []).map((n) => n.opType);
  const conv = ops(exportNetwork(net, trunkOf(net)));
  assert.ok(!conv.includes('LRN'));
  assert.equal(conv.filter((o) => o === 'Sqrt').length, 3, 'beta 0.75: two square roots; beta 0.5: one');
  assert.equal(ops(exportNetwork(net, trunkOf(net), { lrnAsConv: false })).filter((o) => o === 'LRN').length, 2);
  net.dispose();
});

test('the CIFAR-10 layer kinds export as standard ONNX operators with the converted attributes', () => {
  const attrs = (n: { attribute?: { name?: string | null; f?: number | null; i?: unknown }[] | null }) =>
    Object.fromEntries((n.attribute ?? []).map((a) => [a.name, a.f || Number(a.i)]));
  const net = new BranchyNet(cifarCasesSpec(), 1);
  const bundle = exportNetwork(net, trunkOf(net), { lrnAsConv: false });
  const nodes = (file: string) => decodeModel(bundle.files.get(file)!).graph!.node ?? [];
  const stage1 = nodes('stage-1.onnx');
  const ops = stage1.map((n) => n.opType);
  for (const op of ['BatchNormalization', 'LRN', 'Add', 'AveragePool'])
    assert.ok(ops.includes(op), `stage 1 has ${op}: ${ops}`);
  // The shortcut is a 1x1 convolution, so that ONNX Runtime keeps the block in its blocked layout.
  for (const op of ['Slice', 'Pad']) assert.ok(!ops.includes(op), `stage 1 has no ${op}: ${ops}`);
  assert.ok(!ops.includes('Dropout'), 'dropout is no node at inference');
  // Chainer's LRN (n = 4: channels c-2..c+2, alpha not divided) is ONNX LRN of size 5 with alpha * 5.
  const [lrn4, lrn3] = stage1.filter((n) => n.opType === 'LRN').map(attrs);
  assert.deepEqual([lrn4.size, lrn4.alpha, lrn4.bias, lrn4.beta], [5, 2.5, 1, 0.75]);
  assert.deepEqual([lrn3.size, lrn3.alpha, lrn3.bias, lrn3.beta], [3, 3, 2, 0.5]);
  const eps = (file: string) =>
    nodes(file)
      .filter((n) => n.opType === 'BatchNormalization')
      .map((n) => Math.fround(attrs(n).epsilon));
  // The stem's batch norm (0.5) and the residual block's two (the default 2e-5).
  assert.deepEqual(eps('stage-1.onnx'), [0.5, 2e-5, 2e-5].map(Math.fround));
  assert.deepEqual(eps('stage-3.onnx'), [Math.fround(0.1)]);
  // The shortcut (4 -> 6 channels, stride 2) takes every second pixel and puts the zero channels
  // in front, as Chainer's concat((zeros, x)): output channel o is input channel o - 2.
  const shortcut = stage1.find(
    (n) => n.opType === 'Conv' && Number(n.attribute!.find((a) => a.name === 'kernel_shape')!.ints![0]) === 1,
  )!;
  assert.deepEqual(shortcut.attribute!.find((a) => a.name === 'strides')!.ints!.map(Number), [2, 2]);
  const weights = decodeModel(bundle.files.get('stage-1.onnx')!).graph!.initializer!.find(
    (i) => i.name === shortcut.input![1],
  )!;
  assert.deepEqual(weights.dims!.map(Number), [6, 4, 1, 1]);
  const w = new Float32Array(Uint8Array.from(weights.rawData!).buffer);
  for (let o = 0; o < 6; o++)
    for (let i = 0; i < 4; i++) assert.equal(w[o * 4 + i], o === i + 2 ? 1 : 0, `weight ${o},${i}`);
  assert.deepEqual(bundle.manifest.stages[1].layers.trunk, ['resBlock', 'avgPool', 'flatten', 'batchNorm', 'dropout']);
  assert.deepEqual(bundle.manifest.stages[1].outputs.activation, {
    name: 'next_activation',
    shape: ['N', 12],
    layout: 'NF',
    flattenedFrom: [2, 1, 6],
  });
  net.dispose();
});
