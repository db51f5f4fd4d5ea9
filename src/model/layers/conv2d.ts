import * as tf from '@tensorflow/tfjs-core';
import type { Conv2dSpec, Shape } from '../spec.js';
import type { LayerImpl } from './types.js';

function check(spec: Conv2dSpec, input: Shape): { h: number; w: number; c: number; stride: number; pad: number } {
  if (input.length !== 3) throw new Error(`conv2d: expects an [h, w, c] input, got [${input.join(', ')}]`);
  const stride = spec.stride ?? 1;
  const pad = spec.pad ?? 0;
  for (const [name, v, min] of [
    ['filters', spec.filters, 1],
    ['kernel', spec.kernel, 1],
    ['stride', stride, 1],
    ['pad', pad, 0],
  ] as const) {
    if (!Number.isInteger(v) || v < min) throw new Error(`conv2d: ${name} must be an integer >= ${min}, got ${v}`);
  }
  const [h, w, c] = input;
  if (h + 2 * pad < spec.kernel || w + 2 * pad < spec.kernel) {
    throw new Error(`conv2d: kernel ${spec.kernel} is larger than the padded input ${h + 2 * pad}x${w + 2 * pad}`);
  }
  return { h, w, c, stride, pad };
}

function outputShape(spec: Conv2dSpec, input: Shape): Shape {
  const { h, w, stride, pad } = check(spec, input);
  return [
    Math.floor((h + 2 * pad - spec.kernel) / stride) + 1,
    Math.floor((w + 2 * pad - spec.kernel) / stride) + 1,
    spec.filters,
  ];
}

function run(
  spec: Conv2dSpec,
  x: tf.Tensor,
  params: Record<string, tf.Tensor>,
  activation: 'linear' | 'relu',
): tf.Tensor {
  return tf.fused.conv2d({
    x: x as tf.Tensor4D,
    filter: params.w as tf.Tensor4D,
    bias: params.b,
    strides: spec.stride ?? 1,
    pad: spec.pad ?? 0,
    activation,
  });
}

export const conv2d: LayerImpl<Conv2dSpec> = {
  kind: 'conv2d',
  outputShape,
  params(spec, input) {
    const { c } = check(spec, input);
    const fanIn = spec.kernel * spec.kernel * c;
    return [
      { name: 'w', shape: [spec.kernel, spec.kernel, c, spec.filters], init: 'lecunNormal', fanIn },
      { name: 'b', shape: [spec.filters], init: 'zeros', fanIn },
    ];
  },
  macs(spec, input) {
    const [oh, ow] = outputShape(spec, input);
    return oh * ow * spec.filters * spec.kernel * spec.kernel * input[2];
  },
  // tfjs's fused convolution computes its input's gradient even where nothing needs it (it is
  // eager); the plain one leaves it to the tape, which skips it for the image.
  forward: (spec, x, params, options) =>
    options.training && options.inputIsData
      ? tf.add(tf.conv2d(x as tf.Tensor4D, params.w as tf.Tensor4D, spec.stride ?? 1, spec.pad ?? 0), params.b)
      : run(spec, x, params, 'linear'),
  fusedForward: (spec, x, params, activation) => run(spec, x, params, activation),
};
