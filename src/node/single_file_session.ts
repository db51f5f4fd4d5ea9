import type { Tensor } from 'onnxruntime-node';
import { openDirectSession } from '../compat.js';
import { SINGLE_NAMES } from '../onnx/single_file.js';
import type { ExitResults } from '../runtime/early_exit.js';
import { argmaxRow } from '../runtime/exit_rule.js';
import type { OrtSession } from '../runtime/ort_session.js';
import { loadOnnxRuntime } from './onnx.js';

type Ort = typeof import('onnxruntime-node');

export interface SingleFileSessionOptions {
  /** Threads ONNX Runtime may use inside one operator (default 1: the batch-1 latency setting). */
  intraOpNumThreads?: number;
  /** Run on onnxruntime-node's native session directly (default true; see `openDirectSession` in compat.ts), or through its public API. */
  direct?: boolean;
}

/**
 * One single-file early-exit model (`exportSingleFile`) loaded in onnxruntime-node: a session run
 * per call classifies a batch, the whole early exit inside the graph.
 */
export class SingleFileSession {
  private constructor(
    private readonly ort: Ort,
    private readonly session: OrtSession,
    readonly shape: [number, number, number],
    readonly classes: number,
  ) {}

  static async create(
    model: Uint8Array,
    shape: [number, number, number],
    classes: number,
    options: SingleFileSessionOptions = {},
  ): Promise<SingleFileSession> {
    const loaded = await loadOnnxRuntime();
    if ('error' in loaded) throw new Error(`onnxruntime-node did not load: ${loaded.error}`);
    const session = await openDirectSession(
      loaded.ort,
      model,
      // Severity 3 (errors only): ONNX Runtime warns on every load that the thresholds input has a default (an initializer).
      {
        intraOpNumThreads: options.intraOpNumThreads ?? 1,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
        logSeverityLevel: 3,
      },
      [SINGLE_NAMES.logits, SINGLE_NAMES.exit, SINGLE_NAMES.entropy],
      options.direct ?? true,
    );
    return new SingleFileSession(loaded.ort, session, shape, classes);
  }

  get direct(): boolean {
    return this.session.direct;
  }

  /** One session run on `count` images (pixel values 0-255, NHWC): the graph's three outputs. */
  run(images: Float32Array, count: number): Record<string, Tensor> | Promise<Record<string, Tensor>> {
    return this.session.run({ [SINGLE_NAMES.image]: new this.ort.Tensor('float32', images, [count, ...this.shape]) });
  }

  /**
   * Classifies `count` images, `runRows` per session run, into `ExitResults` (exits 1-based, as
   * the early-exit loop reports them).
   */
  async classify(images: Float32Array, count: number, runRows: number): Promise<ExitResults> {
    const out: ExitResults = {
      predictions: new Int32Array(count),
      exitTaken: new Uint8Array(count),
      entropies: new Float32Array(count),
    };
    const size = this.shape[0] * this.shape[1] * this.shape[2];
    for (let first = 0; first < count; first += runRows) {
      const n = Math.min(runRows, count - first);
      const pending = this.run(images.subarray(first * size, (first + n) * size), n);
      const r = 'then' in pending ? await pending : pending;
      const logits = r[SINGLE_NAMES.logits].data as Float32Array;
      const exits = r[SINGLE_NAMES.exit].data as BigInt64Array;
      out.entropies.set(r[SINGLE_NAMES.entropy].data as Float32Array, first);
      for (let i = 0; i < n; i++) {
        out.predictions[first + i] = argmaxRow(logits, i, this.classes);
        out.exitTaken[first + i] = Number(exits[i]);
      }
    }
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** Pixel values 0-255 from images scaled to [0, 1] (as the data loaders give them). */
export function toPixels(images: Float32Array): Float32Array {
  return Float32Array.from(images, (v) => Math.round(v * 255));
}
