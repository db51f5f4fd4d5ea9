/**
 * branchynet: early-exit neural networks (BranchyNet, Teerapittayanon et al., ICPR 2016).
 *
 * This entry runs anywhere (Node, a page, a worker): the model API, the early-exit schedule and
 * exit rule, calibration maths, MAC bookkeeping, the network specs and zoo, and the ONNX runner
 * over any ONNX Runtime module. Training, data sets, files and the native backend are Node-only:
 * `branchynet/node`.
 */
export {
  EarlyExitModel,
  type Answer,
  type LoadOptions,
  type ModelEngine,
  type ModelInfo,
  type RuntimeChoice,
} from './api/early_exit_model.js';
export type { ImageDataLike, ImageInput, PixelArray, TensorLike } from './api/images.js';
export { applyPreprocessing, type Preprocessing } from './api/preprocessing.js';
export { defaultClassNames } from './api/class_names.js';
export type {
  BranchyNetSpec,
  LayerSpec,
  LayerKind,
  Conv2dSpec,
  MaxPoolSpec,
  DenseSpec,
  ReluSpec,
  FlattenSpec,
  LrnSpec,
  DropoutSpec,
  BatchNormSpec,
  AvgPoolSpec,
  ResBlockSpec,
  Shape,
} from './model/spec.js';
export { baselineOf } from './model/spec.js';
export { bLeNet, bAlexNet, bResNet, zooSpec, MODEL_ZOO } from './model/zoo.js';
export { cumulativeExitMacs, expectedMacs, trunkMacs, type BlockMacs } from './model/macs.js';
export {
  earlyExit,
  earlyExitAsync,
  applyExitRule,
  type EarlyExitOptions,
  type ExitResults,
} from './runtime/early_exit.js';
export { argmaxRow, checkThresholds, exitsHere, rowEntropy } from './runtime/exit_rule.js';
export type { StageRunner, StageOutput } from './runtime/runner.js';
export {
  OnnxRunner,
  DEFAULT_MAX_RUN_ROWS,
  type OnnxActivation,
  type OnnxRunnerOptions,
  type OnnxSource,
} from './runtime/onnx_runner.js';
export { openPublicSession, type OrtModule, type OrtSession, type SessionOpener } from './runtime/ort_session.js';
export {
  checkManifest,
  MANIFEST_FILE,
  ONNX_FORMAT,
  ONNX_FORMAT_VERSION,
  type IoSpec,
  type OnnxExport,
  type OnnxManifest,
  type StageManifest,
} from './onnx/manifest.js';
export {
  calibrate,
  paretoFrontier,
  formatThreshold,
  REFERENCE_GRID,
  type Calibration,
  type OperatingPoint,
  type ThresholdGrid,
} from './eval/calibrate.js';
export { UserError } from './errors.js';
