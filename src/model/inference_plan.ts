import * as tf from '@tensorflow/tfjs-core';
import type { CompiledLayer } from './analysis.js';
import { layerImpl } from './layers/index.js';
import type { Params } from './layers/index.js';

/** One step of a block's inference: a layer, or a layer with the activation it absorbs. */
export type Step = (x: tf.Tensor) => tf.Tensor;

/**
 * The inference plan of a block: a conv or dense layer absorbs a following relu, and also a
 * relu that follows it after a max pool (max pooling commutes with the monotone relu).
 */
export function inferencePlan(layers: CompiledLayer[], paramsOf: (layer: CompiledLayer) => Params): Step[] {
  const steps: Step[] = [];
  for (let i = 0; i < layers.length; i++) {
    const layer = layers[i];
    const impl = layerImpl(layer.spec);
    const params = paramsOf(layer);
    const next = layers[i + 1]?.spec.kind;
    const afterNext = layers[i + 2]?.spec.kind;
    if (impl.fusedForward && next === 'relu') {
      steps.push((x) => impl.fusedForward!(layer.spec, x, params, 'relu'));
      i += 1;
    } else if (impl.fusedForward && next === 'maxPool' && afterNext === 'relu') {
      const pool = layers[i + 1];
      const poolImpl = layerImpl(pool.spec);
      steps.push((x) => impl.fusedForward!(layer.spec, x, params, 'relu'));
      steps.push((x) => poolImpl.forward(pool.spec, x, {}, { training: false }));
      i += 2;
    } else {
      // tidy: multi-op layers (batch norm, residual blocks) make intermediates.
      steps.push((x) => tf.tidy(() => impl.forward(layer.spec, x, params, { training: false })));
    }
  }
  return steps;
}

export function runSteps(steps: Step[], x: tf.Tensor): tf.Tensor {
  let y = x;
  for (const step of steps) {
    const next = step(y);
    // A step may hand back its input (dropout at inference is the identity).
    if (y !== x && next !== y) y.dispose();
    y = next;
  }
  // An empty block (the last exit's head) returns its input itself: no copy on the hot path.
  return y;
}
