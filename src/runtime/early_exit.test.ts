import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../engine/backend.js';
import { BranchyNet } from '../model/network.js';
import { bLeNet } from '../model/zoo.js';
import { randomDataset, tinySpec } from '../testing/fixtures.js';
import { applyExitRule, earlyExit, earlyExitAsync } from './early_exit.js';
import { rowEntropy } from './exit_rule.js';
import { allExitLogits } from './full_forward.js';
import type { StageOutput, StageRunner } from './runner.js';
import { TfjsRunner } from './tfjs_runner.js';

before(async () => {
  await initBackend('wasm');
});

test('rowEntropy matches the textbook softmax entropy and picks the arg-max', () => {
  const logits = [2, -1, 0.5, 3, 3.1];
  const z = logits.map(Math.exp);
  const s = z.reduce((a, b) => a + b, 0);
  const h = -z.map((v) => v / s).reduce((acc, p) => acc + p * Math.log(p), 0);
  const r = rowEntropy(logits, 0, 5);
  assert.ok(Math.abs(r.entropy - h) < 1e-12);
  assert.equal(r.argmax, 4);
  assert.ok(Math.abs(rowEntropy([0, 0, 0, 0], 0, 4).entropy - Math.log(4)) < 1e-12);
  assert.equal(rowEntropy([1000, -1000], 0, 2).entropy, 0);
});

/** Wraps a runner and counts the rows each stage sees. */
class CountingRunner<A> implements StageRunner<A> {
  rowsPerStage: number[];
  constructor(
    private readonly inner: StageRunner<A> & { exits: number },
    private readonly rowsOf: (a: A) => number,
  ) {
    this.rowsPerStage = new Array(inner.exits).fill(0);
  }
  get exits() {
    return this.inner.exits;
  }
  get classes() {
    return this.inner.classes;
  }
  input(images: Float32Array, count: number) {
    return this.inner.input(images, count);
  }
  /** Rows of each run, per stage. */
  runs: number[][] = [];
  runStage(k: number, a: A) {
    this.rowsPerStage[k] += this.rowsOf(a);
    (this.runs[k] ??= []).push(this.rowsOf(a));
    return this.inner.runStage(k, a);
  }
  selectRows(a: A, rows: Int32Array) {
    return this.inner.selectRows(a, rows);
  }
  concatRows(parts: A[]) {
    return this.inner.concatRows(parts);
  }
  dispose(a: A) {
    this.inner.dispose(a);
  }
}

/**
 * Wraps a synchronous runner as an asynchronous one (each stage's result comes back a tick later,
 * as ONNX Runtime's do) that also hands back the entropies, as an engine computing them in its graph.
 */
class AsyncRunner<A> implements StageRunner<A> {
  constructor(private readonly inner: StageRunner<A>) {}
  get exits() {
    return this.inner.exits;
  }
  get classes() {
    return this.inner.classes;
  }
  input(images: Float32Array, count: number) {
    return this.inner.input(images, count);
  }
  async runStage(k: number, a: A): Promise<StageOutput<A>> {
    const out = await new Promise<StageOutput<A>>((resolve) =>
      setImmediate(() => resolve(this.inner.runStage(k, a) as StageOutput<A>)),
    );
    const rows = out.logits.length / this.classes;
    const entropies = Float64Array.from({ length: rows }, (_, i) => rowEntropy(out.logits, i, this.classes).entropy);
    return { ...out, entropies };
  }
  selectRows(a: A, rows: Int32Array) {
    return this.inner.selectRows(a, rows);
  }
  concatRows(parts: A[]) {
    return this.inner.concatRows(parts);
  }
  dispose(a: A) {
    this.inner.dispose(a);
  }
}

/** Thresholds at the given entropy quantiles of each non-final exit, so that every exit answers some samples. */
function quantileThresholds(logits: Float32Array[], classes: number, count: number, q: number): number[] {
  return logits.slice(0, -1).map((l) => {
    const h = Array.from({ length: count }, (_, i) => rowEntropy(l, i, classes).entropy).sort((a, b) => a - b);
    return h[Math.floor(q * (count - 1))];
  });
}

