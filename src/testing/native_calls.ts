import type * as tf from '@tensorflow/tfjs-core';
import { ONEDNN_KERNEL_CONFIGS } from '../engine/onednn/backend.js';

/**
 * Runs `fn` with every onednn kernel wrapped to count its calls: which kernels ran natively rather
 * than through the cpu fallback. Returns fn's value and the counts by kernel name.
 */
export function countNativeCalls<T>(fn: () => T): { value: T; calls: Map<string, number> } {
  const calls = new Map<string, number>();
  const saved = ONEDNN_KERNEL_CONFIGS.map((c) => ({ c, f: c.kernelFunc }));
  for (const { c, f } of saved) {
    (c as { kernelFunc: tf.KernelFunc }).kernelFunc = (args) => {
      calls.set(c.kernelName, (calls.get(c.kernelName) ?? 0) + 1);
      return f(args);
    };
  }
  try {
    return { value: fn(), calls };
  } finally {
    for (const { c, f } of saved) (c as { kernelFunc: tf.KernelFunc }).kernelFunc = f;
  }
}
