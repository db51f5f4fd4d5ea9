/**
 * branchynet: early-exit neural networks (BranchyNet, Teerapittayanon et al., ICPR 2016) on
 * TensorFlow.js. See README.md for a walk-through.
 */
export { initBackend, type BackendName } from './engine/backend.js';
export type { BranchyNetSpec, LayerSpec, Conv2dSpec, MaxPoolSpec, DenseSpec, ReluSpec, FlattenSpec, Shape } from './model/spec.js';
export { baselineOf } from './model/spec.js';
export { BranchyNet, analyseSpec } from './model/network.js';
export { bLeNet, zooSpec, MODEL_ZOO } from './model/zoo.js';
export { saveModel, loadModel, trunkOf, type LoadedModel, type ModelMeta } from './model/io.js';
export { loadMnist, defaultMnistDir } from './data/mnist.js';
export { loadDataset, holdOutValidation, headDataset, type Dataset } from './data/index.js';
export { trainBranchyNet, DEFAULT_TRAIN_OPTIONS, type TrainOptions, type TrainHistory } from './train/pipeline.js';
export { earlyExit, applyExitRule, type ExitResults } from './runtime/early_exit.js';
export { rowEntropy, exitsHere } from './runtime/entropy.js';
export type { StageRunner } from './runtime/runner.js';
export { TfjsRunner } from './runtime/tfjs_runner.js';
export { allExitLogits } from './runtime/full_forward.js';
export { calibrate, paretoFrontier, REFERENCE_GRID, type Calibration, type OperatingPoint } from './eval/calibrate.js';
export { evaluate, formatReport, type EvalReport } from './eval/report.js';
export { calibrateModel, evaluateModel, trainAndSave } from './workflow.js';
export { UserError } from './errors.js';
