import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ExitResults } from '../runtime/early_exit.js';
import { Batcher, QueueFullError, type BatcherOptions } from './batcher.js';

/** A stand-in network: each image is one float; its "label" is that float and its exit is 1 + thresholds[0]. */
function recorder() {
  const batches: { rows: number[]; thresholds: readonly number[] }[] = [];
  const run = async (images: Float32Array, count: number, thresholds: readonly number[]): Promise<ExitResults> => {
    batches.push({ rows: Array.from(images.subarray(0, count)), thresholds });
    await new Promise((r) => setTimeout(r, 5));
    return {
      predictions: Int32Array.from(images.subarray(0, count)),
      exitTaken: new Uint8Array(count).fill(1 + (thresholds[0] ?? 0)),
      entropies: new Float32Array(count),
      logits: Float32Array.from(images.subarray(0, count), (v) => -v),
    };
  };
  return { batches, run };
}

const options = (extra: Partial<BatcherOptions> = {}): BatcherOptions => ({
  maxBatch: 8,
  maxDelayMs: 10,
  maxQueue: 100,
  timeoutMs: 0,
  imageSize: 1,
  classes: 1,
  ...extra,
});

const images = (...values: number[]) => Float32Array.from(values);

test('requests queued together run as one batch, each answered with its own rows in order', async () => {
  const { batches, run } = recorder();
  const batcher = new Batcher(run, options());
  const answers = await Promise.all([
    batcher.submit(images(1, 2), 2, [0]),
    batcher.submit(images(3), 1, [0]),
    batcher.submit(images(4, 5, 6), 3, [0]),
  ]);
  assert.deepEqual(
    batches.map((b) => b.rows),
    [[1, 2, 3, 4, 5, 6]],
  );
  assert.deepEqual(
    answers.map((a) => Array.from(a.predictions)),
    [[1, 2], [3], [4, 5, 6]],
  );
  assert.deepEqual(
    answers.map((a) => Array.from(a.logits)),
    [[-1, -2], [-3], [-4, -5, -6]],
  );
});

test('a batch takes at most maxBatch rows; a larger request runs alone; the rest follow at once', async () => {
  const { batches, run } = recorder();
  const batcher = new Batcher(run, options({ maxBatch: 4 }));
  const answers = await Promise.all([
    batcher.submit(images(1, 2, 3), 3, [0]),
    batcher.submit(images(4, 5), 2, [0]),
    batcher.submit(images(6, 7, 8, 9, 10, 11), 6, [0]),
    batcher.submit(images(12), 1, [0]),
  ]);
  assert.deepEqual(
    batches.map((b) => b.rows),
    [[1, 2, 3], [4, 5], [6, 7, 8, 9, 10, 11], [12]],
  );
  assert.deepEqual(Array.from(answers[2].predictions), [6, 7, 8, 9, 10, 11]);
  await batcher.idle();
  assert.equal(batcher.queued, 0);
});

test('requests with other thresholds run in batches of their own, answered with their own exits', async () => {
  const { batches, run } = recorder();
  const batcher = new Batcher(run, options());
  const answers = await Promise.all([
    batcher.submit(images(1), 1, [0]),
    batcher.submit(images(2), 1, [1]),
    batcher.submit(images(3), 1, [0]),
  ]);
  assert.deepEqual(
    batches.map((b) => [b.rows, b.thresholds]),
    [
      [[1, 3], [0]],
      [[2], [1]],
    ],
  );
  assert.deepEqual(
    answers.map((a) => a.exitTaken[0]),
    [1, 2, 1],
  );
});

test('a full queue refuses at once; a failing run rejects every request of its batch', async () => {
  const batcher = new Batcher(
    async () => {
      throw new Error('engine broke');
    },
    options({ maxQueue: 2, maxDelayMs: 20 }),
  );
  const a = batcher.submit(images(1), 1, [0]);
  const b = batcher.submit(images(2), 1, [0]);
  assert.throws(() => batcher.submit(images(3), 1, [0]), QueueFullError);
  await assert.rejects(a, /engine broke/);
  await assert.rejects(b, /engine broke/);
});
