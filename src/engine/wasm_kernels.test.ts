import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's Node build registers no gradients; the union package's does.
import '@tensorflow/tfjs';
import { initBackend } from './backend.js';
import { kernelsRegistered, registerKernels, unregisterKernels, WASM_KERNEL_CONFIGS } from './register_wasm_kernels.js';
import { convCaseName as caseName, convCases, sizeOf, uniform as rng } from '../testing/kernel_cases.js';
import type { Shape4 } from '../testing/kernel_cases.js';
import type { Result } from '../testing/assert_close.js';
import { assertCloseOne as assertClose } from '../testing/assert_close.js';

function randomValues(size: number, rand: () => number): Float32Array {
  const v = new Float32Array(size);
  for (let i = 0; i < size; i++) v[i] = rand();
  return v;
}

/** Runs `fn` on `backend` and reads back its (single) output. */
async function on(backend: 'wasm' | 'cpu', fn: () => tf.Tensor): Promise<Result> {
  await initBackend(backend);
  const out = tf.tidy(fn);
  const result = { shape: out.shape.slice(), values: out.dataSync() as Float32Array };
  out.dispose();
  return result;
}

test('our kernels are registered on the wasm backend, idempotently', async () => {
  await initBackend('wasm');
  assert.ok(kernelsRegistered());
  const warnings: unknown[] = [];
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    warnings.push(args);
  };
  try {
    registerKernels();
    registerKernels();
    await initBackend('wasm');
  } finally {
    console.warn = warn;
  }
  assert.deepEqual(warnings, []);
  for (const c of WASM_KERNEL_CONFIGS) assert.equal(tf.getKernel(c.kernelName, 'wasm'), c);
  assert.equal(tf.getKernel(tf.Conv2DBackpropFilter, 'wasm'), WASM_KERNEL_CONFIGS[0]);

  unregisterKernels();
  assert.ok(!kernelsRegistered());
  assert.equal(tf.getKernel(tf.Conv2DBackpropFilter, 'wasm'), undefined); // stock wasm has none
  assert.notEqual(tf.getKernel(tf.BatchMatMul, 'wasm'), undefined);
  // The restored stock kernels are usable (their wasm functions are bound).
  tf.tidy(() => {
    const y = tf.ones([1, 6, 6, 2]) as tf.Tensor4D;
    const f = tf.ones([3, 3, 3, 2]) as tf.Tensor4D;
    assert.deepEqual(tf.conv2dTranspose(y, f, [1, 8, 8, 3], 1, 'valid').shape, [1, 8, 8, 3]);
    assert.deepEqual(tf.matMul(tf.ones([2, 3]), tf.ones([4, 3]), false, true).shape, [2, 4]);
    assert.deepEqual(tf.fused.matMul({ a: tf.ones([2, 3]), b: tf.ones([4, 3]), transposeB: true }).shape, [2, 4]);
  });
  registerKernels();
  assert.ok(kernelsRegistered());
});

test('Conv2DBackpropFilter and Conv2DBackpropInput match the cpu backend', async () => {
  const rand = rng(42);
  for (const c of convCases()) {
    const info = tf.backend_util.computeConv2DInfo(c.x, c.f, c.strides, 1, c.pad);
    const dyShape = info.outShape;
    const xv = randomValues(sizeOf(c.x), rand);
    const fv = randomValues(sizeOf(c.f), rand);
    const dyv = randomValues(sizeOf(dyShape), rand);
    const common = { strides: c.strides, pad: c.pad, dataFormat: 'NHWC' };
    const filterGrad = (): tf.Tensor =>
      tf
        .engine()
        .runKernel(
          tf.Conv2DBackpropFilter,
          { x: tf.tensor4d(xv, c.x), dy: tf.tensor4d(dyv, dyShape) },
          { ...common, filterShape: c.f },
        ) as tf.Tensor;
    const inputGrad = (): tf.Tensor =>
      tf
        .engine()
        .runKernel(
          tf.Conv2DBackpropInput,
          { dy: tf.tensor4d(dyv, dyShape), filter: tf.tensor4d(fv, c.f) },
          { ...common, inputShape: c.x },
        ) as tf.Tensor;
    assertClose(await on('wasm', filterGrad), await on('cpu', filterGrad), `dW ${caseName(c)}`);
    assertClose(await on('wasm', inputGrad), await on('cpu', inputGrad), `dx ${caseName(c)}`);
  }
});

