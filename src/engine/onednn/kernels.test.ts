import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's Node build registers no gradients; the union package's does.
import '@tensorflow/tfjs';
import { initBackend } from '../backend.js';
import type { OneDnnAddon } from './addon.js';
import { ONEDNN_KERNEL_CONFIGS } from './backend.js';
import { countNativeCalls } from '../../testing/native_calls.js';
import { softmaxCrossEntropy } from '../../train/loss.js';
import {
  convCaseName as caseName,
  convCases as sharedConvCases,
  sizeOf,
  uniform as rng,
} from '../../testing/kernel_cases.js';
import type { ConvCase, Pad, Shape4 } from '../../testing/kernel_cases.js';
import type { Result } from '../../testing/assert_close.js';
import { assertCloseAll as assertClose } from '../../testing/assert_close.js';
import { oneDnnSkip } from '../../testing/onednn_skip.js';

/** Skip message when the addon is not built (docs/onednn.md). */
const skip = oneDnnSkip();

function randomValues(shape: readonly number[], rand: () => number): Float32Array {
  const v = new Float32Array(sizeOf(shape));
  for (let i = 0; i < v.length; i++) v[i] = rand();
  return v;
}

/** Runs `fn` on `backend` and reads back its outputs. */
async function on(backend: 'onednn' | 'cpu', fn: () => tf.Tensor[]): Promise<Result[]> {
  await initBackend(backend, { fallback: false });
  const outs = tf.tidy(fn);
  const results = outs.map((o) => ({ shape: o.shape.slice(), values: o.dataSync() as Float32Array }));
  tf.dispose(outs);
  return results;
}

async function compare(what: string, fn: () => tf.Tensor[], tol?: number): Promise<void> {
  assertClose(await on('onednn', fn), await on('cpu', fn), what, tol);
}

/** Whether a kernel ran natively (not through the cpu fallback) in `fn` on onednn. */
function nativeKernelCalls(fn: () => void): Map<string, number> {
  return countNativeCalls(() => tf.tidy(fn)).calls;
}

function convCases(): ConvCase[] {
  const cases = sharedConvCases();
  cases.push({ x: [4, 28, 28, 1], f: [5, 5, 1, 20], strides: [1, 1], pad: 3 }); // LeNet-like
  cases.push({
    x: [2, 8, 8, 16],
    f: [3, 3, 16, 32],
    strides: [2, 2],
    pad: [
      [0, 0],
      [0, 1],
      [0, 1],
      [0, 0],
    ],
  });
  return cases;
}

test('onednn backend: kernels registered, cpu kernels shared, native kernels used', { skip }, async () => {
  assert.equal(await initBackend('onednn', { fallback: false }), 'onednn');
  assert.equal(tf.getBackend(), 'onednn');
  for (const c of ONEDNN_KERNEL_CONFIGS) assert.equal(tf.getKernel(c.kernelName, 'onednn'), c);
  assert.ok(tf.getKernel(tf.Relu, 'onednn') !== undefined);
  const calls = nativeKernelCalls(() => {
    const x = tf.ones([2, 9, 9, 3]) as tf.Tensor4D;
    const f = tf.ones([3, 3, 3, 4]) as tf.Tensor4D;
    tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.maxPool(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same'), 2, 2, 'valid').sum(),
    )([x, f]);
  });
  for (const k of [tf.Conv2D, tf.Conv2DBackpropInput, tf.Conv2DBackpropFilter, tf.MaxPool, tf.MaxPoolGrad]) {
    assert.ok((calls.get(k) ?? 0) > 0, `${k} was not called`);
  }
});

