import { oneLine, shown, UserError } from '../errors.js';
import type { ModelMeta } from './io.js';
import type { BranchyNet, NamedParam } from './network.js';
import { analyseSpec } from './network.js';
import type { BranchyNetSpec } from './spec.js';

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 1;
}

/**
 * Checks a network spec read from a file (model.json, a training checkpoint) before anything is
 * built from it: its structure, every layer (`analyseSpec`) and every parameter's shape. Returns
 * the parameters and how many float32 values they hold in all, so that a caller can compare that
 * with the weights file before allocating. Errors name `where`.
 */
export function checkSpecFromFile(
  spec: unknown,
  where: string,
): { spec: BranchyNetSpec; params: NamedParam[]; values: number } {
  const bad = (what: string) => new UserError(`${where}: invalid model spec: ${what}`);
  if (!isObject(spec)) throw bad(`expected an object, found ${shown(spec)}`);
  // The name appears in messages: one line, of a readable length.
  // eslint-disable-next-line no-control-regex -- control characters are what this rejects or escapes
  if (typeof spec.name !== 'string' || !/^[^\u0000-\u001f]{1,200}$/.test(spec.name))
    throw bad(`name must be a line of text, found ${shown(spec.name)}`);
  if (!Array.isArray(spec.input) || spec.input.length !== 3 || !spec.input.every(isCount)) {
    throw bad(`input must be [height, width, channels] (integers >= 1), found ${shown(spec.input)}`);
  }
  if (!isCount(spec.classes)) throw bad(`classes must be an integer >= 1, found ${shown(spec.classes)}`);
  for (const key of ['segments', 'heads'] as const) {
    const blocks = spec[key];
    if (
      !Array.isArray(blocks) ||
      !blocks.every((b) => Array.isArray(b) && b.every((l) => isObject(l) && typeof l.kind === 'string'))
    ) {
      throw bad(`${key} must be lists of layers ({ "kind": ... }), found ${shown(blocks)}`);
    }
  }
  const weights = spec.lossWeights;
  if (
    weights !== undefined &&
    !(Array.isArray(weights) && weights.every((w) => typeof w === 'number' && Number.isFinite(w) && w >= 0))
  ) {
    throw bad(`lossWeights must be numbers >= 0, found ${shown(weights)}`);
  }
  let params: NamedParam[];
  try {
    params = analyseSpec(spec as unknown as BranchyNetSpec).params;
  } catch (e) {
    throw bad(oneLine((e as Error).message));
  }
  let values = 0;
  for (const p of params) {
    if (!p.decl.shape.every(isCount)) throw bad(`parameter ${p.name} would have shape ${shown(p.decl.shape)}`);
    values += p.decl.shape.reduce((a, b) => a * b, 1);
  }
  return { spec: spec as unknown as BranchyNetSpec, params, values };
}

/**
 * The metadata fields of a model.json that code reads (thresholds, normalisation, dataset name,
 * validation size), checked against the loaded `net`: a UserError naming `path` where one is
 * malformed. Missing thresholds and normalisation are null.
 */
export function checkModelMeta(
  json: ModelMeta,
  net: BranchyNet,
  path: string,
): Required<Pick<ModelMeta, 'thresholds' | 'normalization'>> & Pick<ModelMeta, 'dataset' | 'classNames'> {
  const finite = (v: unknown, min: number) => typeof v === 'number' && Number.isFinite(v) && v >= min;
  const thresholds = json.thresholds ?? null;
  if (thresholds !== null && !(Array.isArray(thresholds) && thresholds.every((t) => finite(t, 0)))) {
    throw new UserError(`${path}: thresholds must be null or entropies >= 0, found ${shown(thresholds)}`);
  }
  if (thresholds !== null && thresholds.length !== net.exits - 1) {
    throw new UserError(
      `${path}: thresholds must be ${net.exits - 1} numbers (one per exit but the last), found ${thresholds.length}`,
    );
  }
  const channels = net.spec.input[2];
  const normalization = json.normalization ?? null;
  const perChannel = (v: unknown, min: number) =>
    Array.isArray(v) && v.length === channels && v.every((x) => finite(x, min));
  if (
    normalization !== null &&
    !(perChannel(normalization.mean, -Infinity) && perChannel(normalization.std, Number.MIN_VALUE))
  ) {
    throw new UserError(
      `${path}: normalization must be null or { mean, std } with one finite number per input channel (std > 0), ` +
        `found ${shown(normalization)}`,
    );
  }
  if (json.dataset !== undefined && typeof json.dataset !== 'string')
    throw new UserError(`${path}: dataset must be a name, found ${shown(json.dataset)}`);
  const validationSize = (json.training as { validationSize?: unknown } | null | undefined)?.validationSize;
  if (validationSize !== undefined && !(Number.isSafeInteger(validationSize) && (validationSize as number) >= 1)) {
    throw new UserError(`${path}: training.validationSize must be an integer >= 1, found ${shown(validationSize)}`);
  }
  const classNames = json.classNames;
  if (
    classNames !== undefined &&
    !(
      Array.isArray(classNames) &&
      classNames.length === net.spec.classes &&
      classNames.every((c) => typeof c === 'string')
    )
  ) {
    throw new UserError(
      `${path}: classNames must be ${net.spec.classes} names, one per class, found ${shown(classNames)}`,
    );
  }
  return { thresholds, normalization, dataset: json.dataset, ...(classNames !== undefined ? { classNames } : {}) };
}
