import * as tf from '@tensorflow/tfjs-core';
import type { LoadOptions } from '../api/early_exit_model.js';
import { EarlyExitModel, modelDirInfo } from '../api/early_exit_model.js';
import { initBackend } from '../engine/backend.js';
import { trunkMacs } from '../model/macs.js';
import type { LoadedModel } from '../model/io.js';
import { loadModel, trunkOf } from '../model/io.js';
import type { BranchyNet } from '../model/network.js';
import { TfjsRunner } from '../runtime/tfjs_runner.js';
import { UserError } from '../errors.js';
import { int8Runners } from '../quant/eval_int8.js';
import { quantizedRecordOf } from '../quant/model_dir.js';
import { chooseRuntime, loadAnyOnnxRuntime, onnxRunnerFromNet } from './onnx.js';

/**
 * Starts a tfjs backend unless one was chosen already (the CLI chooses its own): wasm, the
 * fastest for inference of the backends that always install.
 */
async function ensureBackend(): Promise<string> {
  const chosen = (tf.engine() as { backendName?: string | null }).backendName;
  if (chosen) return chosen;
  return initBackend('wasm');
}

/** Networks in memory and what a model directory's model.json says of them. */
export type Networks = Pick<
  LoadedModel,
  'spec' | 'net' | 'baseline' | 'thresholds' | 'dataset' | 'normalization' | 'classNames'
>;

/**
 * An `EarlyExitModel` of networks in memory (e.g. just trained). On ONNX Runtime their stages
 * are exported in memory; on tfjs they run as they are. `own`: the model disposes the networks
 * when it is disposed (or, on ONNX Runtime, once exported); else they stay the caller's.
 */
export async function modelFromNetworks(
  networks: Networks,
  options: LoadOptions = {},
  own = false,
): Promise<EarlyExitModel> {
  const requested = options.runtime === 'auto' ? undefined : options.runtime;
  const owned: BranchyNet[] = own ? [networks.net, ...(networks.baseline ? [networks.baseline] : [])] : [];
  const dispose = () => owned.splice(0).forEach((n) => n.dispose());
  try {
    const baselineNet = networks.baseline ?? trunkOf(networks.net);
    if (!networks.baseline) owned.push(baselineNet);
    const info = modelDirInfo({
      ...networks,
      macs: { ...networks.net.macs(), baseline: trunkMacs(baselineNet.macs()) },
    });
    const runtime = await chooseRuntime(requested, options.notice, networks.spec);
    if (runtime === 'tfjs') {
      const backend = tf.getBackend();
      options.notice?.(`runtime: tfjs (${backend} backend)`);
      const stages = new TfjsRunner(networks.net);
      const baseline = new TfjsRunner(baselineNet);
      return EarlyExitModel.fromEngine(info, { runtime, backend, stages, baseline, release: async () => dispose() });
    }
    const onnxOptions = { intraOpNumThreads: options.threads, ...options.onnx };
    const stages = await onnxRunnerFromNet(networks.net, onnxOptions);
    const baseline = await onnxRunnerFromNet(baselineNet, onnxOptions).catch(async (e: unknown) => {
      await stages.release();
      throw e;
    });
    // The sessions hold their own copies of the weights.
    dispose();
    const loaded = await loadAnyOnnxRuntime();
    options.notice?.(`runtime: ONNX Runtime (${'name' in loaded ? loaded.name : '?'})`);
    const release = async () => void (await Promise.all([stages.release(), baseline.release()]));
    return EarlyExitModel.fromEngine(info, { runtime, backend: 'none', stages, baseline, release });
  } catch (e) {
    dispose();
    throw e;
  }
}

/**
 * A quantised model directory (`branchynet quantize`): its int8 stages and int8 baseline on ONNX
 * Runtime, with the int8 thresholds, and its float baseline beside them for comparison.
 */
async function openQuantized(model: LoadedModel, options: LoadOptions): Promise<EarlyExitModel> {
  const nets = [model.net, ...(model.baseline ? [model.baseline] : [])];
  try {
    const record = quantizedRecordOf(model)!;
    if (options.runtime === 'tfjs') {
      throw new UserError(`${model.dir} is quantised: its int8 stages run on ONNX Runtime only`, { option: 'runtime' });
    }
    const baselineNet = model.baseline ?? trunkOf(model.net);
    if (!model.baseline) nets.push(baselineNet);
    const info = modelDirInfo({
      ...model,
      spec: { ...model.spec, name: `${model.spec.name} (int8)` },
      thresholds: record.thresholds,
      macs: { ...model.net.macs(), baseline: trunkMacs(baselineNet.macs()) },
    });
    const onnxOptions = { intraOpNumThreads: options.threads, ...options.onnx };
    const { early, base } = await int8Runners(model, onnxOptions);
    const floatBaseline = await onnxRunnerFromNet(baselineNet, onnxOptions).catch(async (e: unknown) => {
      await Promise.all([early.release(), base.release()]);
      throw e;
    });
    options.notice?.('runtime: ONNX Runtime (onnxruntime-node), int8 stages');
    const release = async () => void (await Promise.all([early.release(), base.release(), floatBaseline.release()]));
    return EarlyExitModel.fromEngine(info, {
      runtime: 'onnx',
      backend: 'none',
      stages: early,
      baseline: base,
      floatBaseline,
      release,
    });
  } finally {
    nets.forEach((n) => n.dispose());
  }
}

/** Opens a model directory (model.json, weights.bin, baseline.bin) for `EarlyExitModel.load`. */
export async function openModelDir(dir: string, options: LoadOptions): Promise<EarlyExitModel> {
  await ensureBackend();
  const model = loadModel(dir);
  if (model.quantized !== undefined) return openQuantized(model, options);
  return modelFromNetworks(model, options, true);
}
