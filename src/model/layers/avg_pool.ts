import * as tf from '@tensorflow/tfjs-core';
import type { AvgPoolSpec, Shape } from '../spec.js';
import type { LayerImpl } from './types.js';
import { checkPoolWindow } from './pool_window.js';

function geometry(spec: AvgPoolSpec, input: Shape): { oh: number; ow: number; c: number; stride: number } {
  const { h, w, c, stride } = checkPoolWindow('avgPool', spec.size, spec.stride, input, 0);
  return { oh: Math.floor((h - spec.size) / stride) + 1, ow: Math.floor((w - spec.size) / stride) + 1, c, stride };
}

/**
 * Average pooling, no padding, sizes rounded down (Chainer's F.average_pooling_2d with pad 0). MACs: 0, as max
 * pooling.
 */
export const avgPool: LayerImpl<AvgPoolSpec> = {
  kind: 'avgPool',
  outputShape(spec, input) {
    const { oh, ow, c } = geometry(spec, input);
    return [oh, ow, c];
  },
  params: () => [],
  macs: () => 0,
  forward(spec, x) {
    const { stride } = geometry(spec, x.shape.slice(1));
    return tf.avgPool(x as tf.Tensor4D, spec.size, stride, 'valid');
  },
};
