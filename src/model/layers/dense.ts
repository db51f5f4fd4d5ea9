import * as tf from '@tensorflow/tfjs-core';
import type { DenseSpec, Shape } from '../spec.js';
import type { LayerImpl } from './types.js';

function inputUnits(spec: DenseSpec, input: Shape): number {
  if (input.length !== 1)
    throw new Error(`dense: expects a flat input, got [${input.join(', ')}]; add a flatten layer first`);
  if (!Number.isInteger(spec.units) || spec.units < 1)
    throw new Error(`dense: units must be an integer >= 1, got ${spec.units}`);
  return input[0];
}

function run(x: tf.Tensor, params: Record<string, tf.Tensor>, activation: 'linear' | 'relu'): tf.Tensor {
  return tf.fused.matMul({ a: x as tf.Tensor2D, b: params.w as tf.Tensor2D, bias: params.b, activation });
}

export const dense: LayerImpl<DenseSpec> = {
  kind: 'dense',
  outputShape(spec, input) {
    inputUnits(spec, input);
    return [spec.units];
  },
  params(spec, input) {
    const n = inputUnits(spec, input);
    return [
      { name: 'w', shape: [n, spec.units], init: 'lecunNormal', fanIn: n },
      { name: 'b', shape: [spec.units], init: 'zeros', fanIn: n },
    ];
  },
  macs: (spec, input) => inputUnits(spec, input) * spec.units,
  forward: (_spec, x, params) => run(x, params, 'linear'),
  fusedForward: (_spec, x, params, activation) => run(x, params, activation),
};
