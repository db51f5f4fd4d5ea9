/**
 * branchynet: early-exit neural networks (BranchyNet, Teerapittayanon et al., ICPR 2016) on
 * TensorFlow.js. See README.md for a walk-through.
 */
export { initBackend, bestBackend, oneDnnNotice, backendThreads, type BackendName, type InitBackendOptions } from './engine/backend.js';
export type {
  BranchyNetSpec, LayerSpec, LayerKind, Conv2dSpec, MaxPoolSpec, DenseSpec, ReluSpec, FlattenSpec, LrnSpec, DropoutSpec, BatchNormSpec, AvgPoolSpec, ResBlockSpec, Shape,
} from './model/spec.js';
export { baselineOf } from './model/spec.js';
export { BranchyNet, analyseSpec } from './model/network.js';
export { bLeNet, bAlexNet, bResNet, zooSpec, MODEL_ZOO } from './model/zoo.js';
export { saveModel, loadModel, trunkOf, type LoadedModel, type ModelMeta } from './model/io.js';
export { loadMnist, defaultMnistDir } from './data/mnist.js';
export { loadDataset, holdOutValidation, headDataset, type Dataset } from './data/index.js';
export { loadCifar10, CIFAR10_DIR_ENV } from './data/cifar10.js';
export { downloadDataset } from './data/download.js';
export { channelStats, normalizeDataset, makeAugmentation, CIFAR_AUGMENTATION, type ChannelStats, type AugmentOptions } from './data/transform.js';
export { trainBranchyNet, DEFAULT_TRAIN_OPTIONS, type TrainOptions, type TrainHistory } from './train/pipeline.js';
export { earlyExit, earlyExitAsync, applyExitRule, type ExitResults } from './runtime/early_exit.js';
export { rowEntropy, exitsHere } from './runtime/entropy.js';
export type { StageRunner, StageOutput } from './runtime/runner.js';
export { TfjsRunner } from './runtime/tfjs_runner.js';
export { OnnxRunner, chooseRuntime, loadOnnxRuntime, readManifest, type OnnxActivation, type OnnxRunnerOptions, type OnnxSource, type RuntimeName } from './runtime/onnx_runner.js';
export { exportNetwork, exportModel, exportStages, writeExport, toNetworkOrder, type OnnxExport, type OnnxManifest, type StageManifest, type IoSpec, type ExportOptions, type GraphOptions } from './onnx/export.js';
export { allExitLogits } from './runtime/full_forward.js';
export { calibrate, paretoFrontier, REFERENCE_GRID, type Calibration, type OperatingPoint, type ThresholdGrid } from './eval/calibrate.js';
export { evaluate, formatReport, type EvalReport } from './eval/report.js';
export { calibrateModel, evaluateModel, trainAndSave, type CalibrationOptions, type EvaluateOptions } from './workflow.js';
export { UserError } from './errors.js';
export { Rng } from './rng.js';
export type { ForwardOptions } from './model/layers/index.js';
