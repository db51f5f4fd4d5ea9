import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { UserError } from '../errors.js';
import type { ArchiveSpec } from './download.js';
import { CIFAR10_ARCHIVE, digest, downloadDataset, installArchive, readTar, verifyArchive } from './download.js';
import { cifarTestDir, NO_CIFAR } from '../testing/cifar.js';

const work = mkdtempSync(join(tmpdir(), 'branchynet-download-'));
after(() => rmSync(work, { recursive: true, force: true }));

const META = 'airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n';
const BATCH = Uint8Array.from({ length: 3073 * 3 }, (_, i) => (i * 31) % 256);

function hasTar(): boolean {
  try {
    execFileSync('tar', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const SKIP = hasTar() ? false : 'no tar command to build the test archive';

/** A small archive laid out like the official one, built with the system's tar. */
function buildArchive(): Uint8Array {
  const src = join(work, 'src');
  mkdirSync(join(src, 'cifar-10-batches-bin'), { recursive: true });
  writeFileSync(join(src, 'cifar-10-batches-bin', 'batches.meta.txt'), META);
  writeFileSync(join(src, 'cifar-10-batches-bin', 'data_batch_1.bin'), BATCH);
  writeFileSync(join(src, 'cifar-10-batches-bin', 'readme.html'), '<p>not kept</p>');
  const out = join(work, 'test.tar.gz');
  execFileSync('tar', ['-czf', out, '-C', src, 'cifar-10-batches-bin']);
  return readFileSync(out);
}

function specFor(archive: Uint8Array, overrides: Partial<ArchiveSpec> = {}): ArchiveSpec {
  return {
    url: 'https://example.invalid/test.tar.gz',
    md5: digest('md5', archive),
    root: 'cifar-10-batches-bin',
    files: { 'batches.meta.txt': digest('sha256', Buffer.from(META)), 'data_batch_1.bin': digest('sha256', BATCH) },
    ...overrides,
  };
}

test('the CIFAR-10 archive spec carries the published MD5 and the official URL', () => {
  assert.equal(CIFAR10_ARCHIVE.md5, 'c32a1d4ab5d03f1284b67883e8d87530');
  assert.equal(CIFAR10_ARCHIVE.url, 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz');
  assert.equal(Object.keys(CIFAR10_ARCHIVE.files).length, 7);
});

test('an archive whose MD5 is not the expected one is refused and nothing is unpacked', { skip: SKIP }, () => {
  const archive = buildArchive();
  const dir = join(work, 'refused');
  const spec = specFor(archive, { md5: CIFAR10_ARCHIVE.md5 });
  assert.throws(
    () => installArchive(archive, dir, spec),
    (e: Error) =>
      e instanceof UserError &&
      /test\.tar\.gz: MD5 [0-9a-f]{32} does not match the published c32a1d4ab5d03f1284b67883e8d87530/.test(e.message),
  );
  assert.equal(existsSync(dir), false);
  assert.throws(() => verifyArchive(archive, CIFAR10_ARCHIVE, 'x.tar.gz'), /does not match/);
});

test(
  'an archive with the expected MD5 is unpacked: the listed files, verified, top directory stripped',
  { skip: SKIP },
  () => {
    const archive = buildArchive();
    const dir = join(work, 'ok');
    const lines: string[] = [];
    const written = installArchive(archive, dir, specFor(archive), (l) => lines.push(l));
    assert.deepEqual(written.map((p) => p.slice(dir.length + 1)).sort(), ['batches.meta.txt', 'data_batch_1.bin']);
    assert.deepEqual(
      readdirSync(dir).sort(),
      ['batches.meta.txt', 'data_batch_1.bin'],
      'no readme, no scratch directory left',
    );
    assert.equal(readFileSync(join(dir, 'batches.meta.txt'), 'utf8'), META);
    assert.deepEqual(new Uint8Array(readFileSync(join(dir, 'data_batch_1.bin'))), BATCH);
    assert.match(lines.join('\n'), /MD5 .* verified/);
  },
);

test('a file whose SHA-256 differs after extraction is not installed', { skip: SKIP }, () => {
  const archive = buildArchive();
  const dir = join(work, 'badsha');
  const spec = specFor(archive);
  spec.files['data_batch_1.bin'] = '0'.repeat(64);
  assert.throws(
    () => installArchive(archive, dir, spec),
    /extracted data_batch_1\.bin with unexpected SHA-256; nothing was installed/,
  );
  assert.deepEqual(readdirSync(dir), []);
  const missing = specFor(archive);
  missing.files['test_batch.bin'] = '0'.repeat(64);
  assert.throws(
    () => installArchive(archive, join(work, 'missing'), missing),
    /the archive lacks cifar-10-batches-bin\/test_batch\.bin/,
  );
});

test('readTar checks header checksums; non-gzip input is a one-line error', { skip: SKIP }, () => {
  const tar = new Uint8Array(execFileSync('tar', ['-cf', '-', '-C', join(work, 'src'), 'cifar-10-batches-bin']));
  const entries = readTar(tar, 't.tar');
  assert.deepEqual(entries.map((e) => e.path).sort(), [
    'cifar-10-batches-bin/batches.meta.txt',
    'cifar-10-batches-bin/data_batch_1.bin',
    'cifar-10-batches-bin/readme.html',
  ]);
  const corrupt = tar.slice();
  corrupt[10] ^= 0xff;
  assert.throws(() => readTar(corrupt, 't.tar'), /t\.tar: corrupt tar header at byte 0 \(checksum mismatch\)/);
  const notGzip = new Uint8Array([1, 2, 3]);
  assert.throws(() => installArchive(notGzip, join(work, 'ng'), specFor(notGzip)), /not a gzip file/);
  // gzip of garbage: gunzips, but holds no tar entries.
  const garbage = gzipSync(new Uint8Array(1024));
  assert.throws(() => installArchive(garbage, join(work, 'gg'), specFor(garbage)), /the archive lacks/);
});

test('downloadDataset refuses unknown data sets', async () => {
  await assert.rejects(
    () => downloadDataset('mnist', work, () => {}),
    (e: Error) => e instanceof UserError && /no download for 'mnist'/.test(e.message),
  );
});

const realCifar = cifarTestDir();

test(
  'downloadDataset skips the download when verified files are there',
  {
    skip: realCifar === undefined ? NO_CIFAR : false,
  },
  async () => {
    const lines: string[] = [];
    await downloadDataset('cifar10', realCifar!, (l) => lines.push(l));
    assert.match(lines.join('\n'), /already there and verified/);
  },
);