test('onednn Conv2D, FusedConv2D (bias, relu) and their gradients match the cpu backend', { skip }, async () => {
  const rand = rng(42);
  for (const c of convCases()) {
    const info = tf.backend_util.computeConv2DInfo(c.x, c.f, c.strides, 1, c.pad);
    const xv = randomValues(c.x, rand);
    const fv = randomValues(c.f, rand);
    const bv = randomValues([c.f[3]], rand);
    const dyv = randomValues(info.outShape, rand);
    const conv = (x: tf.Tensor, f: tf.Tensor): tf.Tensor =>
      tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, c.strides, c.pad as 'same');
    const fused = (x: tf.Tensor, f: tf.Tensor, b: tf.Tensor): tf.Tensor =>
      tf.fused.conv2d({
        x: x as tf.Tensor4D,
        filter: f as tf.Tensor4D,
        strides: c.strides,
        pad: c.pad as 'same',
        bias: b,
        activation: 'relu',
      });
    await compare(`conv2d + grads ${caseName(c)}`, () => {
      const x = tf.tensor4d(xv, c.x);
      const f = tf.tensor4d(fv, c.f);
      const dy = tf.tensor4d(dyv, info.outShape);
      const y = conv(x, f);
      return [y, ...tf.grads((a: tf.Tensor, b: tf.Tensor) => conv(a, b))([x, f], dy)];
    });
    await compare(`fused conv2d (bias, relu) + grads ${caseName(c)}`, () => {
      const x = tf.tensor4d(xv, c.x);
      const f = tf.tensor4d(fv, c.f);
      const b = tf.tensor1d(bv);
      const dy = tf.tensor4d(dyv, info.outShape);
      return [
        fused(x, f, b),
        ...tf.grads((a: tf.Tensor, w: tf.Tensor, bb: tf.Tensor) => fused(a, w, bb))([x, f, b], dy),
      ];
    });
  }
});

test(
  'onednn Conv2D with dilations, Conv2DBackpropInput via conv2dTranspose, match the cpu backend',
  { skip },
  async () => {
    const rand = rng(5);
    for (const [d, pad] of [
      [[2, 2], 'valid'],
      [[2, 3], 'same'],
      [[3, 1], 2],
    ] as const) {
      const xv = randomValues([2, 15, 14, 3], rand);
      const fv = randomValues([3, 3, 3, 5], rand);
      await compare(`conv2d x[2,15,14,3] f[3,3,3,5] d[${d}] pad ${pad}`, () => [
        tf.conv2d(
          tf.tensor4d(xv, [2, 15, 14, 3]),
          tf.tensor4d(fv, [3, 3, 3, 5]),
          1,
          pad as 'same',
          'NHWC',
          d as [number, number],
        ),
      ]);
    }
    const yv = randomValues([2, 6, 6, 4], rand);
    const fv = randomValues([3, 3, 5, 4], rand);
    await compare('conv2dTranspose y[2,6,6,4] f[3,3,5,4] -> [2,12,12,5] s2 same', () => [
      tf.conv2dTranspose(tf.tensor4d(yv, [2, 6, 6, 4]), tf.tensor4d(fv, [3, 3, 5, 4]), [2, 12, 12, 5], 2, 'same'),
    ]);
  },
);

test(
  'onednn BatchMatMul / _FusedMatMul (transposes, batches, bias, relu) and gradients match the cpu backend',
  { skip },
  async () => {
    const rand = rng(11);
    const cases: { a: number[]; b: number[]; ta: boolean; tb: boolean }[] = [
      { a: [64, 720], b: [720, 84], ta: false, tb: false },
      { a: [7, 13], b: [5, 13], ta: false, tb: true },
      { a: [13, 7], b: [13, 5], ta: true, tb: false },
      { a: [13, 7], b: [5, 13], ta: true, tb: true },
      { a: [3, 4, 6], b: [3, 6, 5], ta: false, tb: false },
      { a: [3, 4, 6], b: [6, 5], ta: false, tb: false }, // b shared across the batch
      { a: [1, 6, 4], b: [2, 3, 6, 5], ta: true, tb: false }, // a shared, 2-D batch
      { a: [1, 1], b: [1, 9], ta: false, tb: false },
    ];
    for (const c of cases) {
      const av = randomValues(c.a, rand);
      const bv = randomValues(c.b, rand);
      const n = c.tb ? c.b[c.b.length - 2]! : c.b[c.b.length - 1]!;
      const biasV = randomValues([n], rand);
      const name = `a[${c.a}]${c.ta ? 'T' : ''} b[${c.b}]${c.tb ? 'T' : ''}`;
      await compare(`matMul + grads ${name}`, () => {
        const a = tf.tensor(av, c.a);
        const b = tf.tensor(bv, c.b);
        const f = (x: tf.Tensor, y: tf.Tensor): tf.Tensor => tf.matMul(x, y, c.ta, c.tb);
        // tfjs's BatchMatMul gradient does not reduce broadcast batch dimensions: forward only there.
        const sameBatch = c.a.length === c.b.length && c.a.slice(0, -2).every((d, i) => d === c.b[i]);
        return [f(a, b), ...(sameBatch ? tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sin(f(x, y)))([a, b]) : [])];
      });
      if (c.a.length === 2 && c.b.length === 2) {
        await compare(`fused matMul (bias, relu) + grads ${name}`, () => {
          const a = tf.tensor(av, c.a);
          const b = tf.tensor(bv, c.b);
          const bias = tf.tensor1d(biasV);
          const f = (x: tf.Tensor, y: tf.Tensor, z: tf.Tensor): tf.Tensor =>
            tf.fused.matMul({
              a: x,
              b: y,
              transposeA: c.ta,
              transposeB: c.tb,
              bias: z,
              activation: 'relu',
            });
          return [
            f(a, b, bias),
            ...tf.grads((x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) => tf.sin(f(x, y, z)))([a, b, bias]),
          ];
        });
      }
    }
  },
);

