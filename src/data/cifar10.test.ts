import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { UserError } from '../errors.js';
import {
  CIFAR10_DIR_ENV,
  CIFAR10_FILES,
  CIFAR10_RECORD_BYTES,
  loadCifar10,
  parseCifar10Batch,
  parseCifar10Meta,
  resolveCifar10Dir,
} from './cifar10.js';
import { CIFAR10_ARCHIVE, digest } from './download.js';
import { cifarTestDir } from '../testing/cifar.js';

const DIR = cifarTestDir();
const SKIP = DIR
  ? false
  : `no CIFAR-10 files: set ${CIFAR10_DIR_ENV} to the cifar-10-batches-bin directory to run this test`;

/** One record: label, then the R, G, B planes, pixel p of channel ch = (p * 3 + ch * 7 + seed) % 256. */
function syntheticRecord(label: number, seed: number): Uint8Array {
  const r = new Uint8Array(CIFAR10_RECORD_BYTES);
  r[0] = label;
  for (let ch = 0; ch < 3; ch++) for (let p = 0; p < 1024; p++) r[1 + ch * 1024 + p] = (p * 3 + ch * 7 + seed) % 256;
  return r;
}

test('parseCifar10Batch turns planar RGB records into NHWC float32 in [0, 1]', () => {
  const bytes = new Uint8Array(2 * CIFAR10_RECORD_BYTES);
  bytes.set(syntheticRecord(3, 0), 0);
  bytes.set(syntheticRecord(9, 5), CIFAR10_RECORD_BYTES);
  const { images, labels, count } = parseCifar10Batch(bytes, 'two.bin', 2);
  assert.equal(count, 2);
  assert.deepEqual([...labels], [3, 9]);
  assert.equal(images.length, 2 * 32 * 32 * 3);
  for (const [n, seed] of [
    [0, 0],
    [1, 5],
  ]) {
    for (const [row, col, ch] of [
      [0, 0, 0],
      [0, 1, 2],
      [5, 7, 1],
      [31, 31, 2],
      [17, 3, 0],
    ]) {
      const p = row * 32 + col;
      const expected = ((p * 3 + ch * 7 + seed) % 256) / 255;
      assert.equal(images[n * 3072 + p * 3 + ch], Math.fround(expected), `image ${n} (${row}, ${col}) channel ${ch}`);
    }
  }
});

test('parseCifar10Batch refuses bad record sizes, counts and labels with one-line UserErrors', () => {
  const check = (bytes: Uint8Array, expected: number | undefined, pattern: RegExp) =>
    assert.throws(
      () => parseCifar10Batch(bytes, 'bad.bin', expected),
      (e: Error) => e instanceof UserError && pattern.test(e.message) && !e.message.includes('\n'),
    );
  check(
    new Uint8Array(CIFAR10_RECORD_BYTES + 1),
    1,
    /^bad\.bin: 3074 bytes is not a whole number of 3073-byte CIFAR-10 records/,
  );
  check(new Uint8Array(3 * CIFAR10_RECORD_BYTES), undefined, /^bad\.bin: 3 records, expected 10000$/);
  const badLabel = syntheticRecord(10, 0);
  check(badLabel, 1, /^bad\.bin: record 0 has label 10, expected 0\.\.9/);
});

test('parseCifar10Meta reads ten class names and refuses anything else', () => {
  assert.deepEqual(parseCifar10Meta('a\nb\r\nc\nd\ne\nf\ng\nh\ni\nj\n\n', 'meta'), [
    'a',
    'b',
    'c',
    'd',
    'e',
    'f',
    'g',
    'h',
    'i',
    'j',
  ]);
  assert.throws(
    () => parseCifar10Meta('a\nb\n', 'meta.txt'),
    /meta\.txt: expected 10 class names, one a line, found 2/,
  );
});

