import { createRequire } from 'node:module';
import type { InferenceSession, Tensor } from 'onnxruntime-node';

type Ort = typeof import('onnxruntime-node');
type Outputs = Record<string, Tensor>;

/**
 * One loaded ONNX graph with its outputs to fetch fixed. `run` is synchronous on the direct
 * binding and returns a Promise on onnxruntime-node's public `InferenceSession`.
 */
export interface OrtSession {
  /** True when runs go straight to onnxruntime-node's native session (see `openSession`). */
  readonly direct: boolean;
  run(feeds: Record<string, Tensor>): Outputs | Promise<Outputs>;
  release(): Promise<void>;
}

/** The native session object onnxruntime-node wraps (its `dist/binding.d.ts`, `Binding.InferenceSession`). */
interface NativeSession {
  loadModel(buffer: ArrayBufferLike, byteOffset: number, byteLength: number, options: InferenceSession.SessionOptions): void;
  run(feeds: Record<string, Tensor>, fetches: Record<string, null>, options: InferenceSession.RunOptions): Outputs;
  dispose(): void;
}

interface NativeBinding {
  binding: { InferenceSession: new () => NativeSession };
  initOrt: () => void;
}

let nativeBinding: NativeBinding | { error: string } | undefined;

/**
 * onnxruntime-node's native binding, where this version has the shape this module was written
 * against (1.30); else why not. Its public `InferenceSession.run` makes the same synchronous native
 * call, but from a `setImmediate` callback and through a Promise, and wraps the outputs again:
 * about 8 us per run, a sixth of B-LeNet's stage 1 at batch 1 (docs/onnx.md).
 */
export function directBinding(): NativeBinding | { error: string } {
  if (nativeBinding) return nativeBinding;
  try {
    const loaded = createRequire(import.meta.url)('onnxruntime-node/dist/binding.js') as Partial<NativeBinding>;
    const proto = (loaded.binding?.InferenceSession as { prototype?: Partial<NativeSession> } | undefined)?.prototype;
    const ok = typeof loaded.initOrt === 'function' && ['loadModel', 'run', 'dispose'].every((m) => typeof proto?.[m as keyof NativeSession] === 'function');
    nativeBinding = ok ? (loaded as NativeBinding) : { error: 'onnxruntime-node/dist/binding.js does not have the expected InferenceSession' };
  } catch (e) {
    nativeBinding = { error: e instanceof Error ? e.message.split('\n')[0] : String(e) };
  }
  return nativeBinding;
}

/**
 * Loads `model` (ONNX bytes) with `options`, to fetch `fetches` on every run. `direct` (the
 * default) runs it on the native binding where `directBinding()` finds it, synchronously; else,
 * or with `direct: false`, through onnxruntime-node's public API.
 */
export async function openSession(
  ort: Ort,
  model: Uint8Array,
  options: InferenceSession.SessionOptions,
  fetches: readonly string[],
  direct = true,
): Promise<OrtSession> {
  const native = direct ? directBinding() : null;
  if (native && !('error' in native)) {
    native.initOrt();
    const session = new native.binding.InferenceSession();
    session.loadModel(model.buffer, model.byteOffset, model.byteLength, options);
    const wanted: Record<string, null> = Object.fromEntries(fetches.map((name) => [name, null]));
    const runOptions = {};
    return {
      direct: true,
      run: (feeds) => session.run(feeds, wanted, runOptions),
      release: async () => session.dispose(),
    };
  }
  const session = await ort.InferenceSession.create(model, options);
  const names = [...fetches];
  return {
    direct: false,
    run: (feeds) => session.run(feeds, names) as Promise<Outputs>,
    release: () => session.release(),
  };
}
