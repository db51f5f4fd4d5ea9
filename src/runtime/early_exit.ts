import { UserError } from '../errors.js';
import { argmaxRow, checkThresholds, exitsHere, rowEntropy } from './exit_rule.js';
import type { StageOutput, StageRunner } from './runner.js';

/** Per sample, in input order: the predicted class, the exit that answered and its entropy. */
export interface ExitResults {
  predictions: Int32Array;
  /** The exit that answered each sample, 1-based (1 = the first exit; the last exit is the trunk's own). */
  exitTaken: Uint8Array;
  entropies: Float32Array;
  /** The answering exit's logits, samples x classes (only when asked for: `EarlyExitOptions.logits`). */
  logits?: Float32Array;
}

export interface EarlyExitOptions {
  /** Keep each sample's logits from the exit that answered it (`ExitResults.logits`). */
  logits?: boolean;
}

/** Rows of one stage's input: the activation and, for each row, the sample it belongs to. */
interface Rows<A> {
  activation: A;
  owner: Int32Array;
}

/**
 * The batched early-exit schedule. Images enter stage 1 `batchSize` at a time; after each stage
 * the rows whose entropy is below the stage's threshold answer, and the rest queue for the next
 * stage. A stage runs once `batchSize` rows are queued for it (deepest stage first, so that
 * little waits), or, once every image has entered, on what is left. So no exit is computed for
 * a row that already left, the trunk is never recomputed, and a later stage runs on full
 * batches instead of on the few rows each input batch hands on. At batch size 1 this is the
 * paper's per-sample loop.
 */
class Schedule<A> {
  readonly out: ExitResults;
  private nextImage = 0;
  private readonly queues: Rows<A>[][];
  private readonly queued: number[];

  constructor(
    private readonly runner: StageRunner<A>,
    private readonly images: Float32Array,
    private readonly count: number,
    private readonly size: number,
    private readonly thresholds: readonly number[],
    private readonly batchSize: number,
    keepLogits: boolean,
  ) {
    this.out = {
      predictions: new Int32Array(count),
      exitTaken: new Uint8Array(count),
      entropies: new Float32Array(count),
    };
    if (keepLogits) this.out.logits = new Float32Array(count * runner.classes);
    this.queues = Array.from({ length: runner.exits }, () => []);
    this.queued = new Array(runner.exits).fill(0);
  }

  /** The next stage run, or null when every sample has answered. */
  next(): { stage: number; rows: Rows<A> } | null {
    for (let k = this.runner.exits - 1; k > 0; k--)
      if (this.queued[k] >= this.batchSize) return { stage: k, rows: this.take(k) };
    if (this.nextImage < this.count) {
      const first = this.nextImage;
      const n = Math.min(this.batchSize, this.count - first);
      this.nextImage += n;
      const owner = new Int32Array(n);
      for (let i = 0; i < n; i++) owner[i] = first + i;
      return {
        stage: 0,
        rows: {
          activation: this.runner.input(this.images.subarray(first * this.size, (first + n) * this.size), n),
          owner,
        },
      };
    }
    for (let k = 1; k < this.runner.exits; k++) if (this.queued[k] > 0) return { stage: k, rows: this.take(k) };
    return null;
  }

  /** Up to `batchSize` queued rows of stage k, as one activation. */
  private take(k: number): Rows<A> {
    const queue = this.queues[k];
    const parts: Rows<A>[] = [];
    let rows = 0;
    while (rows < this.batchSize && queue.length > 0) {
      const part = queue[0];
      const room = this.batchSize - rows;
      if (part.owner.length <= room) {
        parts.push(queue.shift()!);
        rows += part.owner.length;
      } else {
        parts.push(this.split(part, room));
        rows += room;
      }
    }
    this.queued[k] -= rows;
    if (parts.length === 1) return parts[0];
    const activation = this.runner.concatRows(parts.map((p) => p.activation));
    const owner = new Int32Array(rows);
    let at = 0;
    for (const p of parts) {
      owner.set(p.owner, at);
      at += p.owner.length;
      this.runner.dispose(p.activation);
    }
    return { activation, owner };
  }

  /** Cuts the first `n` rows off `part` (which keeps the rest) and returns them. */
  private split(part: Rows<A>, n: number): Rows<A> {
    const all = part.owner.length;
    const head = this.runner.selectRows(
      part.activation,
      Int32Array.from({ length: n }, (_, i) => i),
    );
    const tail = this.runner.selectRows(
      part.activation,
      Int32Array.from({ length: all - n }, (_, i) => n + i),
    );
    this.runner.dispose(part.activation);
    const owner = part.owner;
    part.activation = tail;
    part.owner = owner.subarray(n);
    return { activation: head, owner: owner.subarray(0, n) };
  }