test('tf.grads of conv2d (pad 3, stride 1 and 2) match the cpu backend', async () => {
  const rand = rng(3);
  for (const [strides, pad] of [
    [1, 3],
    [2, 'same'],
    [2, 'valid'],
  ] as const) {
    const xShape: Shape4 = [3, 17, 13, 2];
    const fShape: Shape4 = [5, 5, 2, 5];
    const xv = randomValues(sizeOf(xShape), rand);
    const fv = randomValues(sizeOf(fShape), rand);
    const outShape = tf.backend_util.computeConv2DInfo(xShape, fShape, strides, 1, pad).outShape;
    const rv = randomValues(sizeOf(outShape), rand);
    const grads = (which: 0 | 1) => (): tf.Tensor => {
      const r = tf.tensor4d(rv, outShape);
      const g = tf.grads((x: tf.Tensor, f: tf.Tensor) =>
        tf.sum(tf.mul(tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, strides, pad), r)),
      );
      return g([tf.tensor4d(xv, xShape), tf.tensor4d(fv, fShape)])[which]!;
    };
    const name = `strides ${strides} pad ${pad}`;
    assertClose(await on('wasm', grads(0)), await on('cpu', grads(0)), `d/dx ${name}`);
    assertClose(await on('wasm', grads(1)), await on('cpu', grads(1)), `d/df ${name}`);
  }
});

test('BatchMatMul and _FusedMatMul with transposes match the cpu backend', async () => {
  const rand = rng(11);
  // [a shape, b shape] without transposes; a: [..., M, K], b: [..., K, N]
  const shapes: Array<[number[], number[]]> = [
    [
      [7, 5],
      [5, 6],
    ],
    [
      [3, 4, 5],
      [3, 5, 6],
    ],
    [
      [1, 4, 5],
      [3, 5, 6],
    ],
    [
      [3, 4, 5],
      [1, 5, 6],
    ],
    [
      [2, 3, 4, 5],
      [5, 6],
    ],
    [
      [33, 17],
      [17, 9],
    ],
    [
      [1, 40, 60],
      [1, 60, 9],
    ],
    [
      [2, 30, 70],
      [2, 70, 8],
    ],
  ];
  const activations = ['relu', 'linear', 'elu', 'leakyrelu', 'sigmoid', 'relu6'] as const;
  let caseIndex = 0;
  const swap = (s: number[]): number[] => [...s.slice(0, -2), s[s.length - 1]!, s[s.length - 2]!];
  for (const [aShape, bShape] of shapes) {
    for (const [ta, tb] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ] as const) {
      const aS = ta ? swap(aShape) : aShape;
      const bS = tb ? swap(bShape) : bShape;
      const av = randomValues(sizeOf(aS), rand);
      const bv = randomValues(sizeOf(bS), rand);
      const mm = (): tf.Tensor => tf.matMul(tf.tensor(av, aS), tf.tensor(bv, bS), ta, tb);
      const name = `a[${aS}] b[${bS}] transposeA=${ta} transposeB=${tb}`;
      assertClose(await on('wasm', mm), await on('cpu', mm), `matMul ${name}`);
      if (aShape.length === 3 && bShape.length === 3) {
        const n = bShape[2]!;
        const activation = activations[caseIndex++ % activations.length]!;
        const biasV = randomValues(n, rand);
        const fused = (): tf.Tensor =>
          tf.fused.matMul({
            a: tf.tensor3d(av, aS as [number, number, number]),
            b: tf.tensor3d(bv, bS as [number, number, number]),
            transposeA: ta,
            transposeB: tb,
            bias: tf.tensor1d(biasV),
            activation,
          });
        assertClose(await on('wasm', fused), await on('cpu', fused), `fused.matMul ${activation} ${name}`);
      }
    }
  }
});

