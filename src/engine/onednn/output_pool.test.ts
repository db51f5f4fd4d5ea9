import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../backend.js';
import { defaultPoolBytes, OutputPool, POOLED_MIN_LENGTH } from './output_pool.js';
import { oneDnnSkip } from '../../testing/onednn_skip.js';

const skip = oneDnnSkip();

const N = POOLED_MIN_LENGTH * 4;

test('a released output array serves the next output of its length; other lengths get new arrays', () => {
  const pool = new OutputPool();
  const a = pool.take(N);
  pool.register(a);
  pool.release(a);
  assert.equal(pool.pooledBytes, N * 4);
  assert.notEqual(pool.take(N + 1), a);
  assert.equal(pool.take(N), a);
  assert.equal(pool.pooledBytes, 0);
  // Small arrays are not tracked: released, they are not kept.
  const small = pool.take(POOLED_MIN_LENGTH - 1);
  pool.register(small);
  pool.release(small);
  assert.equal(pool.pooledBytes, 0);
});

test('a full pool drops the arrays of the least recently wanted lengths first', () => {
  // Room for exactly three arrays of lengths N, N + 1 and N + 2.
  const pool = new OutputPool((3 * N + 3) * 4);
  const released = (n: number) => {
    const a = pool.take(n);
    pool.register(a);
    pool.release(a);
    return a;
  };
  const a = released(N);
  released(N + 1);
  const c = released(N + 2);
  assert.equal(pool.pooledBytes, (3 * N + 3) * 4);
  // N is wanted again: N + 1 is now the least recently wanted length.
  assert.equal(pool.take(N), a);
  pool.register(a);
  pool.release(a);
  // No room for a fourth array: N + 1's goes; N's and N + 2's stay for reuse.
  released(N - 1);
  assert.equal(pool.pooledBytes, (3 * N + 1) * 4);
  assert.equal(pool.take(N), a);
  assert.equal(pool.take(N + 2), c);
  assert.equal(pool.pooledBytes, (N - 1) * 4);
  // An array larger than the whole pool is never kept.
  const big = pool.take(4 * N);
  pool.register(big);
  pool.release(big);
  assert.equal(pool.pooledBytes, (N - 1) * 4);
});

test('the default pool size: a quarter of memory up to 4 GiB, or BRANCHYNET_OUTPUT_POOL_MB', () => {
  const GiB = 1024 ** 3;
  assert.equal(defaultPoolBytes({}, 8 * GiB), 2 * GiB);
  assert.equal(defaultPoolBytes({}, 64 * GiB), 4 * GiB);
  assert.equal(defaultPoolBytes({ BRANCHYNET_OUTPUT_POOL_MB: '300' }, 64 * GiB), 300 * 1024 * 1024);
  assert.equal(defaultPoolBytes({ BRANCHYNET_OUTPUT_POOL_MB: 'lots' }, 8 * GiB), 2 * GiB);
});

test('an array read out, registered twice, or aliased by a view is never reused', () => {
  const pool = new OutputPool();
  const read = pool.take(N);
  pool.register(read);
  pool.expose(read);
  pool.release(read);
  const twice = pool.take(N);
  pool.register(twice);
  pool.register(twice);
  pool.release(twice);
  pool.release(twice);
  const viewed = pool.take(N);
  pool.register(viewed);
  pool.register(viewed.subarray(8));
  pool.release(viewed.subarray(8));
  pool.release(viewed);
  // Released but never registered (a kernel's scratch, say): not kept either.
  pool.release(pool.take(N));
  assert.equal(pool.pooledBytes, 0);
  const fresh = pool.take(N);
  for (const old of [read, twice, viewed]) assert.notEqual(fresh, old);
});

test("onednn backend: a disposed output's array is reused unless its values were read", { skip }, async () => {
  await initBackend('onednn', { fallback: false });
  const backend = tf.backend() as unknown as { data: { get(id: object): { values: unknown } } };
  const valuesOf = (t: tf.Tensor) => backend.data.get(t.dataId).values;
  const x = tf.randomNormal([N]);
  const first = tf.relu(x);
  const firstValues = valuesOf(first);
  first.dispose();
  const second = tf.relu(x);
  assert.equal(valuesOf(second), firstValues, 'reused');
  const kept = second.dataSync();
  second.dispose();
  const third = tf.relu(x);
  assert.notEqual(valuesOf(third), kept, "a read-out array is the caller's from then on");
  // The caller's copy keeps its values while later outputs are computed.
  const want = Array.from(kept);
  tf.tidy(() => tf.relu(tf.neg(x)));
  tf.tidy(() => tf.relu(x));
  assert.deepEqual(Array.from(kept), want);
  assert.deepEqual(Array.from(third.dataSync()), want);
  tf.dispose([x, third]);
});

test('onednn backend: reshapes and clones share an array until the last of them goes', { skip }, async () => {
  await initBackend('onednn', { fallback: false });
  const backend = tf.backend() as unknown as { data: { get(id: object): { values: unknown } } };
  const valuesOf = (t: tf.Tensor) => backend.data.get(t.dataId).values;
  const x = tf.randomNormal([N]);
  const want = Array.from(x.dataSync(), (v) => Math.max(0, v));
  const y = tf.relu(x);
  const values = valuesOf(y);
  const alias = tf.reshape(y, [4, N / 4]);
  const copy = tf.clone(y);
  y.dispose();
  // Still in use by the reshape and the clone: new outputs (of other values) must not land on it.
  const other = tf.tidy(() => tf.relu(tf.neg(x)));
  assert.notEqual(valuesOf(other), values);
  alias.dispose();
  const another = tf.tidy(() => tf.relu(tf.neg(x)));
  assert.notEqual(valuesOf(another), values, 'the clone still holds it');
  assert.deepEqual(Array.from(copy.dataSync()), want);
  tf.dispose([alias, copy, other, another]);
  // Once the tensor, its reshape and its clone are all gone, the array serves the next output.
  const z = tf.relu(x);
  const zValues = valuesOf(z);
  const views = [tf.reshape(z, [N / 4, 4]), tf.clone(z)];
  tf.dispose([z, ...views]);
  const next = tf.relu(x);
  assert.equal(valuesOf(next), zValues, 'reused');
  tf.dispose([x, next]);
});
