import * as tf from '@tensorflow/tfjs-core';
import type { Block, CompiledLayer, NamedParam } from './analysis.js';
import { analyseSpec, hoistSharedPrefixes } from './analysis.js';
import { inferencePlan, runSteps, type Step } from './inference_plan.js';
import { initialValue } from './init.js';
import { layerImpl } from './layers/index.js';
import type { ForwardOptions } from './layers/index.js';
import type { BranchyNetSpec } from './spec.js';

export { analyseSpec, type Block, type CompiledLayer, type NamedParam } from './analysis.js';

/**
 * A BranchyNet with its parameters, able to run each segment and head for training (every layer
 * on its own) and for inference (following activations fused into convolutions and matmuls).
 */
export class BranchyNet {
  readonly segments: Block[];
  readonly heads: Block[];
  /** Parameters in a fixed order (the order of saving and of the optimiser's state). */
  readonly paramList: NamedParam[];
  readonly params = new Map<string, tf.Variable>();
  /**
   * The layers each inference stage runs: segment k (plus the parameter-free layers its exit head
   * shares with the next segment) and head k. Runtimes and exporters follow this plan.
   */
  readonly stages: { segments: CompiledLayer[][]; heads: CompiledLayer[][] };
  private readonly inferenceSegments: Step[][];
  private readonly inferenceHeads: Step[][];

  constructor(
    readonly spec: BranchyNetSpec,
    seed = 0,
  ) {
    const analysed = analyseSpec(spec);
    this.segments = analysed.segments;
    this.heads = analysed.heads;
    this.paramList = analysed.params;
    for (const { name, decl } of this.paramList) {
      const init = initialValue(name, decl, seed);
      this.params.set(name, tf.variable(init, decl.trainable !== false));
      init.dispose();
    }
    this.stages = hoistSharedPrefixes(this.segments, this.heads);
    this.inferenceSegments = this.stages.segments.map((layers) => inferencePlan(layers, (l) => this.layerParams(l)));
    this.inferenceHeads = this.stages.heads.map((layers) => inferencePlan(layers, (l) => this.layerParams(l)));
  }

  get exits(): number {
    return this.segments.length;
  }

  /** The trainable parameters, for the optimiser (layer state such as running statistics is left out). */
  get variables(): tf.Variable[] {
    return this.paramList.filter((p) => p.decl.trainable !== false).map((p) => this.params.get(p.name)!);
  }

  /** The trainable parameters of the branch heads alone (training them on a frozen trunk). */
  get headVariables(): tf.Variable[] {
    return this.paramList
      .filter((p) => p.decl.trainable !== false && p.name.startsWith('head'))
      .map((p) => this.params.get(p.name)!);
  }

  /** MACs per sample of each segment and head. */
  macs(): { segments: number[]; heads: number[] } {
    return { segments: this.segments.map((b) => b.macs), heads: this.heads.map((b) => b.macs) };
  }

  private layerParams(layer: CompiledLayer): Record<string, tf.Tensor> {
    const out: Record<string, tf.Tensor> = {};
    for (const [short, full] of Object.entries(layer.paramNames)) out[short] = this.params.get(full)!;
    return out;
  }

  private runLayers(layers: CompiledLayer[], x: tf.Tensor, options: ForwardOptions, fromImage = false): tf.Tensor {
    let y = x;
    layers.forEach((layer, i) => {
      y = layerImpl(layer.spec).forward(
        layer.spec,
        y,
        this.layerParams(layer),
        i === 0 && fromImage ? { ...options, inputIsData: true } : options,
      );
    });
    return y;
  }

  /** Segment k exactly as the spec declares it, layer by layer (call inside tf.tidy). */
  segment(k: number, x: tf.Tensor, options: ForwardOptions): tf.Tensor {
    return this.runLayers(this.segments[k].layers, x, options);
  }

  /** Head k exactly as the spec declares it, on the output of `segment(k)`. */
  head(k: number, activation: tf.Tensor, options: ForwardOptions): tf.Tensor {
    return this.runLayers(this.heads[k].layers, activation, options);
  }

  /**
   * Logits of every exit for a batch: the full forward pass used in training and calibration,
   * layer by layer along the stage plan (shared layers computed once). `trunkOptions`, when given,
   * apply to the trunk's segments instead of `options`. Call inside tf.tidy.
   */
  forwardAll(x: tf.Tensor, options: ForwardOptions, trunkOptions: ForwardOptions = options): tf.Tensor[] {
    const logits: tf.Tensor[] = [];
    let a = x;
    for (let k = 0; k < this.exits; k++) {
      a = this.runLayers(this.stages.segments[k], a, trunkOptions, k === 0);
      logits.push(this.runLayers(this.stages.heads[k], a, options));
    }
    return logits;
  }

  /**
   * Inference forward through segment k, disposing intermediates but not the input. An empty
   * block returns its input tensor itself.
   */
  inferSegment(k: number, x: tf.Tensor): tf.Tensor {
    return runSteps(this.inferenceSegments[k], x);
  }

  inferHead(k: number, activation: tf.Tensor): tf.Tensor {
    return runSteps(this.inferenceHeads[k], activation);
  }

  /** Copies every parameter that `other` has under the same name and shape; returns the names copied. */
  copyParamsFrom(other: BranchyNet): string[] {
    const copied: string[] = [];
    for (const [name, v] of this.params) {
      const src = other.params.get(name);
      if (src && src.shape.join() === v.shape.join()) {
        v.assign(src);
        copied.push(name);
      }
    }
    return copied;
  }

  dispose(): void {
    for (const v of this.params.values()) v.dispose();
    this.params.clear();
  }
}
