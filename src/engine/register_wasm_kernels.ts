/**
 * Our wasm kernels (src/engine/wasm_kernels/), registered over / next to the stock
 * tfjs-backend-wasm ones.
 */
import { registeredBackend } from '../compat.js';
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig } from '@tensorflow/tfjs-core';
import { batchMatMulConfig } from './wasm_kernels/BatchMatMul.js';
import { conv2DBackpropFilterConfig } from './wasm_kernels/Conv2DBackpropFilter.js';
import { conv2DBackpropInputConfig } from './wasm_kernels/Conv2DBackpropInput.js';
import { fusedMatMulConfig } from './wasm_kernels/_FusedMatMul.js';
import { fastGatherV2Config } from './wasm_kernels/GatherV2.js';
import { maxPoolGradConfig } from './wasm_kernels/MaxPoolGrad.js';
import { originalWasmKernel, requireOriginalWasmKernel } from './wasm_kernels/originals.js';

/** All kernels this package registers on the wasm backend. */
export const WASM_KERNEL_CONFIGS: readonly KernelConfig[] = [
  conv2DBackpropFilterConfig,
  conv2DBackpropInputConfig,
  batchMatMulConfig,
  fusedMatMulConfig,
  fastGatherV2Config(requireOriginalWasmKernel(tf.GatherV2)),
  maxPoolGradConfig,
];

/**
 * The engine runs kernel setupFuncs (which bind the wasm functions) only when
 * a backend is set. A config registered after that must be set up by hand.
 */
function register(config: KernelConfig): void {
  tf.registerKernel(config);
  const instance = registeredBackend(config.backendName);
  if (instance !== undefined) config.setupFunc?.(instance);
}

function isOurs(config: KernelConfig | undefined): boolean {
  return config !== undefined && WASM_KERNEL_CONFIGS.some((c) => c.kernelFunc === config.kernelFunc);
}

/**
 * Registers WASM_KERNEL_CONFIGS on the wasm backend, replacing the stock
 * kernels of the same name. Idempotent. Independent of the backend
 * instance, so it may run before or after the wasm backend is initialised.
 */
export function registerKernels(): void {
  for (const config of WASM_KERNEL_CONFIGS) {
    const current = tf.getKernel(config.kernelName, config.backendName);
    if (current?.kernelFunc === config.kernelFunc) continue;
    if (current !== undefined) tf.unregisterKernel(config.kernelName, config.backendName);
    register(config);
  }
}

/** Undoes registerKernels(): restores the stock wasm kernels (for A/B comparisons). Idempotent. */
export function unregisterKernels(): void {
  for (const config of WASM_KERNEL_CONFIGS) {
    const current = tf.getKernel(config.kernelName, config.backendName);
    if (!isOurs(current)) continue;
    tf.unregisterKernel(config.kernelName, config.backendName);
    const original = originalWasmKernel(config.kernelName);
    if (original !== undefined) register(original);
  }
}

/** Whether our kernels are currently registered on the wasm backend. */
export function kernelsRegistered(): boolean {
  return WASM_KERNEL_CONFIGS.every((c) => tf.getKernel(c.kernelName, c.backendName)?.kernelFunc === c.kernelFunc);
}
