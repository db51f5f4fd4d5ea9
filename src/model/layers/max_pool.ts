import * as tf from '@tensorflow/tfjs-core';
import type { MaxPoolSpec, Shape } from '../spec.js';
import type { LayerImpl } from './types.js';
import { checkPoolWindow } from './pool_window.js';

function outSize(n: number, size: number, stride: number, pad: number, roundUp: boolean): number {
  const span = n + 2 * pad - size;
  return (roundUp ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1;
}

function geometry(spec: MaxPoolSpec, input: Shape) {
  const pad = spec.pad ?? 0;
  const roundUp = spec.roundUp ?? true;
  if (typeof roundUp !== 'boolean') throw new Error(`maxPool: roundUp must be true or false, got ${roundUp}`);
  const { h, w, c, stride } = checkPoolWindow('maxPool', spec.size, spec.stride, input, pad);
  const oh = outSize(h, spec.size, stride, pad, roundUp);
  const ow = outSize(w, spec.size, stride, pad, roundUp);
  // Rounding up adds a partial last window: pad the bottom/right edge so it exists. Max pooling
  // ignores padded cells on both backends, as Chainer's cover_all does.
  const extraH = (oh - 1) * stride + spec.size - h - 2 * pad;
  const extraW = (ow - 1) * stride + spec.size - w - 2 * pad;
  return {
    oh,
    ow,
    c,
    stride,
    padding: [
      [0, 0],
      [pad, pad + extraH],
      [pad, pad + extraW],
      [0, 0],
    ] as tf.backend_util.ExplicitPadding,
  };
}

export const maxPool: LayerImpl<MaxPoolSpec> = {
  kind: 'maxPool',
  outputShape(spec, input) {
    const { oh, ow, c } = geometry(spec, input);
    return [oh, ow, c];
  },
  params: () => [],
  macs: () => 0,
  forward(spec, x) {
    const { stride, padding } = geometry(spec, x.shape.slice(1));
    const allZero = padding.every(([a, b]) => a === 0 && b === 0);
    return tf.maxPool(x as tf.Tensor4D, spec.size, stride, allZero ? 'valid' : padding);
  },
};
