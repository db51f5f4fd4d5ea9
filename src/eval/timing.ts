/**
 * Timing side by side, for `eval` and the benchmarks: contenders (early-exit or baseline runners)
 * take turns on the same samples, chunk by chunk.
 */
import type { Dataset } from '../data/dataset.js';
import { imageSize } from '../data/dataset.js';
import type { ExitResults } from '../runtime/early_exit.js';
import { earlyExit, earlyExitAsync } from '../runtime/early_exit.js';
import type { StageRunner } from '../runtime/runner.js';

export interface Contender {
  name: string;
  runner: StageRunner<unknown>;
  thresholds: readonly number[];
  /** A synchronous (tfjs) runner, run by the synchronous loop: no promise per stage. */
  sync: boolean;
}

/** A contender that classifies a run of images itself (e.g. one ONNX graph holding the whole early exit). */
export interface WholeContender {
  name: string;
  classify(images: Float32Array, count: number, batchSize: number): ExitResults | Promise<ExitResults>;
}

/** One early-exit pass; the tfjs runners take the synchronous loop, ONNX Runtime's the asynchronous one. */
export async function pass(
  c: Contender | WholeContender,
  images: Float32Array,
  count: number,
  batchSize: number,
): Promise<ExitResults> {
  if ('classify' in c) return c.classify(images, count, batchSize);
  return c.sync
    ? earlyExit(c.runner, images, count, c.thresholds, batchSize)
    : earlyExitAsync(c.runner, images, count, c.thresholds, batchSize);
}

/**
 * Times every contender on the same samples, chunk by chunk, changing the order each round (ABBA
 * for two) so that drift in machine load hits all alike; `passes` times over. A chunk's time is its best
 * pass, which filters out bursts of load from other processes (on shared cores the same chunk's
 * time swings by 15 % or more from pass to pass) while keeping each contender's
 * exact mix of exits. Returns seconds (summed over chunks) and results per contender.
 */
export async function interleaved(
  contenders: (Contender | WholeContender)[],
  data: Dataset,
  count: number,
  batchSize: number,
  chunk: number,
  passes: number,
  /** Called after each chunk with the samples done so far. */
  onChunk?: (done: number, count: number) => void,
): Promise<{ seconds: number[]; results: ExitResults[] }> {
  if (!Number.isInteger(passes) || passes < 1)
    throw new RangeError(`timing: passes must be an integer >= 1, got ${passes}`);
  const size = imageSize(data);
  const seconds = contenders.map(() => 0);
  const results = contenders.map((): ExitResults => ({
    predictions: new Int32Array(count),
    exitTaken: new Uint8Array(count),
    entropies: new Float32Array(count),
  }));
  let round = 0;
  for (let first = 0; first < count; first += chunk) {
    const n = Math.min(chunk, count - first);
    const images = data.images.subarray(first * size, (first + n) * size);
    const best = contenders.map(() => Infinity);
    for (let p = 0; p < passes; p++, round++) {
      for (let j = 0; j < contenders.length; j++) {
        // Rotated every other round and reversed on odd rounds: A B | B A | B A | A B for two.
        const many = contenders.length;
        const shift = Math.floor(round / 2);
        const i = round % 2 === 0 ? (j + shift) % many : (many - 1 - j + shift) % many;
        const start = performance.now();
        const r = await pass(contenders[i], images, n, batchSize);
        best[i] = Math.min(best[i], (performance.now() - start) / 1000);
        results[i].predictions.set(r.predictions, first);
        results[i].exitTaken.set(r.exitTaken, first);
        results[i].entropies.set(r.entropies, first);
      }
    }
    best.forEach((t, i) => (seconds[i] += t));
    onChunk?.(first + n, count);
  }
  return { seconds, results };
}
