import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import type onnxProto from 'onnx-proto';
import { initBackend } from '../engine/backend.js';
import { trunkOf } from '../model/io.js';
import { BranchyNet } from '../model/network.js';
import type { BranchyNetSpec } from '../model/spec.js';
import { encodeModel, GraphBuilder, onnx, type ModelProto } from '../onnx/graph.js';
import { createOnnxRunner, loadOnnxRuntime } from '../node/onnx.js';
import { Rng } from '../rng.js';
import { randomizeBatchNorm } from '../testing/batch_norm_stats.js';
import { randomDataset } from '../testing/fixtures.js';
import { exportNetwork } from '../onnx/export.js';
import { calibrate } from '../eval/calibrate.js';
import { cumulativeExitMacs } from '../model/macs.js';
import { runChain } from './chain.js';
import { activationParams, dequantizeValue, quantizeBias, quantizeValue, quantizeWeightsPerChannel } from './maths.js';
import { activationsToQuantize, foldBatchNorms, quantizeGraph } from './qdq.js';
import { QUANT_GRAPH_OPTIONS, quantizeNetwork } from './quantize.js';

type Ort = typeof import('onnxruntime-node');
let ort: Ort | null = null;
let skip = '';

before(async () => {
  await initBackend('wasm');
  const loaded = await loadOnnxRuntime();
  if ('ort' in loaded) ort = loaded.ort;
  else skip = `onnxruntime-node did not load: ${loaded.error}`;
});

const DT = onnx.TensorProto.DataType;

/** A two-exit network with batch norms, a residual block, pools and dense layers, on 8x8x3. */
export function quantSpec(): BranchyNetSpec {
  return {
    name: 'quant-tiny',
    input: [8, 8, 3],
    classes: 4,
    segments: [
      [{ kind: 'conv2d', filters: 8, kernel: 3, pad: 1 }, { kind: 'batchNorm' }, { kind: 'relu' }],
      [
        { kind: 'resBlock', filters: 8 },
        { kind: 'resBlock', filters: 16, stride: 2 },
        { kind: 'avgPool', size: 4 },
        { kind: 'flatten' },
        { kind: 'dense', units: 4 },
      ],
    ],
    heads: [[{ kind: 'maxPool', size: 2, stride: 2 }, { kind: 'flatten' }, { kind: 'dense', units: 4 }], []],
  };
}

function initializers(model: ModelProto): Map<string, onnxProto.onnx.ITensorProto> {
  return new Map(model.graph!.initializer!.map((t) => [t.name!, t]));
}

/** One 3x3 convolution (2 -> 3 channels, pad 1) and a Relu, float. */
function convGraph(w: Float32Array, b: Float32Array): ModelProto {
  const g = new GraphBuilder('conv');
  const x = g.input('x', ['N', 2, 5, 5]);
  const y = g.node('Conv', [x, g.floatConstant('w', [3, 2, 3, 3], w), g.floatConstant('b', [3], b)], {
    kernel_shape: [3, 3],
    pads: [1, 1, 1, 1],
  });
  g.output(g.node('Relu', [y]), 'y', ['N', 3, 5, 5]);
  return g.build('conv');
}

