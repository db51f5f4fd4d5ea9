/**
 * Every place where branchynet reaches into a dependency's non-public internals, in one module,
 * with the versions each was written against. Each has a test (compat.test.ts) that fails loudly
 * when a dependency changes under it, and each has a public-API fallback or a clear error.
 *
 * - onnxruntime-node 1.30: `dist/binding.js`, its native `InferenceSession` (`directOrtBinding`).
 * - tfjs-core 4.22: the engine's registry of backend instances (`registeredBackend`), and
 *   `AdamOptimizer`'s protected state: step size, betas, running beta products, moments
 *   (`adamState`, `setAdamLearningRate`).
 */
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import type { InferenceSession, Tensor } from 'onnxruntime-common';
import type { OrtOutputs, SessionOpener } from './runtime/ort_session.js';
import { openPublicSession } from './runtime/ort_session.js';

export const CHECKED_VERSIONS = { 'onnxruntime-node': '1.30.0', '@tensorflow/tfjs-core': '4.22.0' } as const;

/** The native session object onnxruntime-node wraps (its `dist/binding.d.ts`, `Binding.InferenceSession`). */
interface NativeSession {
  loadModel(
    buffer: ArrayBufferLike,
    byteOffset: number,
    byteLength: number,
    options: InferenceSession.SessionOptions,
  ): void;
  run(feeds: Record<string, Tensor>, fetches: Record<string, null>, options: InferenceSession.RunOptions): OrtOutputs;
  dispose(): void;
}

interface NativeBinding {
  binding: { InferenceSession: new () => NativeSession };
  initOrt: () => void;
}

let nativeBinding: NativeBinding | { error: string } | undefined;

/**
 * onnxruntime-node's native binding, where this version has the shape this module was written
 * against; else why not. Its public `InferenceSession.run` makes the same synchronous native
 * call, but from a `setImmediate` callback and through a Promise, and wraps the outputs again:
 * a fixed cost per run that is a sizeable share of a small stage's time at batch 1.
 */
export function directOrtBinding(): NativeBinding | { error: string } {
  if (nativeBinding) return nativeBinding;
  try {
    const loaded = createRequire(import.meta.url)('onnxruntime-node/dist/binding.js') as Partial<NativeBinding>;
    const proto = (loaded.binding?.InferenceSession as { prototype?: Partial<NativeSession> } | undefined)?.prototype;
    const ok =
      typeof loaded.initOrt === 'function' &&
      ['loadModel', 'run', 'dispose'].every((m) => typeof proto?.[m as keyof NativeSession] === 'function');
    nativeBinding = ok
      ? (loaded as NativeBinding)
      : { error: 'onnxruntime-node/dist/binding.js does not have the expected InferenceSession' };
  } catch (e) {
    nativeBinding = { error: e instanceof Error ? e.message.split('\n')[0] : String(e) };
  }
  return nativeBinding;
}

/**
 * Opens a session on onnxruntime-node's native binding when `direct` and `directOrtBinding()`
 * finds it (runs are then synchronous); else on the public API.
 */
export const openDirectSession: SessionOpener = async (ort, model, options, fetches, direct) => {
  const native = direct ? directOrtBinding() : null;
  if (!native || 'error' in native) return openPublicSession(ort, model, options, fetches, false);
  native.initOrt();
  const session = new native.binding.InferenceSession();
  session.loadModel(model.buffer, model.byteOffset, model.byteLength, options);
  const wanted: Record<string, null> = Object.fromEntries(fetches.map((name) => [name, null]));
  const runOptions = {};
  return {
    direct: true,
    run: (feeds) => session.run(feeds, wanted, runOptions),
    release: async () => session.dispose(),
  };
};

/** The instance of backend `name` the engine holds, if it made one (tfjs has no public getter). */
export function registeredBackend(name: string): tf.KernelBackend | undefined {
  return (tf.engine() as unknown as { registry: Record<string, tf.KernelBackend | undefined> }).registry[name];
}

interface OptimizerVariable {
  originalName: string;
  variable: tf.Variable;
}

/** AdamOptimizer's protected state (tfjs-core 4.x), which a subclass or a checkpoint needs to read. */
export interface AdamState {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  /** beta1^t and beta2^t, built up step by step (made by the constructor). */
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: OptimizerVariable[];
  accumulatedSecondMoment: OptimizerVariable[];
}

export function adamState(optimizer: tf.AdamOptimizer): AdamState {
  return optimizer as unknown as AdamState;
}

/** Sets the step size of the next updates: tfjs reads the protected field on every update and has no setter. */
export function setAdamLearningRate(optimizer: tf.AdamOptimizer, learningRate: number): void {
  adamState(optimizer).learningRate = learningRate;
}
