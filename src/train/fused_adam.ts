/**
 * Adam with each variable's update as one kernel call where the active backend has one (the onednn
 * backend's BranchyAdamUpdate), instead of tfjs's ~10 elementwise ops per variable; tfjs's own
 * AdamOptimizer everywhere else. The state is tfjs's, kept exactly as tfjs keeps it (moments
 * `${name}/m` and `${name}/v`, accBeta1 / accBeta2, the iteration count), so getWeights / setWeights,
 * checkpoints and resumed runs work across both paths; the update uses the same float32 operations
 * in the same order as tfjs's. `learningRate` is read on every call (schedules set it per batch).
 */
import * as tf from '@tensorflow/tfjs-core';
import { adamState } from '../compat.js';
import { ADAM_UPDATE } from '../engine/onednn/kernel_names.js';

type VariableGradients = Parameters<tf.AdamOptimizer['applyGradients']>[0];

export class FusedAdamOptimizer extends tf.AdamOptimizer {
  constructor(learningRate = 0.001, beta1 = 0.9, beta2 = 0.999, epsilon?: number) {
    // tfjs takes null for "the backend's epsilon".
    super(learningRate, beta1, beta2, epsilon ?? (null as unknown as number));
  }

  /** Whether the next applyGradients runs the fused kernel (the active backend registers one). */
  static fusedAvailable(): boolean {
    return tf.getKernel(ADAM_UPDATE, tf.getBackend()) !== undefined;
  }

  override applyGradients(variableGradients: VariableGradients): void {
    const named = Array.isArray(variableGradients);
    const names = named ? variableGradients.map((v) => v.name) : Object.keys(variableGradients);
    const gradientOf = (name: string, i: number): tf.Tensor | undefined =>
      (named ? variableGradients[i]?.tensor : variableGradients[name]) ?? undefined;
    const registered = tf.engine().registeredVariables;
    const fusable =
      FusedAdamOptimizer.fusedAvailable() &&
      names.every((name, i) => {
        const value = registered[name];
        const g = gradientOf(name, i);
        return (
          value !== undefined &&
          value.dtype === 'float32' &&
          (g === undefined || (g.dtype === 'float32' && g.size === value.size))
        );
      });
    if (!fusable) {
      super.applyGradients(variableGradients);
      return;
    }
    const s = adamState(this);
    tf.tidy(() => {
      // tfjs's bias corrections, sub(1, accBeta) in float32 (accBeta's array is on the CPU here).
      const correction = (acc: tf.Variable): number => Math.fround(1 - acc.dataSync()[0]!);
      const attrs = {
        beta1: s.beta1,
        beta2: s.beta2,
        epsilon: s.epsilon,
        learningRate: s.learningRate,
        biasCorrection1: correction(s.accBeta1),
        biasCorrection2: correction(s.accBeta2),
      };
      names.forEach((name, i) => {
        const value = registered[name]!;
        // Created lazily, in tfjs's order and form (non-trainable zeros), so that the state matches.
        s.accumulatedFirstMoment[i] ??= {
          originalName: `${name}/m`,
          variable: tf.tidy(() => tf.zerosLike(value).variable(false)),
        };
        s.accumulatedSecondMoment[i] ??= {
          originalName: `${name}/v`,
          variable: tf.tidy(() => tf.zerosLike(value).variable(false)),
        };
        const gradient = gradientOf(name, i);
        if (gradient === undefined) return;
        const m = s.accumulatedFirstMoment[i]!.variable;
        const v = s.accumulatedSecondMoment[i]!.variable;
        const [newValue, newM, newV] = tf
          .engine()
          .runKernel(ADAM_UPDATE, { value, m, v, gradient }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
        m.assign(newM!);
        v.assign(newV!);
        value.assign(newValue!);
      });
      s.accBeta1.assign(tf.mul(s.accBeta1, s.beta1));
      s.accBeta2.assign(tf.mul(s.accBeta2, s.beta2));
    });
    this.incrementIterations();
  }
}
