/**
 * The seam between the early-exit logic and an engine: an engine runs one stage (a trunk segment
 * and its exit head) on an activation it holds, and hands back the exit's logits as plain numbers.
 */
export interface StageOutput<A> {
  /** The trunk activation to hand on; null at the last stage. */
  next: A | null;
  /** The exit's logits, rows x classes. */
  logits: ArrayLike<number>;
  /**
   * The softmax entropy (natural log) of each row, when the engine computed it (e.g. inside an
   * ONNX graph). When absent the early-exit loop computes it from the logits.
   */
  entropies?: ArrayLike<number>;
}

export interface StageRunner<A> {
  readonly exits: number;
  readonly classes: number;
  /** Wraps `count` images (NHWC float32) as the first stage's input. */
  input(images: Float32Array, count: number): A;
  /**
   * Runs stage k on `activation` (which stays owned by the caller). Returns the exit's logits
   * (rows x classes) and, except at the last stage, the trunk activation to hand on. An engine
   * whose runs are asynchronous returns a Promise; such a runner needs `earlyExitAsync`.
   */
  runStage(k: number, activation: A): StageOutput<A> | Promise<StageOutput<A>>;
  /** The given rows of an activation, as a new activation (compaction between stages). */
  selectRows(activation: A, rows: Int32Array): A;
  /** The rows of several activations of one stage, stacked in order, as a new activation (regrouping). */
  concatRows(activations: A[]): A;
  dispose(activation: A): void;
}
