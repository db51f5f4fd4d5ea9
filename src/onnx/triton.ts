/**
 * A Triton Inference Server model repository around the single-file model: `<name>/config.pbtxt`
 * (ONNX Runtime backend) and `<name>/1/model.onnx`.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../io/tensor_pack.js';
import { SINGLE_FILE, SINGLE_NAMES } from './single_file.js';

export const TRITON_DEFAULT_MAX_BATCH = 256;

export interface TritonTensor {
  name: string;
  dataType: 'TYPE_FP32' | 'TYPE_INT64';
  /** Dimensions after the batch dimension (Triton adds it where max_batch_size > 0). */
  dims: number[];
}

export interface TritonConfig {
  name: string;
  maxBatchSize: number;
  inputs: TritonTensor[];
  outputs: TritonTensor[];
}

/**
 * The single file's tensors as Triton sees them. `thresholds` is left out: it has a default in
 * the file (an initializer), and ONNX Runtime does not count such inputs among a session's
 * inputs, so the served model answers with the thresholds the file was exported with.
 */
export function tritonConfigOf(
  name: string,
  input: [number, number, number],
  classes: number,
  maxBatchSize = TRITON_DEFAULT_MAX_BATCH,
): TritonConfig {
  return {
    name,
    maxBatchSize,
    inputs: [{ name: SINGLE_NAMES.image, dataType: 'TYPE_FP32', dims: input }],
    outputs: [
      { name: SINGLE_NAMES.logits, dataType: 'TYPE_FP32', dims: [classes] },
      { name: SINGLE_NAMES.exit, dataType: 'TYPE_INT64', dims: [] },
      { name: SINGLE_NAMES.entropy, dataType: 'TYPE_FP32', dims: [] },
    ],
  };
}

/**
 * config.pbtxt text. A tensor with the batch dimension only ([N]) is declared as dims [1] with
 * an empty reshape, Triton's way to describe it when max_batch_size > 0.
 */
export function tritonConfigText(config: TritonConfig): string {
  const tensor = (t: TritonTensor) =>
    [
      '  {',
      `    name: "${t.name}"`,
      `    data_type: ${t.dataType}`,
      `    dims: [ ${(t.dims.length === 0 ? [1] : t.dims).join(', ')} ]`,
      ...(t.dims.length === 0 ? ['    reshape: { shape: [ ] }'] : []),
      '  }',
    ].join('\n');
  return [
    `name: "${config.name}"`,
    'platform: "onnxruntime_onnx"',
    `max_batch_size: ${config.maxBatchSize}`,
    'input [',
    config.inputs.map(tensor).join(',\n'),
    ']',
    'output [',
    config.outputs.map(tensor).join(',\n'),
    ']',
    'dynamic_batching { }',
    'instance_group [ { kind: KIND_CPU } ]',
    '',
  ].join('\n');
}

/** Triton model names: letters, digits, '-', '_' and '.'. */
export function tritonModelName(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]/g, '_');
}

/** Writes `<repo>/<name>/config.pbtxt` and `<repo>/<name>/1/model.onnx`; returns the paths written. */
export function writeTritonRepository(repo: string, config: TritonConfig, model: Uint8Array): string[] {
  const dir = join(repo, config.name);
  mkdirSync(join(dir, '1'), { recursive: true });
  const configPath = join(dir, 'config.pbtxt');
  const modelPath = join(dir, '1', SINGLE_FILE);
  writeFileAtomic(modelPath, [model]);
  writeFileAtomic(configPath, [new TextEncoder().encode(tritonConfigText(config))]);
  return [configPath, modelPath];
}
