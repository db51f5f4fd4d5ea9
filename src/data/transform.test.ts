import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../rng.js';
import { randomDataset } from '../testing/fixtures.js';
import { CIFAR_AUGMENTATION, channelStats, makeAugmentation, normalizeDataset } from './transform.js';

test('channelStats and normalizeDataset: per-channel mean 0 and std 1 afterwards', () => {
  const data = randomDataset(20, [5, 4, 3], 10, 1);
  for (let i = 0; i < data.images.length; i++) data.images[i] = data.images[i] * (1 + (i % 3)) + (i % 3);
  const stats = channelStats(data);
  for (let c = 0; c < 3; c++) {
    const values = Array.from(data.images).filter((_, i) => i % 3 === c);
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    const std = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length);
    assert.ok(Math.abs(stats.mean[c] - mean) < 1e-9 && Math.abs(stats.std[c] - std) < 1e-9);
  }
  const normed = normalizeDataset(data, stats);
  assert.notEqual(normed.images, data.images, 'a copy: the training set is not modified in place');
  const again = channelStats(normed);
  for (let c = 0; c < 3; c++) {
    assert.ok(Math.abs(again.mean[c]) < 1e-5);
    assert.ok(Math.abs(again.std[c] - 1) < 1e-5);
  }
  assert.deepEqual(JSON.parse(JSON.stringify(stats)), stats, 'the stats survive JSON (stored with the model)');
  assert.throws(() => normalizeDataset(data, { mean: [0], std: [1] }), /3 channels need 3 means and stds/);
});

/** Naive reference: pad with zeros, crop at (pad + dy, pad + dx), then mirror; same draws as the transform. */
function naive(img: Float32Array, h: number, w: number, c: number, pad: number, rng: Rng): Float32Array {
  const dy = rng.int(2 * pad + 1) - pad;
  const dx = rng.int(2 * pad + 1) - pad;
  const mirror = rng.next() < 0.5;
  const ph = h + 2 * pad;
  const pw = w + 2 * pad;
  const padded = new Float32Array(ph * pw * c);
  for (let i = 0; i < h; i++)
    for (let j = 0; j < w; j++)
      for (let k = 0; k < c; k++) padded[((i + pad) * pw + j + pad) * c + k] = img[(i * w + j) * c + k];
  const crop = new Float32Array(h * w * c);
  for (let i = 0; i < h; i++)
    for (let j = 0; j < w; j++)
      for (let k = 0; k < c; k++) crop[(i * w + j) * c + k] = padded[((i + pad + dy) * pw + j + pad + dx) * c + k];
  if (!mirror) return crop;
  const out = new Float32Array(h * w * c);
  for (let i = 0; i < h; i++)
    for (let j = 0; j < w; j++)
      for (let k = 0; k < c; k++) out[(i * w + j) * c + k] = crop[(i * w + (w - 1 - j)) * c + k];
  return out;
}

test('augmentation: off by default; crop with 4-pixel zero padding and flip match a naive reference, seeded', () => {
  assert.equal(makeAugmentation([32, 32, 3]), null);
  assert.equal(makeAugmentation([32, 32, 3], { cropPad: 0, flip: false }), null);
  const shape: [number, number, number] = [7, 6, 2];
  const data = randomDataset(40, shape, 10, 3);
  const batch = data.images.slice();
  const augment = makeAugmentation(shape, CIFAR_AUGMENTATION)!;
  augment(batch, 40, new Rng(99));
  const rng = new Rng(99);
  const size = 7 * 6 * 2;
  let changed = 0;
  for (let n = 0; n < 40; n++) {
    const expected = naive(data.images.subarray(n * size, (n + 1) * size), 7, 6, 2, 4, rng);
    assert.deepEqual(batch.subarray(n * size, (n + 1) * size), expected, `image ${n}`);
    if (expected.some((v, i) => v !== data.images[n * size + i])) changed++;
  }
  assert.ok(changed > 30, `most images change (${changed}/40)`);
  const again = data.images.slice();
  augment(again, 40, new Rng(99));
  assert.deepEqual(again, batch, 'same seed, same batch');
  const partial = data.images.slice();
  augment(partial, 10, new Rng(99));
  assert.deepEqual(
    partial.subarray(10 * size),
    data.images.subarray(10 * size),
    'only the first count images are touched',
  );
});

test('flip-only augmentation mirrors about half of the images and keeps pixel values', () => {
  const shape: [number, number, number] = [4, 5, 3];
  const data = randomDataset(200, shape, 10, 4);
  const batch = data.images.slice();
  makeAugmentation(shape, { cropPad: 0, flip: true })!(batch, 200, new Rng(5));
  const size = 60;
  let flipped = 0;
  for (let n = 0; n < 200; n++) {
    const a = batch.subarray(n * size, (n + 1) * size);
    const b = data.images.subarray(n * size, (n + 1) * size);
    if (a.every((v, i) => v === b[i])) continue;
    flipped++;
    for (let i = 0; i < 4; i++)
      for (let j = 0; j < 5; j++)
        for (let k = 0; k < 3; k++) assert.equal(a[(i * 5 + j) * 3 + k], b[(i * 5 + 4 - j) * 3 + k]);
  }
  assert.ok(flipped > 70 && flipped < 130, `about half flipped: ${flipped}`);
});
