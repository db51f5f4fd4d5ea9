import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs';
import { initBackend, type BackendName } from '../engine/backend.js';
import { loadOneDnnAddon } from '../engine/onednn/addon.js';
import { ADAM_UPDATE } from '../engine/onednn/kernel_names.js';
import { holdOutValidation, sliceDataset } from '../data/dataset.js';
import { loadMnist } from '../data/mnist.js';
import type { BranchyNet } from '../model/network.js';
import { readWeights } from '../model/weights.js';
import { bLeNet } from '../model/zoo.js';
import { uniform } from '../testing/kernel_cases.js';
import { DEFAULT_TRAIN_OPTIONS, trainBranchyNet, type TrainOptions } from './pipeline.js';
import { FusedAdamOptimizer } from './fused_adam.js';
import { createOptimizer, restoreOptimizer, saveOptimizer } from './trainer.js';
import { oneDnnSkip } from '../testing/onednn_skip.js';

const { addon } = loadOneDnnAddon();
const skip = oneDnnSkip();

/** Variable shapes: scalar, bias, dense, conv filter, odd sizes, and one above the kernel's threading threshold. */
const SHAPES: number[][] = [[], [7], [5, 13], [3, 3, 2, 4], [1, 1, 1, 33], [300, 301]];
/** The step size per step: changed between steps, as the cosine schedule does. */
const RATES = [1e-3, 1e-3, 5e-4, 2e-3, 1e-4, 7.5e-4];

interface Run {
  values: Float32Array[];
  /** getWeights() after the run: name and values, iterations first. */
  weights: { name: string; values: Float32Array }[];
  /** Kernel calls of ADAM_UPDATE. */
  fusedCalls: number;
}

function randomArrays(seed: number, steps: number): { init: Float32Array[]; grads: Float32Array[][] } {
  const rand = uniform(seed);
  const fill = (shape: number[], scale: number): Float32Array => {
    const v = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < v.length; i++) v[i] = rand() * scale;
    return v;
  };
  // Gradients over several magnitudes (tiny ones exercise epsilon).
  return {
    init: SHAPES.map((s) => fill(s, 1)),
    grads: Array.from({ length: steps }, (_, k) => SHAPES.map((s, i) => fill(s, 10 ** -((i + k) % 5)))),
  };
}

/** Trains fresh variables with `make()`'s optimizer on `backend`, the learning rate set before each step. */
async function run(
  backend: BackendName,
  make: () => tf.AdamOptimizer,
  steps: number,
  seed = 1,
  gradientsOf: (k: number, i: number) => boolean = () => true,
): Promise<Run> {
  await initBackend(backend, { fallback: false });
  const { init, grads } = randomArrays(seed, steps);
  const before = tf.memory().numTensors;
  const vars = tf.tidy(() =>
    init.map((v, i) => tf.variable(tf.tensor(v, SHAPES[i]!), true, `fusedAdamTest/${backend}/${seed}/v${i}`)),
  );
  const opt = make();
  let fusedCalls = 0;
  const kernel = tf.getKernel(ADAM_UPDATE, backend);
  const saved = kernel?.kernelFunc;
  if (kernel !== undefined) {
    (kernel as { kernelFunc: tf.KernelFunc }).kernelFunc = (args) => {
      fusedCalls++;
      return saved!(args);
    };
  }
  try {
    for (let k = 0; k < steps; k++) {
      (opt as unknown as { learningRate: number }).learningRate = RATES[k % RATES.length]!;
      tf.tidy(() => {
        // A map with every variable (null: no gradient this step), as tfjs's minimize passes: the
        // optimizer's state is indexed by position.
        const map: Record<string, tf.Tensor | null> = {};
        vars.forEach((v, i) => {
          map[v.name] = gradientsOf(k, i) ? tf.tensor(grads[k]![i]!, SHAPES[i]) : null;
        });
        opt.applyGradients(map as unknown as Parameters<tf.AdamOptimizer['applyGradients']>[0]);
      });
    }
  } finally {
    if (kernel !== undefined) (kernel as { kernelFunc: tf.KernelFunc }).kernelFunc = saved!;
  }
  const values = vars.map((v) => v.dataSync() as Float32Array);
  const state = await opt.getWeights();
  const weights = state.map((w) => ({ name: w.name, values: Float32Array.from(w.tensor.dataSync()) }));
  state[0]!.tensor.dispose(); // the iteration count: a new tensor
  opt.dispose();
  tf.dispose(vars);
  assert.equal(tf.memory().numTensors, before, `${backend}: tensors leaked`);
  return { values, weights, fusedCalls };
}

