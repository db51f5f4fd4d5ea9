/**
 * branchynet for Node: everything of the main entry, plus what needs Node (files, data sets,
 * training, the tfjs backends and the native oneDNN addon, ONNX Runtime for Node, export).
 */
export * from './index.js';
export {
  initBackend,
  bestBackend,
  backendThreads,
  oneDnnNotice,
  type BackendName,
  type InitBackendOptions,
} from './engine/backend.js';
export { BranchyNet, analyseSpec } from './model/network.js';
export { saveModel, loadModel, trunkOf, type LoadedModel, type ModelMeta } from './model/io.js';
export { modelFromNetworks, type Networks } from './node/model_dir.js';
export { loadMnist, defaultMnistDir } from './data/mnist.js';
export { loadDataset, holdOutValidation, headDataset, type Dataset } from './data/index.js';
export { loadCifar10, CIFAR10_DIR_ENV } from './data/cifar10.js';
export { downloadDataset } from './data/download.js';
export {
  channelStats,
  normalizeDataset,
  makeAugmentation,
  CIFAR_AUGMENTATION,
  type ChannelStats,
  type AugmentOptions,
} from './data/transform.js';
export { trainBranchyNet, DEFAULT_TRAIN_OPTIONS, type TrainOptions, type TrainHistory } from './train/pipeline.js';
export { TfjsRunner } from './runtime/tfjs_runner.js';
export { allExitLogits } from './runtime/full_forward.js';
export {
  chooseRuntime,
  createOnnxRunner,
  loadAnyOnnxRuntime,
  loadOnnxRuntime,
  loadOnnxRuntimeWeb,
  NODE_ORT_ENV,
  onnxRunnerFromNet,
  readManifest,
  type NodeOnnxRuntime,
  type NodeOnnxSource,
  type RuntimeName,
} from './node/onnx.js';
export { openDirectSession } from './compat.js';
export {
  exportNetwork,
  exportModel,
  exportStages,
  writeExport,
  toNetworkOrder,
  type ExportOptions,
  type GraphOptions,
} from './onnx/export.js';
export { evaluate, formatReport, type EvalReport } from './eval/report.js';
export {
  calibrateModel,
  evaluateModel,
  trainAndSave,
  type CalibrationOptions,
  type EvaluateOptions,
} from './workflow.js';
export { Rng } from './rng.js';
export type { ForwardOptions } from './model/layers/index.js';
