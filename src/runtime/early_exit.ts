import { checkThresholds, exitsHere, rowEntropy } from './entropy.js';
import type { StageRunner } from './runner.js';

/** Per sample, in input order: the predicted class, the exit that answered and its entropy. */
export interface ExitResults {
  predictions: Int32Array;
  exits: Uint8Array;
  entropies: Float32Array;
}

/**
 * Early exit for one chunk of samples, with compaction: after each exit the rows that leave are
 * taken out and the rest continue as a smaller batch. No exit is computed for a row that already
 * left, and the trunk is never recomputed. `owner[i]` is the sample index of row i.
 */
function runChunk<A>(runner: StageRunner<A>, chunk: Float32Array, first: number, rows: number, thresholds: readonly number[], out: ExitResults): void {
  const exits = runner.exits;
  let activation = runner.input(chunk, rows);
  let owner = new Int32Array(rows);
  for (let i = 0; i < rows; i++) owner[i] = first + i;
  for (let k = 0; k < exits; k++) {
    const { next, logits } = runner.runStage(k, activation);
    runner.dispose(activation);
    const stay: number[] = [];
    for (let i = 0; i < owner.length; i++) {
      const { entropy, argmax } = rowEntropy(logits, i, runner.classes);
      if (exitsHere(entropy, k, thresholds, exits)) {
        const sample = owner[i];
        out.predictions[sample] = argmax;
        out.exits[sample] = k;
        out.entropies[sample] = entropy;
      } else {
        stay.push(i);
      }
    }
    if (next === null) return;
    if (stay.length === 0) {
      runner.dispose(next);
      return;
    }
    if (stay.length === owner.length) {
      activation = next;
      continue;
    }
    const keep = Int32Array.from(stay);
    activation = runner.selectRows(next, keep);
    runner.dispose(next);
    owner = keep.map((i) => owner[i]);
  }
}

/**
 * Classifies `count` images (NHWC float32, packed) by early exit, `batchSize` at a time (1 = the
 * paper's batch-1 runtime). Results come back in input order.
 */
export function earlyExit<A>(runner: StageRunner<A>, images: Float32Array, count: number, thresholds: readonly number[], batchSize = 1): ExitResults {
  checkThresholds(thresholds, runner.exits);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`early exit: batch size must be an integer >= 1, got ${batchSize}`);
  if (count < 0 || images.length % Math.max(count, 1) !== 0 || (count === 0 && images.length !== 0)) {
    throw new RangeError(`early exit: ${images.length} values do not divide into ${count} images`);
  }
  const size = count === 0 ? 0 : images.length / count;
  const out: ExitResults = { predictions: new Int32Array(count), exits: new Uint8Array(count), entropies: new Float32Array(count) };
  for (let first = 0; first < count; first += batchSize) {
    const rows = Math.min(batchSize, count - first);
    runChunk(runner, images.subarray(first * size, (first + rows) * size), first, rows, thresholds, out);
  }
  return out;
}

/** The reference path: every exit computed for every sample (e.g. by the full forward pass), then the exit rule. */
export function applyExitRule(exitLogits: ArrayLike<number>[], count: number, classes: number, thresholds: readonly number[]): ExitResults {
  const exits = exitLogits.length;
  checkThresholds(thresholds, exits);
  const out: ExitResults = { predictions: new Int32Array(count), exits: new Uint8Array(count), entropies: new Float32Array(count) };
  for (let i = 0; i < count; i++) {
    for (let k = 0; k < exits; k++) {
      const { entropy, argmax } = rowEntropy(exitLogits[k], i, classes);
      if (exitsHere(entropy, k, thresholds, exits)) {
        out.predictions[i] = argmax;
        out.exits[i] = k;
        out.entropies[i] = entropy;
        break;
      }
    }
  }
  return out;
}