test('a quantised convolution computes the int8 arithmetic of the maths module, to one output step', async (t) => {
  if (!ort) return t.skip(skip);
  const rng = new Rng(3);
  const w = Float32Array.from({ length: 54 }, () => rng.normal() * 0.4);
  const b = Float32Array.from({ length: 3 }, () => rng.normal() * 0.2);
  const x = Float32Array.from({ length: 4 * 50 }, () => rng.next() * 3 - 1);
  const model = convGraph(w, b);
  assert.deepEqual(activationsToQuantize(model), ['x', 'y'], 'the Relu fuses: its input stays float');
  // The float output's range, for y's parameters.
  const float = (await runChain([{ model, input: 'x', next: null, logits: 'y' }], x, 4, [2, 5, 5])).logits[0];
  const px = activationParams(-1, 2);
  const py = activationParams(0, Math.max(...float));
  const q = quantizeGraph(
    model,
    new Map([
      ['x', px],
      ['y', py],
    ]),
  );
  const int8 = (await runChain([{ model: q, input: 'x', next: null, logits: 'y' }], x, 4, [2, 5, 5])).logits[0];
  // The same by hand: x and w through their quantisation, the bias in int32, conv in float64, relu, y quantised.
  const qw = quantizeWeightsPerChannel(w, [3, 2, 3, 3], 0);
  const qb = quantizeBias(b, px.scale, qw.scales);
  const xd = Float64Array.from(x, (v) => dequantizeValue(quantizeValue(v, px), px));
  let worst = 0;
  for (let n = 0; n < 4; n++) {
    for (let co = 0; co < 3; co++) {
      for (let i = 0; i < 5; i++) {
        for (let j = 0; j < 5; j++) {
          let acc = qb.values[co] * qb.scales[co];
          for (let ci = 0; ci < 2; ci++) {
            for (let di = 0; di < 3; di++) {
              for (let dj = 0; dj < 3; dj++) {
                const ii = i + di - 1;
                const jj = j + dj - 1;
                if (ii < 0 || ii >= 5 || jj < 0 || jj >= 5) continue;
                acc +=
                  xd[((n * 2 + ci) * 5 + ii) * 5 + jj] * qw.values[((co * 2 + ci) * 3 + di) * 3 + dj] * qw.scales[co];
              }
            }
          }
          const expected = dequantizeValue(quantizeValue(Math.max(0, acc), py), py);
          worst = Math.max(worst, Math.abs(int8[((n * 3 + co) * 5 + i) * 5 + j] - expected));
        }
      }
    }
  }
  assert.ok(worst <= py.scale * 1.001, `worst difference ${worst} against one output step ${py.scale}`);
  // And the int8 output is near the float one: within the input's and output's rounding.
  const err = Math.max(...float.map((f, i) => Math.abs(f - int8[i])));
  assert.ok(err < 0.1, `int8 vs float: ${err}`);
});

test('batch norm folding keeps the stage outputs and removes every BatchNormalization', async (t) => {
  if (!ort) return t.skip(skip);
  const net = new BranchyNet(quantSpec(), 5);
  randomizeBatchNorm(net, 6);
  const data = randomDataset(16, [8, 8, 3], 4, 7);
  const bundle = exportNetwork(net, trunkOf(net), QUANT_GRAPH_OPTIONS);
  const s = bundle.manifest.stages[0];
  const model = onnx.ModelProto.decode(bundle.files.get(s.file)!);
  const before = (
    await runChain(
      [{ model, input: s.input.name, next: s.outputs.activation!.name, logits: 'logits' }],
      data.images,
      16,
      [8, 8, 3],
    )
  ).logits[0];
  assert.equal(foldBatchNorms(model), 1);
  assert.ok(!model.graph!.node!.some((n) => n.opType === 'BatchNormalization'));
  const after = (
    await runChain(
      [{ model, input: s.input.name, next: s.outputs.activation!.name, logits: 'logits' }],
      data.images,
      16,
      [8, 8, 3],
    )
  ).logits[0];
  assert.ok(Math.max(...before.map((v, i) => Math.abs(v - after[i]))) < 1e-4);
});

