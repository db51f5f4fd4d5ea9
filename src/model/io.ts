import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChannelStats } from '../data/transform.js';
import { oneLine, shown, UserError } from '../errors.js';
import type { PackEntry } from '../io/tensor_pack.js';
import { isPlainFileName } from '../io/file_name.js';
import { packArrays, unpackArrays, writeFileAtomic } from '../io/tensor_pack.js';
import { checkModelMeta, checkSpecFromFile } from './file_checks.js';
import { BranchyNet } from './network.js';
import type { BranchyNetSpec } from './spec.js';
import { trunkMacs } from './macs.js';
import { baselineOf } from './spec.js';
import { assignWeights, readWeights } from './weights.js';

export const MODEL_FORMAT = 'branchynet-model';
export const MODEL_VERSION = 1;

/** What a saved model directory's model.json holds besides the weights. */
export interface ModelMeta {
  /** Entropy threshold of each non-final exit; null until calibrated. */
  thresholds: number[] | null;
  calibration?: unknown;
  training?: unknown;
  dataset?: string;
  /** Per-channel normalisation applied to inputs in training; eval and calibration apply the same. */
  normalization?: ChannelStats | null;
  /** The name of each class (absent in older model directories: the data set's, see `defaultClassNames`). */
  classNames?: string[];
  /** Present in a quantised model directory (`branchynet quantize`): the int8 stages' record (src/quant). */
  quantized?: unknown;
}

interface ModelJson extends ModelMeta {
  format: typeof MODEL_FORMAT;
  version: number;
  spec: BranchyNetSpec;
  macs: { segments: number[]; heads: number[]; baseline: number };
  weights: { file: string; manifest: PackEntry[] };
  baseline: { spec: BranchyNetSpec; weights: { file: string; manifest: PackEntry[] } } | null;
}

export interface LoadedModel extends ModelMeta {
  dir: string;
  spec: BranchyNetSpec;
  net: BranchyNet;
  /** The separately trained trunk-alone network, when the directory has one. */
  baseline: BranchyNet | null;
}

/** How many training images a saved model held out for validation, where its training record says. */
export function savedValidationSize(meta: Pick<ModelMeta, 'training'>): number | undefined {
  const size = (meta.training as { validationSize?: unknown } | undefined)?.validationSize;
  return typeof size === 'number' ? size : undefined;
}

/** Saves a model directory: model.json, weights.bin and (optionally) baseline.bin. */
export function saveModel(dir: string, net: BranchyNet, baseline: BranchyNet | null, meta: ModelMeta): void {
  mkdirSync(dir, { recursive: true });
  const weights = packArrays(readWeights(net));
  writeFileAtomic(join(dir, 'weights.bin'), [weights.bytes]);
  let baselineEntry: ModelJson['baseline'] = null;
  if (baseline) {
    const packed = packArrays(readWeights(baseline));
    writeFileAtomic(join(dir, 'baseline.bin'), [packed.bytes]);
    baselineEntry = { spec: baseline.spec, weights: { file: 'baseline.bin', manifest: packed.manifest } };
  }
  const macs = net.macs();
  // Only the metadata's own fields: callers may pass a whole LoadedModel (networks included).
  const { thresholds, calibration, training, dataset, normalization, classNames, quantized } = meta;
  if (classNames !== undefined && classNames.length !== net.spec.classes)
    throw new UserError(`${dir}: ${classNames.length} class names for ${net.spec.classes} classes`, {
      option: 'classNames',
    });
  const json: ModelJson = {
    format: MODEL_FORMAT,
    version: MODEL_VERSION,
    spec: net.spec,
    thresholds,
    ...(calibration !== undefined ? { calibration } : {}),
    ...(training !== undefined ? { training } : {}),
    ...(dataset !== undefined ? { dataset } : {}),
    ...(normalization !== undefined ? { normalization } : {}),
    ...(classNames !== undefined ? { classNames } : {}),
    ...(quantized !== undefined ? { quantized } : {}),
    macs: { ...macs, baseline: trunkMacs(baseline ? baseline.macs() : macs) },
    weights: { file: 'weights.bin', manifest: weights.manifest },
    baseline: baselineEntry,
  };
  writeFileAtomic(join(dir, 'model.json'), [new TextEncoder().encode(JSON.stringify(json, null, 1) + '\n')]);
}