test(
  'onednn MaxPool / MaxPoolGrad (explicit asymmetric pads, ties), AvgPool and AvgPoolGrad match the cpu backend',
  { skip },
  async () => {
    const rand = rng(13);
    type PoolCase = { x: Shape4; size: [number, number]; s: [number, number]; pad: Pad };
    const cases: PoolCase[] = [
      { x: [2, 30, 30, 5], size: [2, 2], s: [2, 2], pad: 'valid' },
      {
        x: [2, 17, 17, 10],
        size: [2, 2],
        s: [2, 2],
        pad: [
          [0, 0],
          [0, 1],
          [0, 1],
          [0, 0],
        ],
      }, // B-LeNet's round-up
      {
        x: [3, 11, 9, 4],
        size: [3, 3],
        s: [2, 2],
        pad: [
          [0, 0],
          [1, 2],
          [1, 1],
          [0, 0],
        ],
      },
      { x: [1, 12, 13, 3], size: [3, 2], s: [1, 2], pad: 'same' },
      { x: [2, 7, 7, 1], size: [3, 3], s: [3, 3], pad: 'valid' },
      { x: [2, 15, 15, 16], size: [1, 1], s: [2, 2], pad: 'valid' }, // the ResNet shortcut
      { x: [2, 8, 8, 8], size: [6, 6], s: [1, 1], pad: 'valid' },
    ];
    for (const c of cases) {
      const info = tf.backend_util.computePool2DInfo(c.x, c.size, c.s, 1, c.pad as 'same');
      for (const ties of [false, true]) {
        // Rounding to a coarse grid creates ties inside windows.
        const xv = randomValues(c.x, rand).map((v) => (ties ? Math.round(v * 2) / 2 : v));
        const dyv = randomValues(info.outShape, rand);
        await compare(`avgPool + grad x[${c.x}] size[${c.size}] s[${c.s}] pad ${JSON.stringify(c.pad)}`, () => {
          const x = tf.tensor4d(xv, c.x);
          const f = (t: tf.Tensor): tf.Tensor => tf.avgPool(t as tf.Tensor4D, c.size, c.s, c.pad as 'same');
          return [f(x), tf.grad(f)(x, tf.tensor4d(dyv, info.outShape))];
        });
        // The forward pass sums in double in the cpu backend's order: equal bit for bit.
        await compare(
          `avgPool x[${c.x}] size[${c.size}] s[${c.s}] pad ${JSON.stringify(c.pad)} (exact)`,
          () => [tf.avgPool(tf.tensor4d(xv, c.x), c.size, c.s, c.pad as 'same')],
          0,
        );
        await compare(
          `maxPool + grad x[${c.x}] size[${c.size}] s[${c.s}] pad ${JSON.stringify(c.pad)}${ties ? ' ties' : ''}`,
          () => {
            const x = tf.tensor4d(xv, c.x);
            const f = (t: tf.Tensor): tf.Tensor => tf.maxPool(t as tf.Tensor4D, c.size, c.s, c.pad as 'same');
            return [f(x), tf.grad(f)(x, tf.tensor4d(dyv, info.outShape))];
          },
        );
      }
    }
  },
);

