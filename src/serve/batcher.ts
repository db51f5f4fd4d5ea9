/**
 * Dynamic batching: requests queue, and one batch at a time runs the rows of as many queued
 * requests as fit in `maxBatch` through batched early exit, so that concurrent requests of a few
 * images each share full stage batches. Each request is answered with its own rows, in order.
 */
import type { ExitResults } from '../runtime/early_exit.js';
import type { RowAnswers } from './protocol.js';

/** Runs early exit on `count` preprocessed images packed in `images`, with logits kept. */
export type BatchRun = (images: Float32Array, count: number, thresholds: readonly number[]) => Promise<ExitResults>;

export interface BatcherOptions {
  /** Rows a batch takes at most (a larger request runs alone). */
  maxBatch: number;
  /** How long the first queued request waits for others before its batch runs, in ms. */
  maxDelayMs: number;
  /** Requests that may wait; one more is refused (QueueFullError). */
  maxQueue: number;
  /** How long a request may take from queueing to its answer, in ms (0: no limit). */
  timeoutMs: number;
  /** Floats per image. */
  imageSize: number;
  classes: number;
  /** Told each batch's rows and requests as it starts. */
  onBatch?: (rows: number, requests: number) => void;
}

/** The queue is full: the server is overloaded; the client should retry later. */
export class QueueFullError extends Error {
  override name = 'QueueFullError';
}

/** A request was not answered in time. */
export class RequestTimeoutError extends Error {
  override name = 'RequestTimeoutError';
}

interface Job {
  images: Float32Array;
  count: number;
  thresholds: readonly number[];
  /** Requests with equal keys (equal thresholds) share batches. */
  key: string;
  resolve: (answers: RowAnswers) => void;
  reject: (error: Error) => void;
  timer?: NodeJS.Timeout;
  settled: boolean;
}

export class Batcher {
  private readonly queue: Job[] = [];
  private running: Promise<void> | null = null;
  private delayTimer: NodeJS.Timeout | null = null;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly run: BatchRun,
    private readonly options: BatcherOptions,
  ) {}

  /** Requests waiting (not yet in a running batch). */
  get queued(): number {
    return this.queue.length;
  }

  /**
   * Queues `count` preprocessed images; resolves with their answers. Throws QueueFullError at
   * once when `maxQueue` requests already wait.
   */
  submit(images: Float32Array, count: number, thresholds: readonly number[]): Promise<RowAnswers> {
    if (this.queue.length >= this.options.maxQueue)
      throw new QueueFullError(`the queue is full (${this.options.maxQueue} requests waiting); retry later`);
    return new Promise<RowAnswers>((resolve, reject) => {
      const job: Job = { images, count, thresholds, key: thresholds.join(','), resolve, reject, settled: false };
      if (this.options.timeoutMs > 0) {
        job.timer = setTimeout(() => {
          const at = this.queue.indexOf(job);
          if (at >= 0) this.queue.splice(at, 1);
          this.settle(job, new RequestTimeoutError(`no answer within ${this.options.timeoutMs} ms; retry later`));
        }, this.options.timeoutMs);
      }
      this.queue.push(job);
      this.schedule();
    });
  }

  /** Resolves once no request waits and no batch runs. */
  idle(): Promise<void> {
    if (!this.running && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private queuedRows(): number {
    let rows = 0;
    for (const job of this.queue) rows += job.count;
    return rows;
  }

  private schedule(): void {
    if (this.running || this.queue.length === 0) return;
    if (this.queuedRows() >= this.options.maxBatch || this.options.maxDelayMs <= 0) {
      this.startBatch();
      return;
    }
    this.delayTimer ??= setTimeout(() => {
      this.delayTimer = null;
      if (!this.running) this.startBatch();
    }, this.options.maxDelayMs);
  }

  /** Takes the oldest request and those queued after it with the same thresholds, up to maxBatch rows. */
  private takeBatch(): Job[] {
    const key = this.queue[0].key;
    const batch: Job[] = [];
    let rows = 0;
    for (let i = 0; i < this.queue.length;) {
      const job = this.queue[i];
      if (job.key !== key) {
        i++;
        continue;
      }
      // First come, first served: a request that does not fit ends the batch rather than being overtaken.
      if (batch.length > 0 && rows + job.count > this.options.maxBatch) break;
      batch.push(job);
      rows += job.count;
      this.queue.splice(i, 1);
    }
    return batch;
  }

  private startBatch(): void {
    if (this.delayTimer) {
      clearTimeout(this.delayTimer);
      this.delayTimer = null;
    }
    if (this.queue.length === 0) return;
    const batch = this.takeBatch();
    this.running = this.runBatch(batch).finally(() => {
      this.running = null;
      // Requests that queued while this batch ran have waited already: they go next, at once.
      if (this.queue.length > 0) this.startBatch();
      else for (const wake of this.idleWaiters.splice(0)) wake();
    });
  }

  private async runBatch(batch: Job[]): Promise<void> {
    const { imageSize, classes } = this.options;
    let rows = 0;
    for (const job of batch) rows += job.count;
    this.options.onBatch?.(rows, batch.length);
    let images: Float32Array;
    if (batch.length === 1) images = batch[0].images;
    else {
      images = new Float32Array(rows * imageSize);
      let at = 0;
      for (const job of batch) {
        images.set(job.images, at * imageSize);
        at += job.count;
      }
    }
    let results: ExitResults;
    try {
      results = await this.run(images, rows, batch[0].thresholds);
    } catch (e) {
      const error = e instanceof Error ? e : new Error(String(e));
      for (const job of batch) this.settle(job, error);
      return;
    }
    let first = 0;
    for (const job of batch) {
      const end = first + job.count;
      this.settle(job, {
        predictions: results.predictions.slice(first, end),
        exitTaken: results.exitTaken.slice(first, end),
        entropies: results.entropies.slice(first, end),
        logits: results.logits!.slice(first * classes, end * classes),
      });
      first = end;
    }
  }

  private settle(job: Job, outcome: RowAnswers | Error): void {
    if (job.settled) return;
    job.settled = true;
    if (job.timer) clearTimeout(job.timer);
    if (outcome instanceof Error) job.reject(outcome);
    else job.resolve(outcome);
  }
}
