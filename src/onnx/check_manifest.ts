import { shown, UserError } from '../errors.js';
import { isPlainFileName } from '../io/file_name.js';
import type { IoSpec, OnnxManifest, StageManifest } from './manifest.js';

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const LAYOUTS: readonly string[] = ['NHWC', 'NCHW', 'NF', 'N'];

/** The batch dimension first (symbolic), then fixed sizes. */
function isIoSpec(v: unknown): v is IoSpec {
  if (
    !isRecord(v) ||
    typeof v.name !== 'string' ||
    v.name === '' ||
    typeof v.layout !== 'string' ||
    !LAYOUTS.includes(v.layout)
  )
    return false;
  const shape = v.shape;
  return (
    Array.isArray(shape) &&
    shape.length >= 1 &&
    typeof shape[0] === 'string' &&
    shape.slice(1).every((d) => Number.isSafeInteger(d) && d >= 1)
  );
}

function sameShape(a: IoSpec, b: IoSpec): boolean {
  return a.shape.length === b.shape.length && a.shape.every((d, i) => i === 0 || d === b.shape[i]);
}

function checkStage(
  s: unknown,
  what: string,
  classes: number,
  input: IoSpec,
  last: boolean,
  bad: (what: string) => UserError,
): StageManifest {
  if (!isRecord(s)) throw bad(`${what} must be an object, found ${shown(s)}`);
  if (!isPlainFileName(s.file))
    throw bad(`${what}.file must be a file name in the export directory, found ${shown(s.file)}`);
  if (!isIoSpec(s.input))
    throw bad(`${what}.input must be { name, shape: ["N", sizes...], layout }, found ${shown(s.input)}`);
  if (!sameShape(s.input, input))
    throw bad(`${what}.input has shape ${shown(s.input.shape)}, the stage before it hands on ${shown(input.shape)}`);
  const o = s.outputs;
  if (!isRecord(o)) throw bad(`${what}.outputs must be { activation, logits, entropy }, found ${shown(o)}`);
  if (!isIoSpec(o.logits) || o.logits.shape.length !== 2 || o.logits.shape[1] !== classes) {
    throw bad(
      `${what}.outputs.logits must have shape ["N", ${classes}] (one score per class), found ${shown(o.logits)}`,
    );
  }
  if (o.entropy !== null && o.entropy !== undefined && !(isIoSpec(o.entropy) && o.entropy.shape.length === 1)) {
    throw bad(`${what}.outputs.entropy must be null or of shape ["N"], found ${shown(o.entropy)}`);
  }
  if (last ? o.activation !== null && o.activation !== undefined : !isIoSpec(o.activation)) {
    throw bad(
      `${what}.outputs.activation must be ${last ? 'null at the last stage' : 'the activation handed on'}, ` +
        `found ${shown(o.activation)}`,
    );
  }
  const p = s.packed;
  if (
    p !== undefined &&
    !(isRecord(p) && isPlainFileName(p.file) && Number.isSafeInteger(p.rowMultiple) && (p.rowMultiple as number) >= 1)
  ) {
    throw bad(`${what}.packed must be { file, rowMultiple >= 1 }, found ${shown(p)}`);
  }
  return s as unknown as StageManifest;
}

/**
 * Checks an export manifest's structure (after its format and version), so that everything the
 * runtimes read from it is there and consistent: stages that hand each other activations of the
 * declared shapes, logits with one score per class name, files inside the export directory,
 * thresholds for every exit but the last. A UserError naming `path` otherwise.
 */
export function checkManifestStructure(manifest: unknown, path: string): OnnxManifest {
  const bad = (what: string) => new UserError(`${path}: ${what}`);
  if (!isRecord(manifest)) throw bad('not a JSON object');
  const classes = manifest.classes;
  if (!Array.isArray(classes) || classes.length === 0 || !classes.every((c) => typeof c === 'string'))
    throw bad(`classes must be a list of names, found ${shown(classes)}`);
  const input = manifest.input;
  if (!isIoSpec(input) || input.layout !== 'NHWC' || input.shape.length !== 4)
    throw bad(`input must be an NHWC image ["N", height, width, channels], found ${shown(input)}`);
  const stages = manifest.stages;
  if (!Array.isArray(stages) || stages.length === 0)
    throw bad(`stages must be a non-empty list, found ${shown(stages)}`);
  let handedOn = input;
  stages.forEach((s, k) => {
    const stage = checkStage(s, `stages[${k}]`, classes.length, handedOn, k === stages.length - 1, bad);
    if (stage.outputs.activation) handedOn = stage.outputs.activation;
  });
  checkStage(manifest.baseline, 'baseline', classes.length, input, true, bad);
  const thresholds = manifest.thresholds;
  if (thresholds !== null) {
    const ok =
      Array.isArray(thresholds) &&
      thresholds.length === stages.length - 1 &&
      thresholds.every((t) => typeof t === 'number' && Number.isFinite(t) && t >= 0);
    if (!ok) throw bad(`thresholds must be null or ${stages.length - 1} entropies >= 0, found ${shown(thresholds)}`);
  }
  return manifest as unknown as OnnxManifest;
}
