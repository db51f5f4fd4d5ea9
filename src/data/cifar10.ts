import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import type { Dataset } from './dataset.js';

/**
 * CIFAR-10 (Krizhevsky 2009) in its official binary release ("CIFAR-10 binary version"): each
 * file holds 10,000 records of 1 label byte and 3,072 pixel bytes (1,024 red, 1,024 green,
 * 1,024 blue, each plane row-major 32x32).
 */
export const CIFAR10_FILES = {
  train: ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'],
  test: 'test_batch.bin',
  meta: 'batches.meta.txt',
} as const;

/** Environment variable naming the directory of the binary files, when --data-dir is not given. */
export const CIFAR10_DIR_ENV = 'BRANCHYNET_CIFAR10_DIR';

export const CIFAR10_SIDE = 32;
export const CIFAR10_PIXELS = CIFAR10_SIDE * CIFAR10_SIDE;
export const CIFAR10_RECORD_BYTES = 1 + 3 * CIFAR10_PIXELS;
export const CIFAR10_RECORDS_PER_FILE = 10000;
export const CIFAR10_CLASSES = 10;

const MISSING_HINT =
  'run `branchynet download cifar10 --data-dir DIR` or point --data-dir at the extracted cifar-10-batches-bin directory';

function readBytes(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserError(`${path}: no such file; ${MISSING_HINT}`);
    throw new UserError(`${path}: cannot read (${code ?? String(e)})`);
  }
}

/**
 * Parses one batch file into NHWC float32 images scaled to [0, 1] and labels. Checks the record
 * size, the record count and every label; `name` is used in errors.
 */
export function parseCifar10Batch(
  bytes: Uint8Array,
  name: string,
  expectedRecords: number = CIFAR10_RECORDS_PER_FILE,
): { images: Float32Array; labels: Uint8Array; count: number } {
  if (bytes.length % CIFAR10_RECORD_BYTES !== 0) {
    throw new UserError(
      `${name}: ${bytes.length} bytes is not a whole number of ${CIFAR10_RECORD_BYTES}-byte CIFAR-10 records (truncated, or not the binary version?)`,
    );
  }
  const count = bytes.length / CIFAR10_RECORD_BYTES;
  if (count !== expectedRecords) throw new UserError(`${name}: ${count} records, expected ${expectedRecords}`);
  const size = 3 * CIFAR10_PIXELS;
  const images = new Float32Array(count * size);
  const labels = new Uint8Array(count);
  for (let r = 0; r < count; r++) {
    const at = r * CIFAR10_RECORD_BYTES;
    const label = bytes[at];
    if (label >= CIFAR10_CLASSES)
      throw new UserError(`${name}: record ${r} has label ${label}, expected 0..9 (not a CIFAR-10 batch file?)`);
    labels[r] = label;
    const out = r * size;
    for (let p = 0; p < CIFAR10_PIXELS; p++) {
      images[out + 3 * p] = bytes[at + 1 + p] / 255;
      images[out + 3 * p + 1] = bytes[at + 1 + CIFAR10_PIXELS + p] / 255;
      images[out + 3 * p + 2] = bytes[at + 1 + 2 * CIFAR10_PIXELS + p] / 255;
    }
  }
  return { images, labels, count };
}

/** The ten class names, one a line in batches.meta.txt (blank lines ignored). */
export function parseCifar10Meta(text: string, name: string): string[] {
  const classes = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  if (classes.length !== CIFAR10_CLASSES) {
    throw new UserError(`${name}: expected ${CIFAR10_CLASSES} class names, one a line, found ${classes.length}`);
  }
  return classes;
}

/** The data directory: `dataDir` if given, else $BRANCHYNET_CIFAR10_DIR; a UserError if neither. */
export function resolveCifar10Dir(dataDir?: string, env: NodeJS.ProcessEnv = process.env): string {
  const dir = dataDir ?? env[CIFAR10_DIR_ENV];
  if (dir === undefined || dir === '') {
    throw new UserError(
      `CIFAR-10: no data directory given and ${CIFAR10_DIR_ENV} is not set (to get the files: branchynet download cifar10 --data-dir DIR)`,
      { option: 'dataDir' },
    );
  }
  return dir;
}

function loadFiles(dir: string, files: readonly string[], classes: string[]): Dataset {
  const parts = files.map((f) => parseCifar10Batch(readBytes(join(dir, f)), join(dir, f)));
  const count = parts.reduce((n, p) => n + p.count, 0);
  const size = 3 * CIFAR10_PIXELS;
  const images = new Float32Array(count * size);
  const labels = new Uint8Array(count);
  let at = 0;
  for (const p of parts) {
    images.set(p.images, at * size);
    labels.set(p.labels, at);
    at += p.count;
  }
  return { images, labels, count, shape: [CIFAR10_SIDE, CIFAR10_SIDE, 3], classes };
}

/**
 * Loads CIFAR-10, pixels scaled to [0, 1] (normalise with `channelStats` / `normalizeDataset`),
 * from `dataDir` or $BRANCHYNET_CIFAR10_DIR. Train: data_batch_1..5 in order (50,000); test: 10,000.
 */
export function loadCifar10(dataDir?: string, only?: 'train' | 'test'): { train: Dataset; test: Dataset } {
  const dir = resolveCifar10Dir(dataDir);
  const metaPath = join(dir, CIFAR10_FILES.meta);
  const classes = parseCifar10Meta(new TextDecoder().decode(readBytes(metaPath)), metaPath);
  const empty: Dataset = {
    images: new Float32Array(0),
    labels: new Uint8Array(0),
    count: 0,
    shape: [CIFAR10_SIDE, CIFAR10_SIDE, 3],
    classes,
  };
  return {
    train: only === 'test' ? empty : loadFiles(dir, CIFAR10_FILES.train, classes),
    test: only === 'train' ? empty : loadFiles(dir, [CIFAR10_FILES.test], classes),
  };
}
