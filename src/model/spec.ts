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

/**
 * Local response normalisation across channels, with Chainer's (and Caffe's) parameters:
 * y_c = x_c / (k + alpha * sum_{|j-c| <= floor(n/2)} x_j^2)^beta. alpha is NOT divided by n.
 */
export interface LrnSpec {
  kind: 'lrn';
  /** Channels in the window, default 5 (Chainer's default; the reference code passes 3). */
  n?: number;
  /** Default 2. */
  k?: number;
  /** Default 1e-4. */
  alpha?: number;
  /** Default 0.75. */
  beta?: number;
}

/**
 * Inverted dropout: in training zeroes each unit with probability `rate` and scales the rest by 1/(1-rate);
 * identity at inference.
 */
export interface DropoutSpec {
  kind: 'dropout';
  rate: number;
}

/**
 * Batch normalisation over the channels (last axis), Chainer's L.BatchNormalization: training
 * uses the batch statistics and updates running ones (running = momentum * running +
 * (1 - momentum) * batch, variance unbiased); inference uses the running statistics.
 */
export interface BatchNormSpec {
  kind: 'batchNorm';
  /** Default 0.9 (Chainer's `decay`). */
  momentum?: number;
  /** Default 2e-5 (Chainer's). */
  epsilon?: number;
}

/** Average pooling without padding, output size rounded down (Chainer's F.average_pooling_2d with pad 0). */
export interface AvgPoolSpec {
  kind: 'avgPool';
  size: number;
  /** Default `size`. */
  stride?: number;
}

/**
 * A residual block (He et al. 2016, CIFAR variant, as the reference code's ResBlock):
 * conv3x3(stride) - BN - relu - conv3x3 - BN, plus the shortcut, then relu. When the block
 * changes the channel count the shortcut is the input with zero channels put in front of it
 * (Chainer's `concat((zeros, x))`), and when it downsamples, the shortcut takes every
 * `stride`-th pixel (a 1x1 average pool of that stride). Convolutions have biases, pad 1.
 */
export interface ResBlockSpec {
  kind: 'resBlock';
  filters: number;
  /** Default 1. */
  stride?: number;
}

export type LayerSpec =
  | Conv2dSpec
  | MaxPoolSpec
  | ReluSpec
  | FlattenSpec
  | DenseSpec
  | LrnSpec
  | DropoutSpec
  | BatchNormSpec
  | AvgPoolSpec
  | ResBlockSpec;
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