test('the data directory comes from the argument, else the environment variable, else a clear error naming the option', () => {
  assert.equal(resolveCifar10Dir('/x', { [CIFAR10_DIR_ENV]: '/y' }), '/x');
  assert.equal(resolveCifar10Dir(undefined, { [CIFAR10_DIR_ENV]: '/y' }), '/y');
  assert.throws(
    () => resolveCifar10Dir(undefined, {}),
    (e: Error) =>
      e instanceof UserError &&
      e.option === 'dataDir' &&
      /no data directory given and BRANCHYNET_CIFAR10_DIR is not set/.test(e.message),
  );
});

test('loadCifar10 names a missing file and a truncated one', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cifar-bad-'));
  try {
    assert.throws(
      () => loadCifar10(dir),
      (e: Error) => e instanceof UserError && e.message.includes(`${join(dir, 'batches.meta.txt')}: no such file`),
    );
    writeFileSync(join(dir, 'batches.meta.txt'), 'a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n');
    writeFileSync(join(dir, 'test_batch.bin'), new Uint8Array(CIFAR10_RECORD_BYTES * 2 + 100));
    assert.throws(
      () => loadCifar10(dir, 'test'),
      (e: Error) => e instanceof UserError && /test_batch\.bin: 6246 bytes is not a whole number/.test(e.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the real files match SHA256SUMS and the checksums the download verifies against', { skip: SKIP }, () => {
  const dir = DIR!;
  const sums = join(dir, 'SHA256SUMS');
  const listed = existsSync(sums)
    ? Object.fromEntries(
        readFileSync(sums, 'utf8')
          .trim()
          .split('\n')
          .map((l) => {
            const [h, f] = l.trim().split(/\s+\*?/);
            return [f, h];
          }),
      )
    : CIFAR10_ARCHIVE.files;
  assert.deepEqual(listed, CIFAR10_ARCHIVE.files);
  for (const [file, sha] of Object.entries(CIFAR10_ARCHIVE.files))
    assert.equal(digest('sha256', readFileSync(join(dir, file))), sha, file);
});

test(
  'the real files parse: labels and pixels as read straight from the bytes, class names from the meta file',
  { skip: SKIP },
  () => {
    const dir = DIR!;
    for (const file of [CIFAR10_FILES.train[0], CIFAR10_FILES.test]) {
      const raw = readFileSync(join(dir, file));
      const parsed = parseCifar10Batch(raw, file);
      assert.equal(parsed.count, 10000);
      for (const r of [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 4321, 9999])
        assert.equal(parsed.labels[r], raw[r * CIFAR10_RECORD_BYTES], `${file} label ${r}`);
      // Record 7, row 12, column 20: red, green and blue bytes sit 1024 apart in the file.
      const at = 7 * CIFAR10_RECORD_BYTES + 1 + 12 * 32 + 20;
      for (let ch = 0; ch < 3; ch++)
        assert.equal(parsed.images[7 * 3072 + (12 * 32 + 20) * 3 + ch], Math.fround(raw[at + ch * 1024] / 255));
      const counts = new Array(10).fill(0);
      parsed.labels.forEach((l) => counts[l]++);
      assert.ok(
        counts.every((c) => c > 900),
        `${file}: every class present (${counts})`,
      );
    }
    // Known facts of the release: the first test images are cat, ship, ship, airplane; the first training ones frog,
    // truck.
    const { test: t } = loadCifar10(dir, 'test');
    assert.deepEqual(t.classes, [
      'airplane',
      'automobile',
      'bird',
      'cat',
      'deer',
      'dog',
      'frog',
      'horse',
      'ship',
      'truck',
    ]);
    assert.deepEqual(
      [...t.labels.subarray(0, 4)].map((l) => t.classes[l]),
      ['cat', 'ship', 'ship', 'airplane'],
    );
    assert.deepEqual(t.shape, [32, 32, 3]);
    assert.equal(t.count, 10000);
    const train1 = parseCifar10Batch(readFileSync(join(dir, CIFAR10_FILES.train[0])), 'data_batch_1.bin');
    assert.deepEqual(
      [...train1.labels.subarray(0, 2)].map((l) => t.classes[l]),
      ['frog', 'truck'],
    );
  },
);
