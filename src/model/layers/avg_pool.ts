import * as tf from '@tensorflow/tfjs-core';
import type { AvgPoolSpec, Shape } from '../spec.js';
import type { LayerImpl } from './types.js';

function geometry(spec: AvgPoolSpec, input: Shape): { oh: number; ow: number; c: number; stride: number } {
  if (input.length !== 3) throw new Error(`avgPool: expects an [h, w, c] input, got [${input.join(', ')}]`);
  const stride = spec.stride ?? spec.size;
  if (!Number.isInteger(spec.size) || spec.size < 1) throw new Error(`avgPool: size must be an integer >= 1, got ${spec.size}`);
  if (!Number.isInteger(stride) || stride < 1) throw new Error(`avgPool: stride must be an integer >= 1, got ${stride}`);
  const [h, w, c] = input;
  if (h < spec.size || w < spec.size) throw new Error(`avgPool: window ${spec.size} is larger than the input ${h}x${w}`);
  return { oh: Math.floor((h - spec.size) / stride) + 1, ow: Math.floor((w - spec.size) / stride) + 1, c, stride };
}

/** Average pooling, no padding, sizes rounded down (Chainer's F.average_pooling_2d with pad 0). MACs: 0, as max pooling. */
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
