import type * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../../rng.js';
import type { LayerSpec, Shape } from '../spec.js';

export interface ParamDecl {
  /** Short name within the layer, e.g. 'w' or 'b'. */
  name: string;
  shape: number[];
  init: 'lecunNormal' | 'zeros' | 'ones';
  /** Inputs feeding one output unit, for the initialiser's scale. */
  fanIn: number;
  /**
   * false: layer state (batch norm's running statistics), not a parameter: updated by the layer's
   * own training forward, never by the optimiser, but saved and loaded with the weights. Default true.
   */
  trainable?: boolean;
}

export type Params = Record<string, tf.Tensor>;

export interface ForwardOptions {
  training: boolean;
  /** Random source of training-time noise (dropout masks); required by such layers when training. */
  rng?: Rng;
  /**
   * The input is data, not computed from parameters, so no gradient is wanted for it: a layer may
   * then skip work that only serves the input's gradient (the first convolution does).
   */
  inputIsData?: boolean;
}

export type Activation = 'relu';

/** One layer kind: its shapes, parameters, cost and computation, side by side. */
export interface LayerImpl<S extends LayerSpec = LayerSpec> {
  kind: S['kind'];
  /** Checks the attributes and the input shape; returns the output shape. */
  outputShape(spec: S, input: Shape): Shape;
  params(spec: S, input: Shape): ParamDecl[];
  /** Multiply-accumulates for one sample. */
  macs(spec: S, input: Shape): number;
  forward(spec: S, x: tf.Tensor, params: Params, options: ForwardOptions): tf.Tensor;
  /** Forward with a following activation fused into the same kernel (inference only). */
  fusedForward?(spec: S, x: tf.Tensor, params: Params, activation: Activation): tf.Tensor;
}
