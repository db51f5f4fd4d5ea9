import * as tf from '@tensorflow/tfjs-core';
import type { BranchyNet } from '../model/network.js';
import type { StageRunner } from './runner.js';

/** Runs a BranchyNet's stages on the active tfjs backend with its fused inference plan. */
export class TfjsRunner implements StageRunner<tf.Tensor> {
  readonly exits: number;
  readonly classes: number;
  private readonly shape: [number, number, number];

  constructor(private readonly net: BranchyNet) {
    this.exits = net.exits;
    this.classes = net.spec.classes;
    this.shape = net.spec.input;
  }

  input(images: Float32Array, count: number): tf.Tensor {
    return tf.tensor4d(images, [count, ...this.shape]);
  }

  runStage(k: number, activation: tf.Tensor): { next: tf.Tensor | null; logits: ArrayLike<number> } {
    const out = this.net.inferSegment(k, activation);
    const logitsTensor = this.net.inferHead(k, out);
    const logits = logitsTensor.dataSync();
    if (logitsTensor !== out) logitsTensor.dispose();
    if (k === this.exits - 1) {
      out.dispose();
      return { next: null, logits };
    }
    return { next: out, logits };
  }

  selectRows(activation: tf.Tensor, rows: Int32Array): tf.Tensor {
    return tf.tidy(() => tf.gather(activation, tf.tensor1d(rows, 'int32')));
  }

  concatRows(activations: tf.Tensor[]): tf.Tensor {
    return tf.concat(activations, 0);
  }

  dispose(activation: tf.Tensor): void {
    activation.dispose();
  }
}