const stock = (): tf.AdamOptimizer => tf.train.adam(RATES[0], 0.9, 0.999, 1e-7);
const fused = (): tf.AdamOptimizer => new FusedAdamOptimizer(RATES[0], 0.9, 0.999, 1e-7);

/** Max |a - b| / max(1, |b|) over two lists of arrays. */
function maxRelErr(a: Float32Array[], b: Float32Array[]): number {
  assert.equal(a.length, b.length);
  let err = 0;
  a.forEach((x, k) => {
    const y = b[k]!;
    assert.equal(x.length, y.length);
    for (let i = 0; i < x.length; i++) err = Math.max(err, Math.abs(x[i]! - y[i]!) / Math.max(1, Math.abs(y[i]!)));
  });
  return err;
}

function assertSameState(actual: Run, expected: Run, what: string, tol: number): void {
  const err = maxRelErr(actual.values, expected.values);
  assert.ok(Number.isFinite(err) && err <= tol, `${what}: variables differ by ${err}`);
  // The same state layout: iterations, then every m, then every v, tfjs's names (backend-specific prefix aside).
  const strip = (name: string): string => name.replace(/^fusedAdamTest\/[^/]+\//, '');
  assert.deepEqual(
    actual.weights.map((w) => strip(w.name)),
    expected.weights.map((w) => strip(w.name)),
    `${what}: state names`,
  );
  const stateErr = maxRelErr(
    actual.weights.map((w) => w.values),
    expected.weights.map((w) => w.values),
  );
  assert.ok(Number.isFinite(stateErr) && stateErr <= tol, `${what}: optimizer state differs by ${stateErr}`);
}

test(
  'FusedAdamOptimizer on onednn: one kernel call per variable, matches tfjs AdamOptimizer on cpu over steps with a changing learning rate',
  { skip },
  async () => {
    const steps = 6;
    const reference = await run('cpu', stock, steps);
    const native = await run('onednn', fused, steps);
    assert.equal(native.fusedCalls, steps * SHAPES.length);
    assert.equal(native.weights[0]!.name, 'iter');
    assert.equal(native.weights[0]!.values[0], steps);
    assert.deepEqual(
      native.weights.slice(1, 1 + SHAPES.length).map((w) => w.name.endsWith('/m')),
      SHAPES.map(() => true),
    );
    // The same float32 operations in tfjs's order (IEEE, no fused multiply-adds: the addon is built with
    // -ffp-contract=off): bit for bit.
    assertSameState(native, reference, 'fused vs stock', 0);
    // Stock Adam on onednn (its own elementwise kernels) agrees too.
    assertSameState(await run('onednn', stock, steps), reference, 'stock on onednn vs cpu', 1e-6);
  },
);

test(
  "FusedAdamOptimizer on onednn: variables without a gradient in some steps keep tfjs's state",
  { skip },
  async () => {
    const some = (k: number, i: number): boolean => (k + i) % 3 !== 0;
    const reference = await run('cpu', stock, 5, 2, some);
    const native = await run('onednn', fused, 5, 2, some);
    assert.ok(native.fusedCalls > 0 && native.fusedCalls < 5 * SHAPES.length);
    assertSameState(native, reference, 'fused vs stock (missing gradients)', 0);
  },
);

test("FusedAdamOptimizer falls back to tfjs's Adam without the kernel (cpu, wasm): the same results as AdamOptimizer", async () => {
  for (const backend of ['cpu', 'wasm'] as const) {
    const reference = await run(backend, stock, 4, 3);
    const ours = await run(backend, fused, 4, 3);
    assert.equal(ours.fusedCalls, 0);
    assertSameState(ours, reference, `${backend}: fallback`, 0);
  }
});

test('FusedAdamOptimizer: getWeights / setWeights round-trip (a checkpoint) resumes to the same result', async () => {
  for (const backend of (addon === null ? ['cpu'] : ['onednn', 'cpu']) as BackendName[]) {
    await initBackend(backend, { fallback: false });
    const { init, grads } = randomArrays(4, 6);
    const setup = (tag: string): tf.Variable[] =>
      tf.tidy(() =>
        init.map((v, i) => tf.variable(tf.tensor(v, SHAPES[i]!), true, `roundTrip/${backend}/${tag}/v${i}`)),
      );
    const step = (opt: tf.AdamOptimizer, vars: tf.Variable[], k: number): void => {
      (opt as unknown as { learningRate: number }).learningRate = RATES[k]!;
      tf.tidy(() =>
        opt.applyGradients(vars.map((v, i) => ({ name: v.name, tensor: tf.tensor(grads[k]![i]!, SHAPES[i]) }))),
      );
    };
    // Straight through: 6 steps.
    const a = setup('a');
    const optA = new FusedAdamOptimizer(RATES[0], 0.9, 0.999, 1e-7);
    for (let k = 0; k < 6; k++) step(optA, a, k);
    // 3 steps, then a checkpoint (trainer.ts's saveOptimizer / restoreOptimizer) into a fresh
    // optimizer (createOptimizer's) and fresh variables, then 3 more.
    const b = setup('b');
    const optB = new FusedAdamOptimizer(RATES[0], 0.9, 0.999, 1e-7);
    for (let k = 0; k < 3; k++) step(optB, b, k);
    const saved = await saveOptimizer(optB, 'optimizer/');
    const c = setup('c');
    b.forEach((v, i) => c[i]!.assign(v));
    optB.dispose();
    const optC = createOptimizer({ learningRate: RATES[0]!, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 });
    assert.ok(optC instanceof FusedAdamOptimizer);
    await restoreOptimizer(
      optC,
      saved.map((a) => ({ ...a, name: a.name.slice('optimizer/'.length) })),
    );
    for (let k = 3; k < 6; k++) step(optC, c, k);
    a.forEach((v, i) => assert.deepEqual(c[i]!.dataSync(), v.dataSync(), `${backend}: variable ${i} after resume`));
    const wa = await optA.getWeights();
    const wc = await optC.getWeights();
    const strip = (n: string): string => n.replace(/\/[abc]\//, '/');
    assert.deepEqual(
      wc.map((w) => strip(w.name)),
      wa.map((w) => strip(w.name)),
    );
    wa.forEach((w, i) =>
      assert.deepEqual(wc[i]!.tensor.dataSync(), w.tensor.dataSync(), `${backend}: state ${w.name}`),
    );
    optA.dispose();
    optC.dispose();
    tf.dispose([...a, ...b, ...c]);
  }
});

test(
  'on onednn (fused Adam), a run killed after an epoch resumes to the same weights as an uninterrupted run',
  { skip },
  async () => {
    await initBackend('onednn', { fallback: false });
    const { train, validation } = holdOutValidation(sliceDataset(loadMnist().train, 0, 400), 100);
    const options: TrainOptions = { ...DEFAULT_TRAIN_OPTIONS, baselineEpochs: 1, epochs: 2, batchSize: 64, seed: 5 };
    const quiet = (): void => {};
    const weightsOf = (net: BranchyNet): number[] => readWeights(net).flatMap((a) => Array.from(a.data));
    const calls = { n: 0 };
    const kernel = tf.getKernel(ADAM_UPDATE, 'onednn')!;
    const saved = kernel.kernelFunc;
    (kernel as { kernelFunc: tf.KernelFunc }).kernelFunc = (args) => {
      calls.n++;
      return saved(args);
    };
    try {
      const straight = await trainBranchyNet({
        spec: bLeNet(),
        train,
        validation,
        outDir: mkdtempSync(join(tmpdir(), 'bn-fa-straight-')),
        options,
        resume: false,
        log: quiet,
      });
      assert.ok(calls.n > 0, 'the fused kernel ran');
      const dir = mkdtempSync(join(tmpdir(), 'bn-fa-resume-'));
      await trainBranchyNet({
        spec: bLeNet(),
        train,
        validation,
        outDir: dir,
        options: { ...options, epochs: 1 },
        resume: false,
        log: quiet,
      });
      const resumed = await trainBranchyNet({
        spec: bLeNet(),
        train,
        validation,
        outDir: dir,
        options,
        resume: true,
        log: quiet,
      });
      // Bit for bit: the checkpoint carries Adam's beta products (trainer.ts's saveOptimizer).
      assert.deepEqual(weightsOf(resumed.net), weightsOf(straight.net));
      assert.equal(resumed.history.joint.length, 2);
      resumed.history.joint.forEach((h, e) =>
        assert.deepEqual(h.loss, straight.history.joint[e]!.loss, `epoch ${e + 1}`),
      );
    } finally {
      (kernel as { kernelFunc: tf.KernelFunc }).kernelFunc = saved;
    }
  },
);
