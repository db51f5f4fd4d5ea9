/**
 * Float32 elementwise kernels of a training step (Adam's updates, relu and its
 * gradient, loss pieces) as native loops. Covered broadcasts: equal shapes, a
 * scalar, or one operand repeating over leading dimensions (a bias); others,
 * and other dtypes, fall back to the cpu kernels.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, StepAttrs, TensorInfo } from '@tensorflow/tfjs-core';
import { f32, sizeOf, uninitialized, withFallback, type OneDnnBackendLike } from './util.js';

/** i -> i % period for an operand of the broadcast `out` shape, or null when it is not that simple. */
function period(shape: readonly number[], out: readonly number[], n: number): number | null {
  const size = sizeOf(shape);
  if (size === n || size === 1) return size;
  let first = 0;
  while (first < shape.length && shape[first] === 1) first++;
  const core = shape.slice(first);
  const tail = out.slice(out.length - core.length);
  return core.every((d, i) => d === tail[i]) ? size : null;
}

function binaryConfig(name: string, op: number): KernelConfig {
  return withFallback(name, ({ inputs, backend }) => {
    const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
    if (a.dtype !== 'float32' || b.dtype !== 'float32') return null;
    const be = backend as OneDnnBackendLike;
    const out = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    const n = sizeOf(out);
    const am = period(a.shape, out, n);
    const bm = period(b.shape, out, n);
    if (
      n === 0 ||
      am === null ||
      bm === null ||
      (am !== n && am !== 1 && bm !== n) ||
      (bm !== n && bm !== 1 && am !== n)
    )
      return null;
    const values = uninitialized(n);
    be.addon.binary(op, f32(be, a), f32(be, b), values, [n, am, bm]);
    return be.makeTensorInfo(out, 'float32', values);
  });
}

function unaryConfig(name: string, op: number): KernelConfig {
  return withFallback(name, ({ inputs, backend, attrs }) => {
    const { x } = inputs as { x: TensorInfo };
    if (x.dtype !== 'float32' || sizeOf(x.shape) === 0) return null;
    const be = backend as OneDnnBackendLike;
    const values = uninitialized(sizeOf(x.shape));
    be.addon.unary(op, f32(be, x), values, name === tf.Step ? (attrs as unknown as StepAttrs).alpha : 0);
    return be.makeTensorInfo(x.shape.slice(), 'float32', values);
  });
}

export const addConfig = binaryConfig(tf.Add, 0);
export const subConfig = binaryConfig(tf.Sub, 1);
export const multiplyConfig = binaryConfig(tf.Multiply, 2);
export const realDivConfig = binaryConfig(tf.RealDiv, 3);
export const reluConfig = unaryConfig(tf.Relu, 0);
export const sqrtConfig = unaryConfig(tf.Sqrt, 1);
export const squareConfig = unaryConfig(tf.Square, 2);
export const stepConfig = unaryConfig(tf.Step, 3);
export const negConfig = unaryConfig(tf.Neg, 4);
