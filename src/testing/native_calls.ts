import * as tf from '@tensorflow/tfjs-core';
import type { OneDnnAddon } from '../engine/onednn/addon.js';
import { ONEDNN, ONEDNN_KERNEL_CONFIGS } from '../engine/onednn/backend.js';

/**
 * Runs `fn` with every onednn kernel wrapped to count its calls, and the addon of the onednn backend
 * (when it was initialised) wrapped to count the calls of each of its functions. `calls`: the onednn
 * kernels that were asked, rather than the cpu ones; `addonCalls`: the native code that ran (a kernel
 * that falls back to the cpu backend's is in `calls` but calls nothing in `addonCalls`).
 */
export function countNativeCalls<T>(fn: () => T): {
  value: T;
  calls: Map<string, number>;
  addonCalls: Map<string, number>;
} {
  const calls = new Map<string, number>();
  const addonCalls = new Map<string, number>();
  const saved = ONEDNN_KERNEL_CONFIGS.map((c) => ({ c, f: c.kernelFunc }));
  for (const { c, f } of saved) {
    (c as { kernelFunc: tf.KernelFunc }).kernelFunc = (args) => {
      calls.set(c.kernelName, (calls.get(c.kernelName) ?? 0) + 1);
      return f(args);
    };
  }
  // The addon's exports are read-only: the backend gets a counting stand-in for the time of fn.
  const backend = tf.engine().registry[ONEDNN] as unknown as { addon: OneDnnAddon } | undefined;
  const addon = backend?.addon;
  if (backend !== undefined && addon !== undefined) {
    const counting: Record<string, unknown> = {};
    for (const name of Object.getOwnPropertyNames(addon)) {
      const value = (addon as unknown as Record<string, unknown>)[name];
      counting[name] =
        typeof value !== 'function'
          ? value
          : (...args: unknown[]) => {
              addonCalls.set(name, (addonCalls.get(name) ?? 0) + 1);
              return (value as (...a: unknown[]) => unknown).apply(addon, args);
            };
    }
    backend.addon = counting as unknown as OneDnnAddon;
  }
  try {
    return { value: fn(), calls, addonCalls };
  } finally {
    for (const { c, f } of saved) (c as { kernelFunc: tf.KernelFunc }).kernelFunc = f;
    if (backend !== undefined && addon !== undefined) backend.addon = addon;
  }
}