test(
  'onednn MaxPoolGrad equals the cpu backend bit for bit: -Infinity / NaN windows, signed zeros, ties, gaps',
  { skip },
  async () => {
    const rand = rng(29);
    type PoolCase = { x: Shape4; size: [number, number]; s: [number, number]; pad: Pad };
    const cases: PoolCase[] = [
      { x: [2, 24, 24, 20], size: [2, 2], s: [2, 2], pad: 'valid' }, // LeNet 20/50's first pool
      { x: [3, 7, 9, 5], size: [2, 2], s: [2, 2], pad: 'same' }, // pads at the bottom / right
      { x: [2, 9, 8, 3], size: [2, 2], s: [3, 3], pad: 'valid' }, // gaps between windows
      {
        x: [2, 9, 9, 6],
        size: [3, 3],
        s: [2, 2],
        pad: [
          [0, 0],
          [1, 0],
          [0, 2],
          [0, 0],
        ],
      }, // overlapping
    ];
    for (const c of cases) {
      const info = tf.backend_util.computePool2DInfo(c.x, c.size, c.s, 1, c.pad as 'same');
      // Coarse values (ties), some -Infinity, NaN, +0 and -0; dy with -0 and NaN too.
      const pick = [-Infinity, NaN, 0, -0, 1, 0.5, -0.5, Infinity];
      const xv = randomValues(c.x, rand).map((v) => {
        const u = Math.abs(v);
        return u < 0.3 ? pick[Math.floor(u * 26.6)]! : Math.round(v * 2) / 2;
      });
      // Whole -Infinity channels and windows: no cell wins there (the cpu backend gives no gradient).
      for (let i = 0; i < xv.length; i += c.x[3] * 3) xv[i] = -Infinity;
      xv.fill(-Infinity, 0, c.x[2] * c.x[3] * 2);
      const dyv = randomValues(info.outShape, rand).map((v, i) => (i % 17 === 0 ? -0 : i % 29 === 0 ? NaN : v));
      const grad = (): tf.Tensor[] => {
        const f = (t: tf.Tensor): tf.Tensor => tf.maxPool(t as tf.Tensor4D, c.size, c.s, c.pad as 'same');
        return [tf.grad(f)(tf.tensor4d(xv, c.x), tf.tensor4d(dyv, info.outShape))];
      };
      const [native] = await on('onednn', grad);
      const [cpu] = await on('cpu', grad);
      const what = `maxPool grad x[${c.x}] size[${c.size}] s[${c.s}] pad ${JSON.stringify(c.pad)}`;
      assert.deepEqual(native!.shape, cpu!.shape, what);
      for (let i = 0; i < cpu!.values.length; i++) {
        assert.ok(
          Object.is(native!.values[i], cpu!.values[i]),
          `${what}: dx[${i}] ${native!.values[i]} vs cpu ${cpu!.values[i]}`,
        );
      }
    }
  },
);

test(
  'onednn falls back to the cpu kernels, its native code unused, for what it does not cover (elu, int32, ceil rounding)',
  { skip },
  async () => {
    const rand = rng(17);
    const xv = randomValues([2, 7, 7, 3], rand);
    const fv = randomValues([3, 3, 3, 4], rand);
    const x8v = randomValues([2, 8, 8, 3], rand);
    const fusedConv = (activation: 'elu' | 'relu') => () => [
      tf.fused.conv2d({
        x: tf.tensor4d(xv, [2, 7, 7, 3]),
        filter: tf.tensor4d(fv, [3, 3, 3, 4]),
        strides: 1,
        pad: 'same',
        activation,
      }),
    ];
    const cases: [string, () => tf.Tensor[], string, keyof OneDnnAddon, boolean][] = [
      ['fused conv2d with relu (covered)', fusedConv('relu'), tf.FusedConv2D, 'conv2d', true],
      ['fused conv2d with elu activation', fusedConv('elu'), tf.FusedConv2D, 'conv2d', false],
      [
        'int32 matMul',
        () => [
          tf.cast(
            tf.matMul(tf.tensor2d([1, 2, 3, 4], [2, 2], 'int32'), tf.tensor2d([5, 6, 7, 8], [2, 2], 'int32')),
            'float32',
          ),
        ],
        tf.BatchMatMul,
        'matMul',
        false,
      ],
      // 8 pixels, window 3, stride 2: ceil gives 4 outputs where oneDNN's floor gives 3.
      [
        'conv2d ceil rounding',
        () => [tf.conv2d(tf.tensor4d(x8v, [2, 8, 8, 3]), tf.tensor4d(fv, [3, 3, 3, 4]), 2, 0, 'NHWC', 1, 'ceil')],
        tf.Conv2D,
        'conv2d',
        false,
      ],
      [
        'conv2d floor rounding (covered)',
        () => [tf.conv2d(tf.tensor4d(x8v, [2, 8, 8, 3]), tf.tensor4d(fv, [3, 3, 3, 4]), 2, 0, 'NHWC', 1, 'floor')],
        tf.Conv2D,
        'conv2d',
        true,
      ],
    ];
    for (const [what, fn, kernel, nativeFunction, native] of cases) {
      await compare(what, fn);
      // The onednn kernel was asked, and its native code ran only where it covers the case.
      await initBackend('onednn', { fallback: false });
      const { calls, addonCalls } = countNativeCalls(() => tf.dispose(tf.tidy(fn)));
      assert.ok((calls.get(kernel) ?? 0) > 0, `${what}: the onednn ${kernel} kernel was not asked`);
      assert.equal(
        (addonCalls.get(nativeFunction) ?? 0) > 0,
        native,
        `${what}: addon.${nativeFunction} calls ${addonCalls.get(nativeFunction) ?? 0}`,
      );
    }
  },
);

