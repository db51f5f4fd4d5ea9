/** The int8 runners of a quantised model directory (its int8/ export) on onnxruntime-node. */
import type { LoadedModel } from '../model/io.js';
import { createOnnxRunner } from '../node/onnx.js';
import type { OnnxRunner, OnnxRunnerOptions } from '../runtime/onnx_runner.js';
import { int8Dir } from './model_dir.js';

/** The int8 early-exit and baseline runners of a quantised model directory. */
export async function int8Runners(
  model: Pick<LoadedModel, 'dir' | 'quantized'>,
  options: OnnxRunnerOptions = {},
): Promise<{ early: OnnxRunner; base: OnnxRunner }> {
  const dir = int8Dir(model);
  const early = await createOnnxRunner({ kind: 'dir', dir }, options);
  try {
    return { early, base: await createOnnxRunner({ kind: 'dir', dir, which: 'baseline' }, options) };
  } catch (e) {
    await early.release();
    throw e;
  }
}
