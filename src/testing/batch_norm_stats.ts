import * as tf from '@tensorflow/tfjs-core';
import type { BranchyNet } from '../model/network.js';
import { Rng } from '../rng.js';

const RANGES: Record<string, [number, number]> = {
  gamma: [0.6, 1.4],
  beta: [-0.3, 0.3],
  mean: [-0.3, 0.3],
  variance: [0.5, 2],
};

/**
 * Gives every batch norm of `net` (its own layers and those inside residual blocks) seeded random
 * scale, shift and running statistics, so that inference does not run with the identity statistics
 * a fresh network starts with (mean 0, variance 1, gamma 1, beta 0). Returns how many were set.
 */
export function randomizeBatchNorm(net: BranchyNet, seed: number): number {
  const rng = new Rng(seed);
  let set = 0;
  for (const { name } of net.paramList) {
    const short = /\.(gamma|beta|mean|variance)$/.exec(name)?.[1];
    if (!short) continue;
    const v = net.params.get(name)!;
    const [lo, hi] = RANGES[short];
    const values = Float32Array.from({ length: v.size }, () => lo + (hi - lo) * rng.next());
    tf.tidy(() => v.assign(tf.tensor(values, v.shape)));
    set++;
  }
  return set;
}
