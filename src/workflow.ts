import { join } from 'node:path';
import type { Dataset } from './data/dataset.js';
import { UserError } from './errors.js';
import type { ChannelStats } from './data/transform.js';
import type { Calibration } from './eval/calibrate.js';
import type { ThresholdGrid } from './eval/calibrate.js';
import { calibrate, formatThreshold } from './eval/calibrate.js';
import { cumulativeExitMacs } from './model/macs.js';
import type { EvalReport } from './eval/report.js';
import { evaluate } from './eval/report.js';
import { saveModel, trunkOf } from './model/io.js';
import type { BranchyNet } from './model/network.js';
import type { BranchyNetSpec } from './model/spec.js';
import { argmaxRow } from './runtime/exit_rule.js';
import { allExitLogits } from './runtime/full_forward.js';
import type { EarlyExitModel } from './api/early_exit_model.js';
import { defaultClassNames } from './api/class_names.js';
import { PIXEL_RANGE } from './api/preprocessing.js';
import { normalizeDataset } from './data/transform.js';
import type { BaselineSource, TrainOptions } from './train/pipeline.js';
import { trainBranchyNet } from './train/pipeline.js';

export type Log = (line: string) => void;

export interface CalibrationOptions {
  /** Accuracy the early-exit net may lose against the baseline, as a fraction (default 0). */
  maxDrop?: number;
  /** Candidate thresholds (default the reference's grid). */
  grid?: ThresholdGrid;
  /** One-sided confidence that the drop is at most maxDrop, in [0.5, 1) (default: none, the measured drop). */
  confidence?: number;
}

/** Calibrates thresholds on held-out data against the baseline's accuracy there. */
export function calibrateModel(
  net: BranchyNet,
  baseline: BranchyNet,
  validation: Dataset,
  options: CalibrationOptions = {},
): Calibration {
  const classes = net.spec.classes;
  const baselineLogits = allExitLogits(baseline, validation)[0];
  const baselineCorrect = Uint8Array.from(validation.labels, (label, i) =>
    argmaxRow(baselineLogits, i, classes) === label ? 1 : 0,
  );
  return calibrate({
    exitLogits: allExitLogits(net, validation),
    labels: validation.labels,
    classes,
    exitMacs: cumulativeExitMacs(net.macs()),
    baselineAccuracy: baselineCorrect.reduce((sum, right) => sum + right, 0) / validation.count,
    baselineCorrect,
    maxDrop: options.maxDrop,
    confidence: options.confidence,
    grid: options.grid,
  });
}

export function describeCalibration(c: Calibration): string {
  const p = c.chosen;
  const bound = c.confidence === null || c.confidence === undefined ? '' : ` at ${100 * c.confidence}% confidence`;
  const stdErr =
    p.dropStdErr === undefined
      ? ''
      : `, drop ${(100 * (c.baselineAccuracy - p.accuracy)).toFixed(2)} +- ${(100 * p.dropStdErr).toFixed(2)} (standard error)`;
  return (
    `calibrated on ${c.samples} validation samples: thresholds [${p.thresholds.map(formatThreshold).join(', ')}], ` +
    `accuracy ${(100 * p.accuracy).toFixed(2)}% (baseline ${(100 * c.baselineAccuracy).toFixed(2)}%${stdErr}; max drop ${(100 * c.maxDrop).toFixed(2)} points${bound}), ` +
    `exits ${p.exitFractions.map((f) => (100 * f).toFixed(1) + '%').join(' / ')}` +
    (c.metTarget ? '' : ' -- no setting met the target; the most accurate one was chosen')
  );
}

/** Trains (or resumes), calibrates and saves a model directory. */
export async function trainAndSave(args: {
  spec: BranchyNetSpec;
  datasetName: string;
  train: Dataset;
  validation: Dataset;
  outDir: string;
  options: TrainOptions;
  resume: boolean;
  baselineSource?: BaselineSource;
  /** How calibration picks the thresholds (default: the reference grid, no drop allowed). */
  calibration?: CalibrationOptions;
  /** Normalisation applied to the data passed in, saved with the model. */
  normalization?: ChannelStats | null;
  log: Log;
  progress?: Log;
}): Promise<{ net: BranchyNet; baseline: BranchyNet; calibration: Calibration }> {
  const { net, baseline, history, seconds, options } = await trainBranchyNet({ ...args });
  const reference = baseline ?? trunkOf(net);
  const calibration = calibrateModel(net, reference, args.validation, args.calibration);
  args.log(describeCalibration(calibration));
  saveModel(args.outDir, net, baseline, {
    thresholds: calibration.chosen.thresholds,
    calibration,
    dataset: args.datasetName,
    normalization: args.normalization ?? null,
    classNames: defaultClassNames(args.datasetName, args.spec.classes),
    training: { options, validationSize: args.validation.count, history, seconds },
  });
  args.log(`saved ${join(args.outDir, 'model.json')}`);
  return { net, baseline: reference, calibration };
}

export interface EvaluateOptions {
  /** Thresholds to evaluate instead of the model's. */
  thresholds?: number[];
  timingSamples?: number;
  batchSize?: number;
  /** Timed passes over each chunk, the best counting (default 3). */
  passes?: number;
  log?: Log;
  /** Progress lines within the timed passes (the CLI: in place on a terminal, once a minute in a log). */
  progress?: Log;
  /** The data set's name, for the report, where the model does not say. */
  dataset?: string;
}

/**
 * Accuracy, exit mix and measured speed-ups of `model` on `test` (images as the data loaders give
 * them, pixel values / 255): the model applies its own normalisation, as `classify` does.
 */
export async function evaluateModel(
  model: EarlyExitModel,
  test: Dataset,
  options: EvaluateOptions = {},
): Promise<EvalReport> {
  const thresholds = options.thresholds ?? model.thresholds;
  if (!thresholds)
    throw new UserError(`${model.name} has no calibrated thresholds; calibrate it or pass thresholds`, {
      option: 'thresholds',
    });
  const { stages, baseline, floatBaseline } = model.runners;
  if (!baseline) throw new Error(`evaluate: ${model.name} was loaded without its baseline`);
  const { pixelRange, mean, std } = model.info.preprocessing;
  if (pixelRange !== PIXEL_RANGE)
    throw new Error(`evaluate: data sets hold pixel / ${PIXEL_RANGE}, the model takes pixel / ${pixelRange}`);
  const data = mean && std ? normalizeDataset(test, { mean, std }) : test;
  return evaluate({
    name: model.name,
    dataset: model.info.dataset ?? options.dataset ?? 'unknown',
    runtime: floatBaseline ? 'onnx-int8' : model.runtime,
    backend: model.backend,
    macs: model.macs(),
    early: stages,
    base: baseline,
    ...(floatBaseline ? { floatBase: floatBaseline } : {}),
    test: data,
    thresholds,
    timingSamples: options.timingSamples,
    batchSize: options.batchSize,
    passes: options.passes,
    log: options.log,
    progress: options.progress,
  });
}