test('MaxPoolGrad (ties included) and GatherV2 match the cpu backend', async () => {
  const rand = rng(23);
  const poolCases: Array<{
    x: Shape4;
    size: [number, number];
    strides: [number, number];
    pad: 'valid' | 'same' | number;
  }> = [
    { x: [3, 17, 13, 5], size: [2, 2], strides: [2, 2], pad: 'valid' },
    { x: [2, 17, 13, 3], size: [3, 3], strides: [2, 2], pad: 'same' },
    { x: [2, 15, 15, 4], size: [3, 3], strides: [1, 1], pad: 1 },
    { x: [1, 16, 16, 2], size: [2, 3], strides: [2, 1], pad: 'same' },
  ];
  for (const c of poolCases) {
    // relu + quantisation: many equal values in a window, so the tie rule matters.
    const xv = randomValues(sizeOf(c.x), rand).map((v) => Math.max(0, Math.round(v * 3)));
    const outShape = tf.backend_util.computePool2DInfo(c.x, c.size, c.strides, 1, c.pad).outShape;
    const rv = randomValues(sizeOf(outShape), rand);
    const grad = (): tf.Tensor => {
      const r = tf.tensor4d(rv, outShape);
      return tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(x as tf.Tensor4D, c.size, c.strides, c.pad), r)))(
        tf.tensor4d(xv, c.x),
      );
    };
    const name = `maxPool grad x[${c.x}] size[${c.size}] s[${c.strides}] pad ${c.pad}`;
    assertClose(await on('wasm', grad), await on('cpu', grad), name, 1e-6);
  }
  const xv = randomValues(9 * 4 * 3, rand);
  for (const [indices, axis] of [
    [[8, 0, 3, 3, 5], 0],
    [[2, 0], 1],
    [[], 0],
  ] as const) {
    const gather = (): tf.Tensor => tf.gather(tf.tensor3d(xv, [9, 4, 3]), tf.tensor1d([...indices], 'int32'), axis);
    assertClose(await on('wasm', gather), await on('cpu', gather), `gather [${indices}] axis ${axis}`, 0);
  }
  await initBackend('wasm');
  assert.throws(() => tf.gather(tf.zeros([3, 2]), tf.tensor1d([3], 'int32')), /not in \[0, 2\]/);
});

test('no tensors or wasm buffers leak from our kernels', async () => {
  await initBackend('wasm');
  const rand = rng(5);
  const backend = tf.engine().backend;
  const x = tf.tensor4d(randomValues(2 * 17 * 13 * 3, rand), [2, 17, 13, 3]);
  const f = tf.tensor4d(randomValues(5 * 5 * 3 * 4, rand), [5, 5, 3, 4]);
  const a = tf.tensor3d(randomValues(2 * 6 * 5, rand), [2, 6, 5]);
  const b = tf.tensor3d(randomValues(2 * 7 * 5, rand), [2, 7, 5]);
  const c = tf.tensor3d(randomValues(2 * 6 * 7, rand), [2, 6, 7]);
  const a1 = tf.tensor3d(randomValues(6 * 5, rand), [1, 6, 5]);
  const b1 = tf.tensor3d(randomValues(7 * 5, rand), [1, 7, 5]);
  const bias = tf.tensor1d(randomValues(7, rand));
  const run = (): void => {
    for (const [strides, pad] of [
      [1, 3],
      [2, 'valid'],
      [2, 'same'],
      [1, 6],
    ] as const) {
      const [dx, df] = tf.grads((xx: tf.Tensor, ff: tf.Tensor) =>
        tf.sum(tf.conv2d(xx as tf.Tensor4D, ff as tf.Tensor4D, strides, pad)),
      )([x, f]);
      tf.dispose([dx!, df!]);
    }
    tf.dispose(tf.grad((xx: tf.Tensor) => tf.sum(tf.maxPool(xx as tf.Tensor4D, 2, 2, 'same')))(x));
    tf.tidy(() => {
      tf.gather(x, tf.tensor1d([1, 0, 1], 'int32'));
    });
    tf.dispose([
      tf.matMul(a, b, false, true),
      tf.matMul(a, c, true, false),
      tf.matMul(b, c, true, true),
      tf.fused.matMul({ a, b, transposeB: true, bias, activation: 'relu' }),
      tf.fused.matMul({ a: a1, b: b1, transposeB: true, bias, activation: 'elu' }),
    ]);
  };
  run(); // warm-up (kernel setup, caches)
  const tensorsBefore = tf.memory().numTensors;
  const buffersBefore = backend.numDataIds();
  run();
  run();
  assert.equal(tf.memory().numTensors, tensorsBefore);
  assert.equal(backend.numDataIds(), buffersBefore);
  tf.dispose([x, f, a, b, c, a1, b1, bias]);
});