test('a quantised seeded net: QDQ on every weight (int8, per channel) and activation, outputs within quantisation error of the float net', async (t) => {
  if (!ort) return t.skip(skip);
  const net = new BranchyNet(quantSpec(), 11);
  randomizeBatchNorm(net, 12);
  const baseline = trunkOf(net);
  const validation = randomDataset(400, [8, 8, 3], 4, 13);
  // Random labels: no accuracy to measure layers by, so none returns to float (tolerance 1).
  const { bundle, record } = await quantizeNetwork(net, baseline, validation, {
    calibrationSamples: 200,
    decisionSamples: 200,
    tolerance: 1,
  });
  assert.ok(
    [...record.stages, record.baseline].every((g) => g.floatLayers.length === 0 && g.int8Layers === g.weightedLayers),
  );
  for (const [file, bytes] of bundle.files) {
    const model = onnx.ModelProto.decode(bytes);
    const nodes = model.graph!.node!;
    const inits = initializers(model);
    const producer = new Map(nodes.flatMap((n) => n.output!.map((o) => [o, n] as const)));
    assert.ok(!nodes.some((n) => n.opType === 'BatchNormalization'), `${file}: batch norm folded`);
    const weighted = nodes.filter((n) => n.opType === 'Conv' || n.opType === 'Gemm');
    assert.ok(weighted.length > 0);
    for (const n of weighted) {
      const wdq = producer.get(n.input![1])!;
      assert.equal(wdq?.opType, 'DequantizeLinear', `${file} ${n.name}: weight through DequantizeLinear`);
      const wq = inits.get(wdq.input![0])!;
      assert.equal(wq.dataType, DT.INT8, `${file} ${n.name}: int8 weight initializer`);
      const axis = Number(wdq.attribute!.find((a) => a.name === 'axis')!.i);
      assert.equal(axis, n.opType === 'Conv' ? 0 : 1);
      const channels = Number(wq.dims![axis]);
      assert.deepEqual(inits.get(wdq.input![1])!.dims!.map(Number), [channels], 'one scale per output channel');
      assert.equal(inits.get(wdq.input![2])!.dataType, DT.INT8);
      const bdq = producer.get(n.input![2])!;
      assert.equal(bdq.opType, 'DequantizeLinear');
      assert.equal(inits.get(bdq.input![0])!.dataType, DT.INT32, 'int32 bias');
      assert.equal(
        producer.get(n.input![0])?.opType,
        'DequantizeLinear',
        `${file} ${n.name}: quantised activation input`,
      );
    }
    for (const n of nodes.filter((n) => n.opType === 'QuantizeLinear'))
      assert.equal(inits.get(n.input![2])!.dataType, DT.UINT8);
  }
  assert.equal(record.stages.length, 2);
  // Every sample through both exits, float and int8, on images the ranges were not taken from.
  const fresh = randomDataset(200, [8, 8, 3], 4, 14);
  const floatRunner = await createOnnxRunner({
    kind: 'bundle',
    bundle: exportNetwork(net, baseline, QUANT_GRAPH_OPTIONS),
  });
  const int8Runner = await createOnnxRunner({ kind: 'bundle', bundle });
  try {
    let a = floatRunner.input(fresh.images, fresh.count);
    let b = int8Runner.input(fresh.images, fresh.count);
    for (let k = 0; k < 2; k++) {
      const fo = await floatRunner.runStage(k, a);
      const io = await int8Runner.runStage(k, b);
      let se = 0;
      let ss = 0;
      let agree = 0;
      const rows = fresh.count;
      for (let r = 0; r < rows; r++) {
        let fa = 0;
        let ia = 0;
        for (let c = 0; c < 4; c++) {
          const f = fo.logits[r * 4 + c];
          const q = io.logits[r * 4 + c];
          se += (f - q) ** 2;
          ss += f ** 2;
          if (f > fo.logits[r * 4 + fa]) fa = c;
          if (q > io.logits[r * 4 + ia]) ia = c;
        }
        if (fa === ia) agree++;
      }
      // 8-bit rounding through a handful of layers: a few percent of the signal, rarely a changed answer.
      assert.ok(Math.sqrt(se / ss) < 0.05, `exit ${k + 1}: relative RMS error ${Math.sqrt(se / ss)}`);
      assert.ok(agree / rows >= 0.9, `exit ${k + 1}: ${agree} of ${rows} answers agree`);
      a = fo.next!;
      b = io.next!;
    }
  } finally {
    await Promise.all([floatRunner.release(), int8Runner.release()]);
    baseline.dispose();
    net.dispose();
  }
});

