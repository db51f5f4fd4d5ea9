import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../engine/backend.js';
import { randomDataset, tinySpec } from '../testing/fixtures.js';
import { Rng } from '../rng.js';
import { analyseSpec, BranchyNet } from './network.js';
import { baselineOf } from './spec.js';
import { bLeNet } from './zoo.js';

before(async () => {
  await initBackend('wasm');
});

test('B-LeNet has the reference shapes: 30x30x5 at exit 1, 720 and 640 inputs to the dense layers', () => {
  const { segments, heads } = analyseSpec(bLeNet());
  assert.deepEqual(segments[0].outputShape, [30, 30, 5]);
  const trunkDense = segments[1].layers.find((l) => l.spec.kind === 'dense')!;
  assert.deepEqual(trunkDense.inputShape, [720]);
  const headDense = heads[0].layers.find((l) => l.spec.kind === 'dense')!;
  assert.deepEqual(headDense.inputShape, [640]);
});

test('B-LeNet MACs per segment and head match the hand count', () => {
  const { segments, heads } = analyseSpec(bLeNet());
  const conv = (o: number, k: number, cin: number, cout: number) => o * o * k * k * cin * cout;
  assert.equal(segments[0].macs, conv(30, 5, 1, 5));
  assert.equal(segments[1].macs, conv(17, 5, 5, 10) + conv(11, 5, 10, 20) + 720 * 84 + 84 * 10);
  assert.equal(heads[0].macs, conv(15, 3, 5, 10) + 640 * 10);
  assert.equal(heads[1].macs, 0);
  const baseline = analyseSpec(baselineOf(bLeNet())).segments[0].macs;
  assert.equal(baseline, segments[0].macs + segments[1].macs);
});

/** Chainer's max pooling with cover_all=True, written out naively. */
function chainerMaxPool(
  x: Float32Array,
  h: number,
  w: number,
  c: number,
  k: number,
  s: number,
): { out: number[]; oh: number; ow: number } {
  const oh = Math.ceil((h - k) / s) + 1;
  const ow = Math.ceil((w - k) / s) + 1;
  const out: number[] = [];
  for (let i = 0; i < oh; i++)
    for (let j = 0; j < ow; j++)
      for (let ch = 0; ch < c; ch++) {
        let m = -Infinity;
        for (let di = 0; di < k; di++)
          for (let dj = 0; dj < k; dj++) {
            const y = i * s + di;
            const z = j * s + dj;
            if (y < h && z < w) m = Math.max(m, x[(y * w + z) * c + ch]);
          }
        out.push(m);
      }
  return { out, oh, ow };
}

for (const [h, w, k, s] of [
  [17, 17, 2, 2],
  [30, 30, 2, 2],
  [15, 13, 3, 2],
  [16, 16, 3, 2],
  [7, 9, 3, 3],
]) {
  test(`maxPool rounds up like Chainer's cover_all: ${h}x${w}, window ${k}, stride ${s}`, () => {
    const rng = new Rng(h * 100 + w);
    const c = 3;
    const data = Float32Array.from({ length: h * w * c }, () => rng.normal());
    const expected = chainerMaxPool(data, h, w, c, k, s);
    const net = new BranchyNet({
      name: 'pool',
      input: [h, w, c],
      classes: expected.oh * expected.ow * c,
      segments: [[{ kind: 'maxPool', size: k, stride: s }, { kind: 'flatten' }]],
      heads: [[]],
    });
    const y = tf.tidy(() => net.segment(0, tf.tensor4d(data, [1, h, w, c]), { training: false }));
    assert.deepEqual(Array.from(y.dataSync()), expected.out.map(Math.fround));
    y.dispose();
    net.dispose();
  });
}

test('the fused inference plan computes the same logits as the layer-by-layer forward pass', () => {
  for (const spec of [tinySpec(), bLeNet()]) {
    const net = new BranchyNet(spec, 7);
    const data = randomDataset(5, spec.input, spec.classes, 3);
    const x: tf.Tensor = tf.tensor4d(data.images, [5, ...spec.input]);
    const reference = tf.tidy(() => net.forwardAll(x, { training: false }));
    // The spec's own blocks, composed literally, agree with the stage plan forwardAll follows.
    const literal = tf.tidy(() => {
      let a = x;
      return net.segments.map((_, k) => net.head(k, (a = net.segment(k, a, { training: false })), { training: false }));
    });
    literal.forEach((l, k) => {
      const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(l, reference[k]))).dataSync()[0]);
      assert.ok(diff < 1e-5, `${spec.name} exit ${k + 1} literal vs stage plan: max diff ${diff}`);
    });
    tf.dispose(literal);
    let a = x;
    for (let k = 0; k < net.exits; k++) {
      const next = net.inferSegment(k, a);
      const logits = net.inferHead(k, next);
      const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(logits, reference[k]))).dataSync()[0]);
      assert.ok(diff < 1e-5, `${spec.name} exit ${k + 1}: max diff ${diff}`);
      if (logits !== next) logits.dispose();
      if (a !== x) a.dispose();
      a = next;
    }
    tf.dispose([x, a, ...reference]);
    net.dispose();
  }
});

test('initialisation is seeded and a baseline warm-starts the trunk of its branchy net', () => {
  const a = new BranchyNet(tinySpec(), 5);
  const b = new BranchyNet(tinySpec(), 5);
  const c = new BranchyNet(tinySpec(), 6);
  const w = (n: BranchyNet) => Array.from(n.params.get('trunk.0.w')!.dataSync());
  assert.deepEqual(w(a), w(b));
  assert.notDeepEqual(w(a), w(c));
  const baseline = new BranchyNet(baselineOf(tinySpec()), 9);
  const copied = a.copyParamsFrom(baseline);
  assert.deepEqual(copied.sort(), [...baseline.params.keys()].sort());
  assert.deepEqual(w(a), Array.from(baseline.params.get('trunk.0.w')!.dataSync()));
  for (const n of [a, b, c, baseline]) n.dispose();
});

test('invalid specs are rejected with the layer named', () => {
  const spec = tinySpec();
  spec.heads[0] = [{ kind: 'dense', units: 4 }];
  assert.throws(() => analyseSpec(spec), /head0\.0 \(dense\): dense: expects a flat input/);
  const noHead = tinySpec();
  noHead.heads.pop();
  assert.throws(() => analyseSpec(noHead), /3 segments need 3 heads/);
  const wrongClasses = tinySpec();
  wrongClasses.classes = 5;
  assert.throws(() => analyseSpec(wrongClasses), /exit 1 must end in 5 class scores/);
});