  /** The exit rule after stage k on `rows`; the rows that stay queue for stage k + 1. */
  complete(k: number, rows: Rows<A>, output: StageOutput<A>): void {
    const { runner, thresholds, out } = this;
    const { next, logits, entropies } = output;
    const classes = runner.classes;
    const owner = rows.owner;
    runner.dispose(rows.activation);
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
      if (exitsHere(entropy, k, thresholds, runner.exits)) {
        const sample = owner[i];
        out.predictions[sample] = argmax;
        out.exitTaken[sample] = k + 1;
        out.entropies[sample] = entropy;
        if (out.logits) for (let c = 0; c < classes; c++) out.logits[sample * classes + c] = logits[i * classes + c];
      } else {
        stay[stays++] = i;
      }
    }
    if (next === null) return;
    if (stays === 0) {
      runner.dispose(next);
      return;
    }
    let handed: Rows<A> = { activation: next, owner };
    if (stays < owner.length) {
      const keep = stay.subarray(0, stays);
      handed = { activation: runner.selectRows(next, keep), owner: keep.map((i) => owner[i]) };
      runner.dispose(next);
    }
    this.queues[k + 1].push(handed);
    this.queued[k + 1] += stays;
  }

  /** Frees what is still queued (after an error). */
  abandon(): void {
    for (const queue of this.queues) for (const part of queue.splice(0)) this.runner.dispose(part.activation);
  }
}

function isPromise<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown }).then === 'function';
}

function schedule<A>(
  runner: StageRunner<A>,
  images: Float32Array,
  count: number,
  thresholds: readonly number[],
  batchSize: number,
  options: EarlyExitOptions,
): Schedule<A> {
  checkThresholds(thresholds, runner.exits);
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new UserError(`must be an integer >= 1, got ${batchSize}`, { option: 'batchSize' });
  if (count < 0 || images.length % Math.max(count, 1) !== 0 || (count === 0 && images.length !== 0)) {
    throw new RangeError(`early exit: ${images.length} values do not divide into ${count} images`);
  }
  const size = count === 0 ? 0 : images.length / count;
  return new Schedule(runner, images, count, size, thresholds, batchSize, options.logits === true);
}

/**
 * Classifies `count` images (NHWC float32, packed) by early exit, stages running on up to
 * `batchSize` rows at a time (1 = the paper's batch-1 runtime; see `Schedule` for the batched
 * one). Results come back in input order. For synchronous runners (tfjs); `earlyExitAsync` takes
 * any runner.
 */
export function earlyExit<A>(
  runner: StageRunner<A>,
  images: Float32Array,
  count: number,
  thresholds: readonly number[],
  batchSize = 1,
  options: EarlyExitOptions = {},
): ExitResults {
  const plan = schedule(runner, images, count, thresholds, batchSize, options);
  try {
    for (let job = plan.next(); job !== null; job = plan.next()) {
      const output = runner.runStage(job.stage, job.rows.activation);
      if (isPromise(output)) {
        // Free what the run holds once it settles (it may still be reading the activation).
        const { activation } = job.rows;
        const release = () => runner.dispose(activation);
        output.then((o) => (release(), o.next !== null && runner.dispose(o.next)), release);
        throw new TypeError('early exit: this runner is asynchronous (runStage returns a Promise); use earlyExitAsync');
      }
      plan.complete(job.stage, job.rows, output);
    }
  } finally {
    plan.abandon();
  }
  return plan.out;
}

/** `earlyExit` for any runner, synchronous or not (e.g. ONNX Runtime, whose runs are asynchronous). Same results. */
export async function earlyExitAsync<A>(
  runner: StageRunner<A>,
  images: Float32Array,
  count: number,
  thresholds: readonly number[],
  batchSize = 1,
  options: EarlyExitOptions = {},
): Promise<ExitResults> {
  const plan = schedule(runner, images, count, thresholds, batchSize, options);
  try {
    for (let job = plan.next(); job !== null; job = plan.next()) {
      const pending = runner.runStage(job.stage, job.rows.activation);
      // Await only what is a promise: a synchronous runner pays no microtask per stage.
      plan.complete(job.stage, job.rows, isPromise(pending) ? await pending : pending);
    }
  } finally {
    plan.abandon();
  }
  return plan.out;
}

/** The reference path: every exit computed for every sample (e.g. by the full forward pass), then the exit rule. */
export function applyExitRule(
  exitLogits: ArrayLike<number>[],
  count: number,
  classes: number,
  thresholds: readonly number[],
): ExitResults {
  const exits = exitLogits.length;
  checkThresholds(thresholds, exits);
  const out: ExitResults = {
    predictions: new Int32Array(count),
    exitTaken: new Uint8Array(count),
    entropies: new Float32Array(count),
  };
  for (let i = 0; i < count; i++) {
    for (let k = 0; k < exits; k++) {
      const { entropy, argmax } = rowEntropy(exitLogits[k], i, classes);
      if (exitsHere(entropy, k, thresholds, exits)) {
        out.predictions[i] = argmax;
        out.exitTaken[i] = k + 1;
        out.entropies[i] = entropy;
        break;
      }
    }
  }
  return out;
}
