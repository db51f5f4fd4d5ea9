import { join } from 'node:path';
import type { Dataset } from './data/dataset.js';
import { UserError } from './errors.js';
import type { ChannelStats } from './data/transform.js';
import type { Calibration } from './eval/calibrate.js';
import type { ThresholdGrid } from './eval/calibrate.js';
import { calibrate, cumulativeExitMacs, formatThreshold } from './eval/calibrate.js';
import type { EvalReport } from './eval/report.js';
import { evaluate } from './eval/report.js';
import type { LoadedModel } from './model/io.js';
import { saveModel, trunkOf } from './model/io.js';
import type { BranchyNet } from './model/network.js';
import type { BranchyNetSpec } from './model/spec.js';
import { allExitLogits, argmaxRow } from './runtime/full_forward.js';
import type { RuntimeName } from './runtime/onnx_runner.js';
import { chooseRuntime, OnnxRunner } from './runtime/onnx_runner.js';
import { TfjsRunner } from './runtime/tfjs_runner.js';
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
export function calibrateModel(net: BranchyNet, baseline: BranchyNet, validation: Dataset, options: CalibrationOptions = {}): Calibration {
  const classes = net.spec.classes;
  const baselineLogits = allExitLogits(baseline, validation)[0];
  const baselineCorrect = Uint8Array.from(validation.labels, (label, i) => (argmaxRow(baselineLogits, i, classes) === label ? 1 : 0));
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
  const stdErr = p.dropStdErr === undefined ? '' : `, drop ${(100 * (c.baselineAccuracy - p.accuracy)).toFixed(2)} +- ${(100 * p.dropStdErr).toFixed(2)} (standard error)`;
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
    training: { options, validationSize: args.validation.count, history, seconds },
  });
  args.log(`saved ${join(args.outDir, 'model.json')}`);
  return { net, baseline: reference, calibration };
}

export interface EvaluateOptions {
  thresholds?: number[];
  timingSamples?: number;
  batchSize?: number;
  /** Timed passes over each chunk, the best counting (default 3). */
  passes?: number;
  log?: Log;
  /** Progress lines within the timed passes (the CLI: in place on a terminal, once a minute in a log). */
  progress?: Log;
  /** 'onnx' (ONNX Runtime) or 'tfjs'; default ONNX Runtime where onnxruntime-node loads and the network exports, else tfjs (with a notice). */
  runtime?: RuntimeName;
  /** ONNX Runtime intra-op threads (default 1). */
  threads?: number;
}

export async function evaluateModel(model: LoadedModel, test: Dataset, options: EvaluateOptions = {}): Promise<EvalReport> {
  const thresholds = options.thresholds ?? model.thresholds;
  if (!thresholds) throw new UserError(`${model.dir}: the model has no calibrated thresholds; run 'branchynet calibrate' or pass --thresholds`);
  const runtime = await chooseRuntime(options.runtime, options.log, model.spec);
  const baselineNet = model.baseline ?? trunkOf(model.net);
  const args = {
    name: model.spec.name,
    dataset: model.dataset ?? 'unknown',
    runtime,
    net: model.net,
    baselineNet,
    test,
    thresholds,
    timingSamples: options.timingSamples,
    batchSize: options.batchSize,
    passes: options.passes,
    log: options.log,
    progress: options.progress,
  };
  if (runtime === 'tfjs') return evaluate({ ...args, early: new TfjsRunner(model.net), base: new TfjsRunner(baselineNet) });
  const onnxOptions = { intraOpNumThreads: options.threads };
  const early = await OnnxRunner.fromNet(model.net, onnxOptions);
  const base = await OnnxRunner.fromNet(baselineNet, onnxOptions).catch(async (e: unknown) => {
    await early.release();
    throw e;
  });
  try {
    return await evaluate({ ...args, early, base });
  } finally {
    await Promise.all([early.release(), base.release()]);
  }
}