test(
  'onednn Sum, Add/Sub/Multiply/RealDiv (broadcasts), Relu/Step/Sqrt/Square/Neg match the cpu backend',
  { skip },
  async () => {
    const rand = rng(19);
    const pos = (v: Float32Array): Float32Array => v.map((x) => Math.abs(x) + 0.1);
    for (const [shape, axis, keepDims] of [
      [[64, 24, 24, 20], [0, 1, 2], false],
      [[5, 7], 0, false],
      [[5, 7], 1, true],
      [[3, 4, 5, 6], [1, 2], false],
      [[3, 4, 5, 6], [0, 2], false],
      [[9], 0, false],
      [[2, 3, 4], -1, true],
    ] as [number[], number | number[], boolean][]) {
      const xv = randomValues(shape, rand);
      await compare(
        `sum x[${shape}] axis ${JSON.stringify(axis)}${keepDims ? ' keepDims' : ''}`,
        () => [tf.sum(tf.tensor(xv, shape), axis, keepDims)],
        1e-5,
      );
    }
    const pairs: [number[], number[]][] = [
      [
        [800, 500],
        [800, 500],
      ],
      [[800, 500], []],
      [[], [7, 3]],
      [[64, 10], [10]],
      [[10], [4, 10]],
      [
        [2, 3, 4],
        [1, 3, 4],
      ],
      [
        [2, 3, 4],
        [2, 1, 4],
      ],
      [
        [64, 1],
        [64, 10],
      ],
      [[1], [1]],
    ];
    for (const [sa, sb] of pairs) {
      const av = randomValues(sa, rand);
      const bv = pos(randomValues(sb, rand));
      await compare(`add/sub/mul/div a[${sa}] b[${sb}] + grads`, () => {
        const a = tf.tensor(av, sa);
        const b = tf.tensor(bv, sb);
        const f = (x: tf.Tensor, y: tf.Tensor): tf.Tensor => tf.div(tf.mul(tf.sub(tf.add(x, y), y), tf.add(x, y)), y);
        return [f(a, b), ...tf.grads(f)([a, b])];
      });
    }
    const xv = randomValues([3, 5, 7, 2], rand);
    xv[0] = 0;
    xv[1] = NaN;
    await compare('relu/step/sqrt/square/neg x[3,5,7,2] (with 0 and NaN) + grads', () => {
      const x = tf.tensor(xv, [3, 5, 7, 2]);
      const f = (t: tf.Tensor): tf.Tensor =>
        tf.add(tf.add(tf.relu(t), tf.sqrt(tf.add(tf.abs(t), 1))), tf.neg(tf.square(t)));
      return [f(x), tf.step(x, 0.25), tf.grad(f)(x)].map((t) => tf.where(tf.isNaN(t), tf.fill(t.shape, 123), t));
    });
  },
);

