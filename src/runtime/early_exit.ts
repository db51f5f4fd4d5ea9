import { checkThresholds, exitsHere, rowEntropy } from './entropy.js';
import { argmaxRow } from './full_forward.js';
import type { StageOutput, StageRunner } from './runner.js';

/** Per sample, in input order: the predicted class, the exit that answered and its entropy. */
export interface ExitResults {
  predictions: Int32Array;
  exits: Uint8Array;
  entropies: Float32Array;
}

/** Where one chunk of samples stands between stages. `owner[i]` is the sample index of row i. */
interface Chunk<A> {
  /** The activation the next stage runs on; null once every row has answered. */
  activation: A | null;
  owner: Int32Array;
  /** The next stage to run. */
  stage: number;
}

function startChunk<A>(runner: StageRunner<A>, images: Float32Array, first: number, rows: number): Chunk<A> {
  const owner = new Int32Array(rows);
  for (let i = 0; i < rows; i++) owner[i] = first + i;
  return { activation: runner.input(images, rows), owner, stage: 0 };
}

/**
 * The exit rule and compaction after one stage, shared by the synchronous and asynchronous loops:
 * the rows whose entropy is below the stage's threshold answer; the rest continue as a smaller
 * batch. No exit is computed for a row that already left, and the trunk is never recomputed.
 */
function afterStage<A>(runner: StageRunner<A>, chunk: Chunk<A>, output: StageOutput<A>, thresholds: readonly number[], out: ExitResults): void {
  const k = chunk.stage;
  const { next, logits, entropies } = output;
  const exits = runner.exits;
  const classes = runner.classes;
  const owner = chunk.owner;
  runner.dispose(chunk.activation!);
  chunk.activation = null;
  const stay = new Int32Array(owner.length);
  let stays = 0;
  for (let i = 0; i < owner.length; i++) {
    let entropy: number;
    let argmax: number;
    if (entropies) {
      // Engines that compute the entropy in float32 may land a hair below zero on a sure row.
      entropy = Math.max(0, entropies[i]);
      argmax = argmaxRow(logits, i, classes);
    } else {
      ({ entropy, argmax } = rowEntropy(logits, i, classes));
    }
    if (exitsHere(entropy, k, thresholds, exits)) {
      const sample = owner[i];
      out.predictions[sample] = argmax;
      out.exits[sample] = k;
      out.entropies[sample] = entropy;
    } else {
      stay[stays++] = i;
    }
  }
  chunk.stage = k + 1;
  if (next === null) return;
  if (stays === 0) {
    runner.dispose(next);
    return;
  }
  if (stays === owner.length) {
    chunk.activation = next;
    return;
  }
  const keep = stay.subarray(0, stays);
  chunk.activation = runner.selectRows(next, keep);
  runner.dispose(next);
  chunk.owner = keep.map((i) => owner[i]);
}

function isPromise<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown }).then === 'function';
}

/** Runs one chunk through the stages with a synchronous runner. */
function runChunk<A>(runner: StageRunner<A>, images: Float32Array, first: number, rows: number, thresholds: readonly number[], out: ExitResults): void {
  const chunk = startChunk(runner, images, first, rows);
  while (chunk.activation !== null) {
    const output = runner.runStage(chunk.stage, chunk.activation);
    if (isPromise(output)) {
      // Free what the run holds once it settles (it may still be reading the activation).
      const activation = chunk.activation;
      const release = () => runner.dispose(activation);
      output.then((o) => (release(), o.next !== null && runner.dispose(o.next)), release);
      throw new TypeError('early exit: this runner is asynchronous (runStage returns a Promise); use earlyExitAsync');
    }
    afterStage(runner, chunk, output, thresholds, out);
  }
}

function prepare(runner: StageRunner<unknown>, images: Float32Array, count: number, thresholds: readonly number[], batchSize: number): { size: number; out: ExitResults } {
  checkThresholds(thresholds, runner.exits);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`early exit: batch size must be an integer >= 1, got ${batchSize}`);
  if (count < 0 || images.length % Math.max(count, 1) !== 0 || (count === 0 && images.length !== 0)) {
    throw new RangeError(`early exit: ${images.length} values do not divide into ${count} images`);
  }
  const size = count === 0 ? 0 : images.length / count;
  return { size, out: { predictions: new Int32Array(count), exits: new Uint8Array(count), entropies: new Float32Array(count) } };
}

/**
 * Classifies `count` images (NHWC float32, packed) by early exit, `batchSize` at a time (1 = the
 * paper's batch-1 runtime). Results come back in input order. For synchronous runners (tfjs);
 * `earlyExitAsync` takes any runner.
 */
export function earlyExit<A>(runner: StageRunner<A>, images: Float32Array, count: number, thresholds: readonly number[], batchSize = 1): ExitResults {
  const { size, out } = prepare(runner as StageRunner<unknown>, images, count, thresholds, batchSize);
  for (let first = 0; first < count; first += batchSize) {
    const rows = Math.min(batchSize, count - first);
    runChunk(runner, images.subarray(first * size, (first + rows) * size), first, rows, thresholds, out);
  }
  return out;
}

/** `earlyExit` for any runner, synchronous or not (e.g. ONNX Runtime, whose runs are asynchronous). Same results. */
export async function earlyExitAsync<A>(runner: StageRunner<A>, images: Float32Array, count: number, thresholds: readonly number[], batchSize = 1): Promise<ExitResults> {
  const { size, out } = prepare(runner as StageRunner<unknown>, images, count, thresholds, batchSize);
  for (let first = 0; first < count; first += batchSize) {
    const rows = Math.min(batchSize, count - first);
    const chunk = startChunk(runner, images.subarray(first * size, (first + rows) * size), first, rows);
    while (chunk.activation !== null) {
      const pending = runner.runStage(chunk.stage, chunk.activation);
      // Await only what is a promise: a synchronous runner pays no microtask per stage.
      afterStage(runner, chunk, isPromise(pending) ? await pending : pending, thresholds, out);
    }
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
