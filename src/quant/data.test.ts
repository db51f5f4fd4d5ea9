import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UserError } from '../errors.js';
import { randomDataset } from '../testing/fixtures.js';
import { validationSplitOf } from './data.js';

test('validationSplitOf: the last validationSize training images, normalised as in training', () => {
  const train = randomDataset(20, [2, 2, 1], 3, 1);
  const v = validationSplitOf({ dir: 'm', training: { validationSize: 7 }, normalization: null }, train);
  assert.equal(v.count, 7);
  assert.deepEqual(v.images, train.images.subarray(13 * 4));
  assert.deepEqual(v.labels, train.labels.subarray(13));
  const n = validationSplitOf(
    { dir: 'm', training: { validationSize: 7 }, normalization: { mean: [0.5], std: [2] } },
    train,
  );
  assert.ok(Math.abs(n.images[0] - (train.images[13 * 4] - 0.5) / 2) < 1e-6);
  assert.throws(() => validationSplitOf({ dir: 'm', training: {}, normalization: null }, train), UserError);
  assert.throws(
    () => validationSplitOf({ dir: 'm', training: { validationSize: 20 }, normalization: null }, train),
    UserError,
  );
});