test('initBackend(onednn) without the addon: wasm and one notice per process, none from bestBackend (child process, BRANCHYNET_ONEDNN=0)', async () => {
  const { execFile } = await import('node:child_process');
  const backendUrl = new URL('../backend.js', import.meta.url).href;
  const child = `
    import { bestBackend, initBackend } from ${JSON.stringify(backendUrl)};
    import * as tf from '@tensorflow/tfjs-core';
    const best = bestBackend();
    console.error('-- initBackend --');
    console.log(JSON.stringify({ best, got: await initBackend('onednn'), again: await initBackend('onednn'), active: tf.getBackend(),
      strict: await initBackend('onednn', { fallback: false }).then(() => 'ok', (e) => e.message) }));`;
  const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
    execFile(
      process.execPath,
      ['--input-type=module', '-e', child],
      { env: { ...process.env, BRANCHYNET_ONEDNN: '0' }, cwd: process.cwd() },
      (err, out, errOut) => (err ? reject(err) : resolve({ stdout: out, stderr: errOut })),
    );
  });
  const result = JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, string>;
  assert.equal(result['best'], 'wasm');
  assert.equal(result['got'], 'wasm');
  assert.equal(result['again'], 'wasm');
  assert.equal(result['active'], 'wasm');
  assert.match(result['strict']!, /onednn backend is unavailable: disabled by BRANCHYNET_ONEDNN=0/);
  const [beforeInit, afterInit] = stderr.split('-- initBackend --');
  assert.doesNotMatch(beforeInit!, /oneDNN/, stderr);
  const notices = afterInit!.split('\n').filter((l) => l.includes('oneDNN'));
  assert.equal(notices.length, 1, stderr);
  assert.match(
    notices[0]!,
    /native oneDNN backend unavailable \(disabled by BRANCHYNET_ONEDNN=0\); using wasm\. To enable it: apt-get install libdnnl-dev && npm rebuild branchynet/,
  );
});

test('onednn Mean, Slice, SplitV and Concat (and its gradient) match the cpu backend', { skip }, async () => {
  const rand = rng(23);
  for (const [shape, axis, keepDims] of [
    [[16, 30, 30, 16], [0, 1, 2], false],
    [[4, 6], 1, true],
    [[3, 4, 5], [0, 2], false],
  ] as [number[], number | number[], boolean][]) {
    const xv = randomValues(shape, rand);
    await compare(
      `mean x[${shape}] axis ${JSON.stringify(axis)} + grad`,
      () => {
        const x = tf.tensor(xv, shape);
        return [tf.mean(x, axis, keepDims), tf.grad((t: tf.Tensor) => tf.mean(tf.square(t), axis))(x)];
      },
      1e-5,
    );
  }
  const xv = randomValues([3, 5, 7, 6], rand);
  // One axis cut (a native copy of runs): the last, a middle one, the first, none; several axes (JS).
  for (const [begin, size] of [
    [
      [0, 0, 0, 2],
      [3, 5, 7, 3],
    ],
    [
      [0, 2, 0, 0],
      [3, 2, 7, 6],
    ],
    [
      [1, 0, 0, 0],
      [2, 5, 7, 6],
    ],
    [
      [0, 0, 0, 0],
      [3, 5, 7, 6],
    ],
    [
      [0, 0, 3, 0],
      [3, 5, 0, 6],
    ],
    [
      [1, 2, 3, 0],
      [2, 2, 3, 6],
    ],
    [
      [2, 4, 6, 5],
      [1, 1, 1, 1],
    ],
    [
      [0, 1, 0, 0],
      [-1, 3, -1, 4],
    ],
  ]) {
    await compare(
      `slice x[3,5,7,6] begin[${begin}] size[${size}]`,
      () => [tf.slice(tf.tensor(xv, [3, 5, 7, 6]), begin!, size!)],
      0,
    );
  }
  await compare(
    'slice int32 and 1-D',
    () => [
      tf.cast(tf.slice(tf.tensor([1, 2, 3, 4, 5, 6], [2, 3], 'int32'), [0, 1], [2, 2]), 'float32'),
      tf.slice(tf.tensor1d([1, 2, 3, 4]), 1, 2),
    ],
    0,
  );
  for (const axis of [0, 3, -2]) {
    await compare(`split x[3,5,7,6] axis ${axis}`, () =>
      tf.split(tf.tensor(xv, [3, 5, 7, 6]), axis === 3 ? [2, 4] : axis === 0 ? 3 : [3, 4], axis),
    );
  }
  const yv = randomValues([3, 5, 2, 6], rand);
  for (const axis of [0, 1, 2, 3, -1]) {
    await compare(
      `concat of three along axis ${axis} (one empty)`,
      () => {
        const x = tf.tensor(xv, [3, 5, 7, 6]);
        const shape = [3, 5, 7, 6];
        shape[axis < 0 ? 4 + axis : axis] = 0;
        return [tf.concat([x, tf.zeros(shape), x], axis)];
      },
      0,
    );
  }
  await compare(
    'concat of different widths along axis 2, and of 1-D tensors',
    () => [
      tf.concat([tf.tensor(xv, [3, 5, 7, 6]), tf.tensor(yv, [3, 5, 2, 6])], 2),
      tf.concat([tf.tensor1d([1, 2]), tf.tensor1d([3]), tf.tensor1d([4, 5, 6])]),
    ],
    0,
  );
  await compare('concat of zeros and x (the ResNet shortcut) + grad', () => {
    const x = tf.tensor(xv, [3, 5, 7, 6]);
    const f = (t: tf.Tensor): tf.Tensor => tf.sin(tf.concat([tf.zeros([3, 5, 7, 10]), t], 3));
    return [f(x), tf.grad(f)(x)];
  });
});