function readJson(path: string): ModelJson {
  if (!existsSync(path))
    throw new UserError(`${path}: no such file; expected a model directory written by 'branchynet train'`);
  let json: ModelJson;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UserError(`${path}: not valid JSON (${oneLine((e as Error).message)})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new UserError(`${path}: not a branchynet model (not a JSON object)`);
  }
  if (json.format !== MODEL_FORMAT)
    throw new UserError(`${path}: not a branchynet model (format ${shown(json.format)})`);
  if (json.version !== MODEL_VERSION) {
    throw new UserError(
      `${path}: model format version ${shown(json.version)} is not supported (this is ${MODEL_VERSION})`,
    );
  }
  return json;
}

/** Checks that `dir` holds a readable model.json of this format (no weights loaded, no backend needed). */
export function checkModelDir(dir: string): void {
  readJson(join(dir, 'model.json'));
}

function loadNet(dir: string, spec: BranchyNetSpec, weights: ModelJson['weights']): BranchyNet {
  const file = (weights as Partial<ModelJson['weights']> | null)?.file;
  if (!isPlainFileName(file)) {
    const where = join(dir, 'model.json');
    throw new UserError(
      `${where}: a weights file must be named by a file name in the model directory, found ${shown(file)}`,
    );
  }
  const path = join(dir, file);
  const { values } = checkSpecFromFile(spec, join(dir, 'model.json'));
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new UserError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  // Before the network is allocated: a corrupt spec may declare layers of any size.
  if (values > bytes.length / 4) {
    const holds = Math.floor(bytes.length / 4);
    throw new UserError(`${path}: truncated (holds ${holds} values, ${shown(spec.name)} has ${values} parameters)`);
  }
  const net = new BranchyNet(spec);
  try {
    assignWeights(net, unpackArrays(weights.manifest, bytes, path), path);
  } catch (e) {
    net.dispose();
    throw e;
  }
  return net;
}

export function loadModel(dir: string): LoadedModel {
  const path = join(dir, 'model.json');
  const json = readJson(path);
  const entry: unknown = json.baseline ?? null;
  if (entry !== null && (typeof entry !== 'object' || Array.isArray(entry))) {
    throw new UserError(`${path}: baseline must be null or { spec, weights }, found ${shown(json.baseline)}`);
  }
  const net = loadNet(dir, json.spec, json.weights);
  let baseline: BranchyNet | null = null;
  let meta: ReturnType<typeof checkModelMeta>;
  try {
    meta = checkModelMeta(json, net, path);
    baseline = json.baseline ? loadNet(dir, json.baseline.spec, json.baseline.weights) : null;
    const fits = (b: BranchyNet) =>
      b.exits === 1 && b.spec.input.join() === json.spec.input.join() && b.spec.classes === json.spec.classes;
    if (baseline && !fits(baseline)) {
      throw new UserError(`${path}: the baseline must be one exit taking the network's input and giving its classes`);
    }
  } catch (e) {
    net.dispose();
    baseline?.dispose();
    throw e;
  }
  return {
    dir,
    spec: json.spec,
    net,
    baseline,
    ...meta,
    calibration: json.calibration,
    training: json.training,
    ...(json.quantized !== undefined ? { quantized: json.quantized } : {}),
  };
}

/** The trunk-alone network of `net` carrying its trunk weights (when no separate baseline was trained). */
export function trunkOf(net: BranchyNet): BranchyNet {
  const trunk = new BranchyNet(baselineOf(net.spec));
  trunk.copyParamsFrom(net);
  return trunk;
}