for (const [name, makeSpec] of [
  ['tiny (3 exits)', tinySpec],
  ['B-LeNet', bLeNet],
] as const) {
  test(`${name}: batch-1 and batched early exit give the full forward pass's answers, in input order`, () => {
    const spec = makeSpec();
    const net = new BranchyNet(spec, 11);
    const count = 61;
    const data = randomDataset(count, spec.input, spec.classes, 21);
    const logits = allExitLogits(net, data, 17);
    const thresholds = quantileThresholds(logits, spec.classes, count, 0.4);
    const reference = applyExitRule(logits, count, spec.classes, thresholds);
    const exitCounts = new Array(net.exits).fill(0);
    reference.exitTaken.forEach((k) => exitCounts[k - 1]++);
    assert.ok(
      exitCounts.every((c) => c > 0),
      `every exit should answer some samples: ${exitCounts}`,
    );
    const before = tf.memory().numTensors;
    for (const batchSize of [1, 2, 7, 61, 256]) {
      const runner = new CountingRunner(new TfjsRunner(net), (a: tf.Tensor) => a.shape[0]);
      const r = earlyExit(runner, data.images, count, thresholds, batchSize);
      assert.deepEqual(r.predictions, reference.predictions, `predictions at batch ${batchSize}`);
      assert.deepEqual(r.exitTaken, reference.exitTaken, `exits at batch ${batchSize}`);
      for (let i = 0; i < count; i++) assert.ok(Math.abs(r.entropies[i] - reference.entropies[i]) < 1e-4);
      // No stage sees a sample that already left: stage k runs exactly on those not answered before it.
      let remaining = count;
      for (let k = 0; k < net.exits; k++) {
        assert.equal(runner.rowsPerStage[k], remaining, `rows through stage ${k + 1} at batch ${batchSize}`);
        // Continuing rows are regrouped: every run of a stage is a full batch but its last.
        const runs = runner.runs[k] ?? [];
        assert.equal(
          runs.length,
          Math.ceil(remaining / batchSize),
          `runs of stage ${k + 1} at batch ${batchSize}: ${runs}`,
        );
        assert.ok(
          runs.slice(0, -1).every((n) => n === batchSize),
          `runs of stage ${k + 1} at batch ${batchSize}: ${runs}`,
        );
        remaining -= exitCounts[k];
      }
    }
    assert.equal(tf.memory().numTensors, before, 'early exit leaks no tensors');
    net.dispose();
  });

  test(`${name}: earlyExitAsync gives the same answers over a synchronous and an asynchronous runner`, async () => {
    const spec = makeSpec();
    const net = new BranchyNet(spec, 12);
    const count = 37;
    const data = randomDataset(count, spec.input, spec.classes, 22);
    const logits = allExitLogits(net, data, 17);
    const thresholds = quantileThresholds(logits, spec.classes, count, 0.5);
    const reference = applyExitRule(logits, count, spec.classes, thresholds);
    const before = tf.memory().numTensors;
    for (const batchSize of [1, 5, 64]) {
      const sync = await earlyExitAsync(new TfjsRunner(net), data.images, count, thresholds, batchSize);
      const inner = new CountingRunner(new TfjsRunner(net), (a: tf.Tensor) => a.shape[0]);
      const async = await earlyExitAsync(new AsyncRunner(inner), data.images, count, thresholds, batchSize);
      for (const r of [sync, async]) {
        assert.deepEqual(r.predictions, reference.predictions, `predictions at batch ${batchSize}`);
        assert.deepEqual(r.exitTaken, reference.exitTaken, `exits at batch ${batchSize}`);
        for (let i = 0; i < count; i++) assert.ok(Math.abs(r.entropies[i] - reference.entropies[i]) < 1e-4);
      }
      assert.equal(inner.rowsPerStage[0], count);
    }
    assert.equal(tf.memory().numTensors, before, 'early exit leaks no tensors');
    net.dispose();
  });
}

test('the synchronous earlyExit refuses an asynchronous runner with a clear error and leaks nothing', async () => {
  const spec = tinySpec();
  const net = new BranchyNet(spec, 2);
  const data = randomDataset(4, spec.input, spec.classes, 1);
  const before = tf.memory().numTensors;
  assert.throws(
    () => earlyExit(new AsyncRunner(new TfjsRunner(net)), data.images, 4, [0.1, 0.1], 2),
    /asynchronous .* use earlyExitAsync/,
  );
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(tf.memory().numTensors, before);
  await assert.rejects(
    () => earlyExitAsync(new TfjsRunner(net), data.images, 4, [0.1], 2),
    /needs 2 thresholds \(one per early exit\), got 1/,
  );
  net.dispose();
});

test('thresholds of zero send everything to the last exit; infinite ones answer everything at the first', () => {
  const spec = tinySpec();
  const net = new BranchyNet(spec, 2);
  const data = randomDataset(10, spec.input, spec.classes, 1);
  const runner = new TfjsRunner(net);
  assert.deepEqual([...earlyExit(runner, data.images, 10, [0, 0], 4).exitTaken], new Array(10).fill(3));
  assert.deepEqual([...earlyExit(runner, data.images, 10, [Infinity, 0], 4).exitTaken], new Array(10).fill(1));
  assert.throws(() => earlyExit(runner, data.images, 10, [0.1], 4), /needs 2 thresholds \(one per early exit\), got 1/);
  assert.throws(() => earlyExit(runner, data.images, 10, [0.1, 0.1], 0), /batchSize: must be an integer >= 1/);
  net.dispose();
});