test('the int8 thresholds are calibrated on the validation data given, against the float baseline there', async (t) => {
  if (!ort) return t.skip(skip);
  const net = new BranchyNet(quantSpec(), 21);
  randomizeBatchNorm(net, 22);
  const baseline = trunkOf(net);
  const validation = randomDataset(300, [8, 8, 3], 4, 23);
  // Labels the float trunk gets mostly right, so that there is an accuracy to hold.
  const floatExport = exportNetwork(net, baseline, QUANT_GRAPH_OPTIONS);
  const bl = floatExport.manifest.baseline;
  const baseLogits = (
    await runChain(
      [
        {
          model: onnx.ModelProto.decode(floatExport.files.get(bl.file)!),
          input: bl.input.name,
          next: null,
          logits: 'logits',
        },
      ],
      validation.images,
      300,
      [8, 8, 3],
    )
  ).logits[0];
  const rng = new Rng(24);
  validation.labels.forEach((_, i) => {
    let best = 0;
    for (let c = 1; c < 4; c++) if (baseLogits[i * 4 + c] > baseLogits[i * 4 + best]) best = c;
    validation.labels[i] = rng.next() < 0.8 ? best : rng.int(4);
  });
  const { bundle, record } = await quantizeNetwork(net, baseline, validation, {
    calibrationSamples: 100,
    decisionSamples: 100,
    maxDrop: 0.02,
  });
  assert.equal(record.calibration.samples, validation.count);
  assert.equal(record.validation.samples, validation.count);
  const correct = Uint8Array.from(validation.labels, (l, i) => {
    let best = 0;
    for (let c = 1; c < 4; c++) if (baseLogits[i * 4 + c] > baseLogits[i * 4 + best]) best = c;
    return best === l ? 1 : 0;
  });
  const floatAccuracy = correct.reduce((s, c) => s + c, 0) / validation.count;
  assert.ok(
    Math.abs(record.validation.floatBaseline - floatAccuracy) < 1e-12,
    'the drop is held against the float baseline',
  );
  // Re-deriving the thresholds from the int8 stages' logits on the same validation images gives the record's.
  const stages = bundle.manifest.stages.map((s) => ({
    model: onnx.ModelProto.decode(bundle.files.get(s.file)!),
    input: s.input.name,
    next: s.outputs.activation?.name ?? null,
    logits: 'logits',
  }));
  const exitLogits = (await runChain(stages, validation.images, validation.count, [8, 8, 3])).logits;
  const again = calibrate({
    exitLogits,
    labels: validation.labels,
    classes: 4,
    exitMacs: cumulativeExitMacs(net.macs()),
    baselineAccuracy: floatAccuracy,
    baselineCorrect: correct,
    maxDrop: 0.02,
  });
  assert.deepEqual(again.chosen.thresholds, record.thresholds);
  assert.deepEqual(bundle.manifest.thresholds, record.thresholds);
  baseline.dispose();
  net.dispose();
});

test('encodeModel round-trips a quantised graph (int8 initializers survive protobuf)', () => {
  const w = Float32Array.from({ length: 54 }, (_, i) => (i - 27) / 27);
  const q = quantizeGraph(
    convGraph(w, new Float32Array(3)),
    new Map([
      ['x', activationParams(-1, 1)],
      ['y', activationParams(0, 4)],
    ]),
  );
  const back = onnx.ModelProto.decode(encodeModel(q));
  const int8 = back.graph!.initializer!.find((t) => t.dataType === DT.INT8 && t.dims!.length === 4)!;
  assert.deepEqual([...new Int8Array(Uint8Array.from(int8.rawData!).buffer)].slice(0, 3), [-127, -122, -118]);
});
