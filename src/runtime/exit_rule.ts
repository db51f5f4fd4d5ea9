import { UserError } from '../errors.js';

/**
 * Softmax entropy (natural log) and arg-max of one row of logits, computed in plain JS: for a
 * handful of classes this costs far less than even one more tensor op.
 * H = log S - sum_i p_i z_i with z = logits - max and S = sum_i exp(z_i), p_i = exp(z_i) / S.
 */
export function rowEntropy(
  logits: ArrayLike<number>,
  row: number,
  classes: number,
): { entropy: number; argmax: number } {
  const base = row * classes;
  let max = -Infinity;
  let argmax = 0;
  for (let c = 0; c < classes; c++) {
    const v = logits[base + c];
    if (v > max) {
      max = v;
      argmax = c;
    }
  }
  let sum = 0;
  let weighted = 0;
  for (let c = 0; c < classes; c++) {
    const z = logits[base + c] - max;
    const e = Math.exp(z);
    sum += e;
    weighted += e * z;
  }
  return { entropy: Math.max(0, Math.log(sum) - weighted / sum), argmax };
}

/** The softmax of one row of logits (max-shifted, so large logits do not overflow). */
export function softmaxRow(logits: ArrayLike<number>, row: number, classes: number): Float32Array {
  const out = new Float32Array(classes);
  const base = row * classes;
  let max = -Infinity;
  for (let c = 0; c < classes; c++) max = Math.max(max, logits[base + c]);
  let sum = 0;
  for (let c = 0; c < classes; c++) sum += out[c] = Math.exp(logits[base + c] - max);
  for (let c = 0; c < classes; c++) out[c] /= sum;
  return out;
}

/** The index of the largest of one row's logits (the first, on ties). */
export function argmaxRow(logits: ArrayLike<number>, row: number, classes: number): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let c = 0; c < classes; c++) {
    const v = logits[row * classes + c];
    if (v > bestValue) {
      bestValue = v;
      best = c;
    }
  }
  return best;
}

/** The exit rule: leave at exit k when its entropy is below T_k; the last exit always answers. */
export function exitsHere(entropy: number, exit: number, thresholds: readonly number[], exits: number): boolean {
  return exit === exits - 1 || entropy < thresholds[exit];
}

export function checkThresholds(thresholds: readonly number[], exits: number): void {
  if (thresholds.length !== exits - 1) {
    throw new UserError(
      `a network with ${exits} exits needs ${exits - 1} thresholds (one per early exit), got ${thresholds.length}`,
      { option: 'thresholds' },
    );
  }
  for (const t of thresholds)
    if (!(t >= 0)) throw new UserError(`each threshold must be a number >= 0, got ${t}`, { option: 'thresholds' });
}
