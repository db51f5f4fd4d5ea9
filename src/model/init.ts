import * as tf from '@tensorflow/tfjs-core';
import { deriveSeed, Rng } from '../rng.js';
import type { ParamDecl } from './layers/index.js';

/**
 * A parameter's initial value: zeros or ones where it says, else LeCun-normal noise seeded by the
 * network's seed and the parameter's name (so a parameter starts the same in every network that has it).
 */
export function initialValue(name: string, decl: ParamDecl, seed: number): tf.Tensor {
  if (decl.init === 'zeros') return tf.zeros(decl.shape);
  if (decl.init === 'ones') return tf.ones(decl.shape);
  const rng = new Rng(deriveSeed(seed, name));
  const size = decl.shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(size);
  const std = 1 / Math.sqrt(decl.fanIn);
  for (let i = 0; i < size; i++) values[i] = rng.normal() * std;
  return tf.tensor(values, decl.shape);
}
