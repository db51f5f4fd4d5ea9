/**
 * Models are declared as data: one JSON-serialisable spec drives training, inference, saving,
 * MAC counting and export.
 */

export interface Conv2dSpec {
  kind: 'conv2d';
  filters: number;
  kernel: number;
  stride?: number;
  /** Zero padding on every side (Chainer's `pad`), default 0. */
  pad?: number;
}

export interface MaxPoolSpec {
  kind: 'maxPool';
  size: number;
  stride?: number;
  pad?: number;
  /**
   * Round the output size up, covering the whole input with a last partial window (Chainer's
   * `cover_all`, its default and the reference code's behaviour). Default true.
   */
  roundUp?: boolean;
}

export interface ReluSpec {
  kind: 'relu';
}

export interface FlattenSpec {
  kind: 'flatten';
}

export interface DenseSpec {
  kind: 'dense';
  units: number;
}

export type LayerSpec = Conv2dSpec | MaxPoolSpec | ReluSpec | FlattenSpec | DenseSpec;
export type LayerKind = LayerSpec['kind'];

/**
 * A BranchyNet: the trunk cut into segments, one exit after each segment. Exit k runs
 * `heads[k]` on the output of segment k; the last exit is the trunk's own classifier, so its
 * head is empty and the last segment ends in a layer with `classes` outputs.
 */
export interface BranchyNetSpec {
  name: string;
  /** [height, width, channels] of one input image. */
  input: [number, number, number];
  classes: number;
  segments: LayerSpec[][];
  heads: LayerSpec[][];
  /** Weight of each exit's cross-entropy in the joint loss; default 1.0 each. */
  lossWeights?: number[];
}

/** Shape of one sample (no batch dimension). */
export type Shape = number[];

/** The baseline network: the trunk alone, one exit (its own classifier). */
export function baselineOf(spec: BranchyNetSpec): BranchyNetSpec {
  return {
    name: `${spec.name}-baseline`,
    input: spec.input,
    classes: spec.classes,
    segments: [spec.segments.flat()],
    heads: [[]],
  };
}

export function exitCount(spec: BranchyNetSpec): number {
  return spec.segments.length;
}
