/**
 * Full passes of stage graphs over a data set on ONNX Runtime, every sample through every stage
 * (no early exit): what calibration and the layer-by-layer measurements need, with any extra
 * tensors of a stage fetched and handed to an observer.
 */
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { UserError } from '../errors.js';
import type { ModelProto } from '../onnx/graph.js';
import { encodeModel } from '../onnx/graph.js';
import { loadOnnxRuntime } from '../node/onnx.js';

type Ort = typeof import('onnxruntime-node');

export async function requireOrt(): Promise<Ort> {
  const loaded = await loadOnnxRuntime();
  if ('error' in loaded)
    throw new UserError(`quantisation runs on ONNX Runtime, and onnxruntime-node did not load: ${loaded.error}`);
  return loaded.ort;
}

/** One stage graph and the names of its input and outputs. */
export interface ChainStage {
  model: ModelProto;
  input: string;
  /** The activation handed on (null at the last stage). */
  next: string | null;
  logits: string;
  /** Extra float tensors to fetch and pass to the observer. */
  observe?: readonly string[];
}

export type Observer = (stage: number, tensor: string, data: Float32Array, rows: number) => void;

const BATCH = 64;

/**
 * Runs `stages` (stage k reading stage k-1's activation) on `count` rows of `input` (the first
 * stage's input, `rowShape` per row). Returns each stage's logits (count x classes) and, when
 * asked, the last stage's handed-on activation (for chaining stage by stage).
 */
export async function runChain(
  stages: readonly ChainStage[],
  input: Float32Array,
  count: number,
  rowShape: readonly number[],
  options: { threads?: number; observer?: Observer; keepNext?: boolean } = {},
): Promise<{ logits: Float32Array[]; next: Float32Array | null; nextShape: number[] | null }> {
  const ort = await requireOrt();
  const sessionOptions: InferenceSession.SessionOptions = {
    intraOpNumThreads: options.threads ?? 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  };
  const sessions: InferenceSession[] = [];
  try {
    for (const s of stages) {
      // The observer's float copies of the fused tensors need no optimisation-proof names: the
      // observed graphs are the float ones, where every fetched tensor survives as it is.
      sessions.push(await ort.InferenceSession.create(encodeModel(s.model), sessionOptions));
    }
    const rowSize = rowShape.reduce((a, b) => a * b, 1);
    const logits: Float32Array[] = [];
    let next: Float32Array | null = null;
    let nextShape: number[] | null = null;
    for (let first = 0; first < count; first += BATCH) {
      const n = Math.min(BATCH, count - first);
      let x: Tensor = new ort.Tensor('float32', input.subarray(first * rowSize, (first + n) * rowSize), [
        n,
        ...rowShape,
      ]);
      for (const [k, s] of stages.entries()) {
        const fetches = [...(s.next ? [s.next] : []), s.logits, ...(s.observe ?? []).filter((t) => t !== s.input)];
        const out = await sessions[k].run({ [s.input]: x }, [...new Set(fetches)]);
        const l = out[s.logits].data as Float32Array;
        const classes = l.length / n;
        logits[k] ??= new Float32Array(count * classes);
        logits[k].set(l, first * classes);
        for (const t of s.observe ?? []) options.observer?.(k, t, (t === s.input ? x : out[t]).data as Float32Array, n);
        if (s.next) x = out[s.next];
        if (options.keepNext && k === stages.length - 1 && s.next) {
          const a = out[s.next];
          const size = a.data.length / n;
          nextShape ??= a.dims.slice(1).map(Number);
          next ??= new Float32Array(count * size);
          next.set(a.data as Float32Array, first * size);
        }
      }
    }
    return { logits, next, nextShape };
  } finally {
    await Promise.all(sessions.map((s) => s.release()));
  }
}
