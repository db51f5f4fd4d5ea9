/**
 * The stock tfjs-backend-wasm kernel configs that our kernels replace,
 * captured when this module is first evaluated, i.e. after
 * '@tensorflow/tfjs-backend-wasm' registered its kernels and before
 * `registerKernels()` can have replaced any of them.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import type { KernelConfig } from '@tensorflow/tfjs-core';
import { WASM } from './util.js';

const REPLACED = [
  tf.BatchMatMul,
  tf._FusedMatMul,
  tf.Conv2DBackpropInput,
  tf.Conv2DBackpropFilter,
  tf.GatherV2,
  tf.MaxPoolGrad,
] as const;

const originals = new Map<string, KernelConfig | undefined>(REPLACED.map((name) => [name, tf.getKernel(name, WASM)]));

/** The stock wasm kernel for `kernelName` (undefined when tfjs-backend-wasm has none, e.g. Conv2DBackpropFilter). */
export function originalWasmKernel(kernelName: string): KernelConfig | undefined {
  return originals.get(kernelName);
}

/** Same, but throws when there is none. */
export function requireOriginalWasmKernel(kernelName: string): KernelConfig {
  const config = originals.get(kernelName);
  if (config === undefined)
    throw new Error(`branchynet: tfjs-backend-wasm has no '${kernelName}' kernel to delegate to`);
  return config;
}
