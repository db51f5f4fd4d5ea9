import type { InferenceSession, Tensor } from 'onnxruntime-common';

/**
 * What the runners use of an ONNX Runtime module: onnxruntime-node in Node, onnxruntime-web in a
 * page (both implement onnxruntime-common's API).
 */
export interface OrtModule {
  Tensor: typeof Tensor;
  InferenceSession: { create(model: Uint8Array, options?: InferenceSession.SessionOptions): Promise<InferenceSession> };
}

export type OrtOutputs = Record<string, Tensor>;

/**
 * One loaded ONNX graph with its outputs to fetch fixed. `run` is synchronous where the session
 * runs directly on a native binding and returns a Promise on the public `InferenceSession`.
 */
export interface OrtSession {
  /** True when runs are synchronous calls into the native session. */
  readonly direct: boolean;
  run(feeds: Record<string, Tensor>): OrtOutputs | Promise<OrtOutputs>;
  release(): Promise<void>;
}

/** Loads `model` (ONNX bytes) with `options`, to fetch `fetches` on every run. */
export type SessionOpener = (
  ort: OrtModule,
  model: Uint8Array,
  options: InferenceSession.SessionOptions,
  fetches: readonly string[],
  direct: boolean,
) => Promise<OrtSession>;

/** A session on the module's public API (any ONNX Runtime; `direct` is ignored). */
export const openPublicSession: SessionOpener = async (ort, model, options, fetches) => {
  const session = await ort.InferenceSession.create(model, options);
  const names = [...fetches];
  return {
    direct: false,
    run: (feeds) => session.run(feeds, names) as Promise<OrtOutputs>,
    release: () => session.release(),
  };
};
