import * as tf from '@tensorflow/tfjs-core';
import type { FlattenSpec } from '../spec.js';
import type { LayerImpl } from './types.js';

/** Flattens each sample in NHWC order (height, width, channel). */
export const flatten: LayerImpl<FlattenSpec> = {
  kind: 'flatten',
  outputShape: (_spec, input) => [input.reduce((a, b) => a * b, 1)],
  params: () => [],
  macs: () => 0,
  forward: (_spec, x) => tf.reshape(x, [x.shape[0], -1]),
};
