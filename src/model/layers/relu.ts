import * as tf from '@tensorflow/tfjs-core';
import type { ReluSpec } from '../spec.js';
import type { LayerImpl } from './types.js';

export const relu: LayerImpl<ReluSpec> = {
  kind: 'relu',
  outputShape: (_spec, input) => input,
  params: () => [],
  macs: () => 0,
  forward: (_spec, x) => tf.relu(x),
};
