/**
 * The quantised model directory: a whole model directory (model.json with the float weights, so
 * every float path keeps working) whose model.json also holds a `quantized` record, plus the int8
 * ONNX export in `int8/` (manifest.json with the int8 thresholds, stage-k.onnx, baseline.onnx) and
 * a readable report, quantization.md.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { formatThreshold } from '../eval/calibrate.js';
import { writeFileAtomic } from '../io/tensor_pack.js';
import type { LoadedModel } from '../model/io.js';
import { saveModel } from '../model/io.js';
import { writeExport } from '../onnx/export.js';
import type { OnnxExport } from '../onnx/manifest.js';
import { MANIFEST_FILE } from '../onnx/manifest.js';
import type { GraphReport, QuantizedRecord } from './quantize.js';
import { QUANTIZED_FORMAT, QUANTIZED_VERSION } from './quantize.js';

export const INT8_SUBDIR = 'int8';
export const REPORT_FILE = 'quantization.md';

/** The model's quantised record, checked; null for a float model directory. */
export function quantizedRecordOf(model: Pick<LoadedModel, 'dir' | 'quantized'>): QuantizedRecord | null {
  const q = model.quantized as Partial<QuantizedRecord> | undefined | null;
  if (q === undefined || q === null) return null;
  if (q.format !== QUANTIZED_FORMAT || typeof q.dir !== 'string' || !Array.isArray(q.thresholds)) {
    throw new UserError(`${join(model.dir, 'model.json')}: the 'quantized' record is not a branchynet int8 record`);
  }
  if (q.version !== QUANTIZED_VERSION)
    throw new UserError(
      `${join(model.dir, 'model.json')}: int8 record version ${q.version} is not supported (this is ${QUANTIZED_VERSION})`,
    );
  if (!existsSync(join(model.dir, q.dir, MANIFEST_FILE)))
    throw new UserError(
      `${join(model.dir, q.dir, MANIFEST_FILE)}: missing; the int8 stages of this model directory are gone`,
    );
  return q as QuantizedRecord;
}

/** The directory holding a quantised model's int8 ONNX export. */
export function int8Dir(model: Pick<LoadedModel, 'dir' | 'quantized'>): string {
  const q = quantizedRecordOf(model);
  if (!q) throw new UserError(`${model.dir}: not a quantised model directory (run 'branchynet quantize' first)`);
  return join(model.dir, q.dir);
}

/** Writes the quantised model directory `outDir` from the float `model` and the quantisation's result. */
export function writeQuantizedModel(
  outDir: string,
  model: LoadedModel,
  bundle: OnnxExport,
  record: Omit<QuantizedRecord, 'dir'>,
): string[] {
  const quantized: QuantizedRecord = { ...record, dir: INT8_SUBDIR };
  saveModel(outDir, model.net, model.baseline, { ...model, quantized });
  const files = writeExport(join(outDir, INT8_SUBDIR), bundle).map((f) => join(INT8_SUBDIR, f));
  writeFileAtomic(join(outDir, REPORT_FILE), [
    new TextEncoder().encode(formatQuantizationReport(model.spec.name, quantized)),
  ]);
  return ['model.json', 'weights.bin', ...(model.baseline ? ['baseline.bin'] : []), ...files, REPORT_FILE];
}

/** Copies a quantised model's int8 export (manifest and ONNX files) into `outDir`; returns the files. */
export function copyInt8Export(model: Pick<LoadedModel, 'dir' | 'quantized'>, outDir: string): string[] {
  const from = int8Dir(model);
  mkdirSync(outDir, { recursive: true });
  const files = readdirSync(from)
    .filter((f) => f === MANIFEST_FILE || f.endsWith('.onnx'))
    .sort();
  for (const f of files) copyFileSync(join(from, f), join(outDir, f));
  return files;
}

const pct = (a: number) => (100 * a).toFixed(2);

function graphLine(g: GraphReport): string {
  const floats =
    g.floatLayers.length === 0 ? 'none' : g.floatLayers.map((l) => `${l.node} (+${pct(l.gain)} points)`).join(', ');
  return `| ${g.file} | ${g.int8Layers} / ${g.weightedLayers} | ${floats} | ${pct(g.decision.float)} | ${pct(g.decision.allInt8)} | ${pct(g.decision.int8)} |`;
}

/** The human-readable report written beside the int8 files. */
export function formatQuantizationReport(name: string, q: QuantizedRecord): string {
  const v = q.validation;
  const c = q.calibration;
  const lines = [
    `# ${name}: int8 quantisation`,
    '',
    `Weights ${q.weights}; activations ${q.activations}; QDQ form (QuantizeLinear / DequantizeLinear, opset 13), ` +
      `batch norm folded into the convolutions first. Files: ${q.dir}/ (manifest.json, stage-k.onnx, baseline.onnx).`,
    '',
    `Activation ranges from the first ${q.calibrationSamples} validation images; range method chosen by validation accuracy ` +
      `(every layer int8):`,
    '',
    '| method | exits % | baseline % |',
    '|---|---|---|',
    ...q.methods.map(
      (m) =>
        `| ${m.method}${m.method === 'percentile' ? ` (${100 * q.percentile} %)` : ''}${m.method === q.method ? ' (chosen)' : ''} | ` +
        `${m.exitAccuracies.map(pct).join(' / ')} | ${pct(m.baselineAccuracy)} |`,
    ),
    '',
    `Layers kept in float: where a graph's exit lost more than ${pct(q.tolerance)} points on the decision images, ` +
      'the layers whose float form regained the most, measured one by one, until it did not.',
    '',
    '| graph | int8 layers | kept float | float % | all int8 % | shipped % |',
    '|---|---|---|---|---|---|',
    ...q.stages.map(graphLine),
    graphLine(q.baseline),
    '',
    `Validation split (${v.samples} images), every sample through every exit: float exits ${v.floatExitAccuracies.map(pct).join(' / ')} %, ` +
      `int8 exits ${v.int8ExitAccuracies.map(pct).join(' / ')} %; baseline float ${pct(v.floatBaseline)} %, int8 ${pct(v.int8Baseline)} %.`,
    '',
    `Thresholds re-calibrated on the int8 network (max drop ${pct(c.maxDrop)} points against the float baseline` +
      `${c.confidence ? `, at ${100 * c.confidence} % confidence` : ''}): [${q.thresholds.map(formatThreshold).join(', ')}], ` +
      `validation accuracy ${pct(c.chosen.accuracy)} %, exits ${c.chosen.exitFractions.map((f) => (100 * f).toFixed(1)).join(' / ')} %` +
      (c.metTarget ? '.' : ' (no setting met the target: the most accurate was chosen).'),
    '',
  ];
  return lines.join('\n');
}
