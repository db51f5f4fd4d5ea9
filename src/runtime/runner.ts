/**
 * The seam between the early-exit logic and an engine: an engine runs one stage (a trunk segment
 * and its exit head) on an activation it holds, and hands back the exit's logits as plain numbers.
 */
export interface StageRunner<A> {
  readonly exits: number;
  readonly classes: number;
  /** Wraps `count` images (NHWC float32) as the first stage's input. */
  input(images: Float32Array, count: number): A;
  /**
   * Runs stage k on `activation` (which stays owned by the caller). Returns the exit's logits
   * (rows x classes) and, except at the last stage, the trunk activation to hand on.
   */
  runStage(k: number, activation: A): { next: A | null; logits: ArrayLike<number> };
  /** The given rows of an activation, as a new activation (compaction between stages). */
  selectRows(activation: A, rows: Int32Array): A;
  dispose(activation: A): void;
}