test('onednn LRN and LRNGrad match the cpu backend', { skip }, async () => {
  const rand = rng(29);
  for (const [shape, r, bias, alpha, beta] of [
    [[2, 5, 5, 64], 1, 2, 5e-5, 0.75],
    [[3, 4, 3, 7], 2, 1, 0.1, 0.5],
    [[1, 2, 2, 3], 5, 1.5, 0.3, 0.9],
  ] as [number[], number, number, number, number][]) {
    const xv = randomValues(shape, rand);
    const dyv = randomValues(shape, rand);
    await compare(
      `lrn x[${shape}] r ${r} bias ${bias} alpha ${alpha} beta ${beta} + grad`,
      () => {
        const x = tf.tensor4d(xv, shape as Shape4);
        const f = (t: tf.Tensor): tf.Tensor => tf.localResponseNormalization(t as tf.Tensor4D, r, bias, alpha, beta);
        return [f(x), tf.grad(f)(x, tf.tensor4d(dyv, shape as Shape4))];
      },
      1e-5,
    );
  }
});

test(
  'onednn softmax cross-entropy (the training loss) and its gradients match the composite on the cpu backend',
  { skip },
  async () => {
    const rand = rng(31);
    for (const [rows, classes, scale, soft] of [
      [64, 10, 3, false],
      [7, 3, 1, true],
      [1, 1, 1, false],
      [5, 4, 60, false],
      [3, 10, 2, true],
    ] as [number, number, number, boolean][]) {
      const zv = randomValues([rows, classes], () => scale * rand());
      const yv = new Float32Array(rows * classes);
      for (let r = 0; r < rows; r++) {
        if (soft) {
          let total = 0;
          for (let c = 0; c < classes; c++) total += yv[r * classes + c] = Math.abs(rand()) + 0.01;
          for (let c = 0; c < classes; c++) yv[r * classes + c]! /= total;
        } else {
          yv[r * classes + (Math.floor(Math.abs(rand()) * classes) % classes)] = 1;
        }
      }
      const fn = () => {
        const z = tf.tensor2d(zv, [rows, classes]);
        const y = tf.tensor2d(yv, [rows, classes]);
        const [dz, dy] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.mul(softmaxCrossEntropy(a, b), 3))([z, y]);
        return [softmaxCrossEntropy(z, y), dz!, dy!];
      };
      await compare(
        `softmax cross-entropy [${rows}, ${classes}] logits x${scale}${soft ? ', soft labels' : ''} + grads`,
        fn,
        1e-5,
      );
    }
    await initBackend('onednn', { fallback: false });
    const calls = nativeKernelCalls(() => {
      const z = tf.randomNormal([4, 10]);
      tf.grad((a: tf.Tensor) => softmaxCrossEntropy(a, tf.oneHot(tf.tensor1d([1, 2, 3, 4], 'int32'), 10)))(z);
    });
    assert.equal(calls.get('BranchySoftmaxCrossEntropy'), 1, JSON.stringify([...calls]));
    assert.equal(calls.get('BranchySoftmaxCrossEntropyGrad'), 1);
  },
);
