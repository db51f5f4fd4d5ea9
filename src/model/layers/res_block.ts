import * as tf from '@tensorflow/tfjs-core';
import type { ResBlockSpec, Shape } from '../spec.js';
import { batchNormForward, batchNormParams } from './batch_norm.js';
import type { LayerImpl, ParamDecl, Params } from './types.js';

function geometry(
  spec: ResBlockSpec,
  input: Shape,
): { h: number; w: number; c: number; oh: number; ow: number; stride: number } {
  if (input.length !== 3) throw new Error(`resBlock: expects an [h, w, c] input, got [${input.join(', ')}]`);
  const stride = spec.stride ?? 1;
  if (!Number.isInteger(spec.filters) || spec.filters < 1)
    throw new Error(`resBlock: filters must be an integer >= 1, got ${spec.filters}`);
  if (!Number.isInteger(stride) || stride < 1)
    throw new Error(`resBlock: stride must be an integer >= 1, got ${stride}`);
  const [h, w, c] = input;
  if (spec.filters < c) {
    throw new Error(`resBlock: the zero-padded shortcut cannot shrink ${c} channels to ${spec.filters}`);
  }
  // conv 3x3 pad 1 stride s and the shortcut's 1x1 pool of stride s agree: floor((n - 1) / s) + 1.
  return { h, w, c, oh: Math.floor((h - 1) / stride) + 1, ow: Math.floor((w - 1) / stride) + 1, stride };
}

function sub(params: Params, prefix: string): Params {
  const out: Params = {};
  for (const [k, v] of Object.entries(params)) if (k.startsWith(prefix)) out[k.slice(prefix.length)] = v;
  return out;
}

/** Residual block of the reference's CIFAR ResNet; see ResBlockSpec. Batch norm runs with its defaults. */
export const resBlock: LayerImpl<ResBlockSpec> = {
  kind: 'resBlock',
  outputShape(spec, input) {
    const { oh, ow } = geometry(spec, input);
    return [oh, ow, spec.filters];
  },
  params(spec, input) {
    const { c } = geometry(spec, input);
    const f = spec.filters;
    const conv = (name: string, cin: number): ParamDecl[] => [
      { name: `${name}.w`, shape: [3, 3, cin, f], init: 'lecunNormal', fanIn: 9 * cin },
      { name: `${name}.b`, shape: [f], init: 'zeros', fanIn: 9 * cin },
    ];
    const bn = (name: string) => batchNormParams(f).map((d) => ({ ...d, name: `${name}.${d.name}` }));
    return [...conv('conv1', c), ...bn('bn1'), ...conv('conv2', f), ...bn('bn2')];
  },
  macs(spec, input) {
    const { c, oh, ow } = geometry(spec, input);
    return oh * ow * spec.filters * 9 * (c + spec.filters);
  },
  forward(spec, x, params, options) {
    const { c, stride } = geometry(spec, x.shape.slice(1));
    const f = spec.filters;
    const conv = (input: tf.Tensor, name: string, strides: number) =>
      tf.fused.conv2d({
        x: input as tf.Tensor4D,
        filter: params[`${name}.w`] as tf.Tensor4D,
        bias: params[`${name}.b`],
        strides,
        pad: 1,
      });
    let h: tf.Tensor = conv(x, 'conv1', stride);
    h = tf.relu(batchNormForward({ kind: 'batchNorm' }, h, sub(params, 'bn1.'), options.training));
    h = batchNormForward({ kind: 'batchNorm' }, conv(h, 'conv2', 1), sub(params, 'bn2.'), options.training);
    let shortcut = stride > 1 ? tf.avgPool(x as tf.Tensor4D, 1, stride, 'valid') : x;
    if (f > c) {
      const [n, sh, sw] = shortcut.shape;
      shortcut = tf.concat([tf.zeros([n, sh, sw, f - c]), shortcut], 3);
    }
    return tf.relu(tf.add(h, shortcut));
  },
};
