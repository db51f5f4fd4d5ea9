import * as tf from '@tensorflow/tfjs-core';
import type { DropoutSpec } from '../spec.js';
import type { LayerImpl } from './types.js';

function checkRate(spec: DropoutSpec): number {
  if (!(spec.rate >= 0 && spec.rate < 1)) throw new Error(`dropout: rate must be in [0, 1), got ${spec.rate}`);
  return spec.rate;
}

/**
 * Inverted dropout (Chainer's F.dropout): in training each unit is kept with probability
 * 1 - rate and scaled by 1 / (1 - rate); at inference it is the identity. The mask comes from
 * `options.rng`, so a seeded training run is reproducible.
 */
export const dropout: LayerImpl<DropoutSpec> = {
  kind: 'dropout',
  outputShape(spec, input) {
    checkRate(spec);
    return input;
  },
  params: () => [],
  macs: () => 0,
  forward(spec, x, _params, options) {
    const rate = checkRate(spec);
    if (!options.training || rate === 0) return x;
    const rng = options.rng;
    if (!rng)
      throw new Error('dropout: training needs a seeded random source; pass forward options { training: true, rng }');
    const keep = 1 / (1 - rate);
    const mask = new Float32Array(x.size);
    for (let i = 0; i < mask.length; i++) mask[i] = rng.next() < rate ? 0 : keep;
    return tf.mul(x, tf.tensor(mask, x.shape));
  },
};
