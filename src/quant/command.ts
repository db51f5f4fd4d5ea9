/** `branchynet quantize`: reads a float model directory, writes the quantised one. */
import { defaultClassNames } from '../api/class_names.js';
import { preprocessingOf } from '../api/preprocessing.js';
import { join } from 'node:path';
import { loadDataset } from '../data/index.js';
import { UserError } from '../errors.js';
import { describeCalibration } from '../workflow.js';
import type { ThresholdGrid } from '../eval/calibrate.js';
import { loadModel, trunkOf } from '../model/io.js';
import { validationSplitOf } from './data.js';
import { writeQuantizedModel } from './model_dir.js';
import type { QuantizeOptions } from './quantize.js';
import { quantizeNetwork } from './quantize.js';

export async function quantizeCommand(args: {
  modelDir: string;
  outDir: string;
  dataset?: string;
  dataDir?: string;
  /** Calibration rules given on the command line; those left out are the source model's. */
  maxDrop?: number;
  confidence?: number;
  grid?: ThresholdGrid;
  options?: Omit<QuantizeOptions, 'maxDrop' | 'confidence' | 'grid' | 'sourceCalibration' | 'log'>;
  log: (line: string) => void;
}): Promise<string[]> {
  const model = loadModel(args.modelDir);
  try {
    if (model.quantized !== undefined)
      throw new UserError(`${args.modelDir}: already quantised; --model must name a float model directory`);
    const { train } = loadDataset(args.dataset ?? model.dataset ?? 'mnist', args.dataDir);
    const validation = validationSplitOf(model, train);
    args.log(
      `quantising ${model.spec.name} on its validation split (${validation.count} images, the last of the training set) -> ${args.outDir}`,
    );
    const baseline = model.baseline ?? trunkOf(model.net);
    try {
      const { bundle, record } = await quantizeNetwork(model.net, baseline, validation, {
        ...args.options,
        ...(args.maxDrop !== undefined ? { maxDrop: args.maxDrop } : {}),
        ...(args.confidence !== undefined ? { confidence: args.confidence } : {}),
        ...(args.grid !== undefined ? { grid: args.grid } : {}),
        sourceCalibration: model.calibration,
        classNames: model.classNames ?? defaultClassNames(model.dataset, model.spec.classes),
        preprocessing: preprocessingOf(model.normalization),
        log: args.log,
      });
      args.log(`int8 ${describeCalibration(record.calibration)}`);
      const files = writeQuantizedModel(args.outDir, model, bundle, record);
      args.log(
        `saved ${join(args.outDir, 'model.json')} (int8 stages in ${join(args.outDir, 'int8')}, report in ${join(args.outDir, 'quantization.md')})`,
      );
      return files.map((f) => join(args.outDir, f));
    } finally {
      if (!model.baseline) baseline.dispose();
    }
  } finally {
    model.net.dispose();
    model.baseline?.dispose();
  }
}
