import * as tf from '@tensorflow/tfjs-core';
import { deriveSeed, Rng } from '../rng.js';
import { layerImpl } from './layers/index.js';
import type { ForwardOptions, ParamDecl } from './layers/index.js';
import type { BranchyNetSpec, LayerSpec, Shape } from './spec.js';

export interface CompiledLayer {
  spec: LayerSpec;
  inputShape: Shape;
  outputShape: Shape;
  /** Parameter short name -> full name in the network. */
  paramNames: Record<string, string>;
  macs: number;
}

/** A run of layers: one trunk segment or one exit head. */
export interface Block {
  layers: CompiledLayer[];
  inputShape: Shape;
  outputShape: Shape;
  macs: number;
}

export interface NamedParam {
  name: string;
  decl: ParamDecl;
}

type Step = (x: tf.Tensor) => tf.Tensor;

function compileBlock(layers: LayerSpec[], inputShape: Shape, prefix: (index: number) => string, out: NamedParam[]): Block {
  let shape = inputShape;
  let macs = 0;
  const compiled = layers.map((spec, i) => {
    const impl = layerImpl(spec);
    let outputShape: Shape;
    try {
      outputShape = impl.outputShape(spec, shape);
    } catch (e) {
      throw new Error(`${prefix(i)} (${spec.kind}): ${(e as Error).message}`);
    }
    const paramNames: Record<string, string> = {};
    for (const decl of impl.params(spec, shape)) {
      const name = `${prefix(i)}.${decl.name}`;
      paramNames[decl.name] = name;
      out.push({ name, decl });
    }
    const layerMacs = impl.macs(spec, shape);
    macs += layerMacs;
    const layer = { spec, inputShape: shape, outputShape, paramNames, macs: layerMacs };
    shape = outputShape;
    return layer;
  });
  return { layers: compiled, inputShape, outputShape: shape, macs };
}

/** Checks a spec and works out every shape, parameter and MAC count, without allocating tensors. */
export function analyseSpec(spec: BranchyNetSpec): { segments: Block[]; heads: Block[]; params: NamedParam[] } {
  const exits = spec.segments.length;
  if (exits < 1) throw new Error(`${spec.name}: a network needs at least one segment`);
  if (spec.heads.length !== exits) {
    throw new Error(`${spec.name}: ${exits} segments need ${exits} heads (the last one empty), got ${spec.heads.length}`);
  }
  if (spec.heads[exits - 1].length !== 0) {
    throw new Error(`${spec.name}: the last exit is the trunk's own classifier, so its head must be empty`);
  }
  if (spec.lossWeights && spec.lossWeights.length !== exits) {
    throw new Error(`${spec.name}: ${exits} exits need ${exits} loss weights, got ${spec.lossWeights.length}`);
  }
  if (spec.segments.some((s) => s.length === 0)) throw new Error(`${spec.name}: every trunk segment needs at least one layer`);
  const params: NamedParam[] = [];
  const segments: Block[] = [];
  const heads: Block[] = [];
  let shape: Shape = spec.input;
  let trunkIndex = 0;
  for (let k = 0; k < exits; k++) {
    const first = trunkIndex;
    // Trunk parameters are named by their position in the whole trunk, so a baseline (one
    // segment) and its branchy network (several) share names and can warm-start each other.
    const segment = compileBlock(spec.segments[k], shape, (i) => `trunk.${first + i}`, params);
    trunkIndex += spec.segments[k].length;
    segments.push(segment);
    shape = segment.outputShape;
    heads.push(compileBlock(spec.heads[k], shape, (i) => `head${k}.${i}`, params));
    const logitsShape = heads[k].outputShape;
    if (logitsShape.length !== 1 || logitsShape[0] !== spec.classes) {
      throw new Error(`${spec.name}: exit ${k + 1} must end in ${spec.classes} class scores, its output is [${logitsShape.join(', ')}]`);
    }
  }
  return { segments, heads, params };
}

function initialValue(name: string, decl: ParamDecl, seed: number): tf.Tensor {
  if (decl.init === 'zeros') return tf.zeros(decl.shape);
  if (decl.init === 'ones') return tf.ones(decl.shape);
  const rng = new Rng(deriveSeed(seed, name));
  const size = decl.shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(size);
  const std = 1 / Math.sqrt(decl.fanIn);
  for (let i = 0; i < size; i++) values[i] = rng.normal() * std;
  return tf.tensor(values, decl.shape);
}

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

  constructor(readonly spec: BranchyNetSpec, seed = 0) {
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
    this.inferenceSegments = this.stages.segments.map((layers) => this.inferencePlan(layers));
    this.inferenceHeads = this.stages.heads.map((layers) => this.inferencePlan(layers));
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
    return this.paramList.filter((p) => p.decl.trainable !== false && p.name.startsWith('head')).map((p) => this.params.get(p.name)!);
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
      y = layerImpl(layer.spec).forward(layer.spec, y, this.layerParams(layer), i === 0 && fromImage ? { ...options, inputIsData: true } : options);
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
   * The inference plan of a block: a conv or dense layer absorbs a following relu, and also a
   * relu that follows it after a max pool (max pooling commutes with the monotone relu).
   */
  private inferencePlan(layers: CompiledLayer[]): Step[] {
    const steps: Step[] = [];
    for (let i = 0; i < layers.length; i++) {
      const layer = layers[i];
      const impl = layerImpl(layer.spec);
      const params = this.layerParams(layer);
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

/**
 * Where an exit's head and the next trunk segment begin with the same parameter-free layers (in
 * B-LeNet both start with max pool and relu), those layers are computed once, at the end of the
 * segment, and their output is what the exit and the trunk continue from. Same arithmetic, fewer ops.
 */
function hoistSharedPrefixes(segments: Block[], heads: Block[]): { segments: CompiledLayer[][]; heads: CompiledLayer[][] } {
  const segs = segments.map((b) => b.layers.slice());
  const hds = heads.map((b) => b.layers.slice());
  for (let k = 0; k + 1 < segs.length; k++) {
    let shared = 0;
    while (
      shared < hds[k].length - 1 &&
      shared < segs[k + 1].length - 1 &&
      Object.keys(hds[k][shared].paramNames).length === 0 &&
      JSON.stringify(hds[k][shared].spec) === JSON.stringify(segs[k + 1][shared].spec)
    ) {
      shared++;
    }
    segs[k].push(...segs[k + 1].splice(0, shared));
    hds[k].splice(0, shared);
  }
  return { segments: segs, heads: hds };
}

function runSteps(steps: Step[], x: tf.Tensor): tf.Tensor {
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
