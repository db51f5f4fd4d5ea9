import { layerImpl } from './layers/index.js';
import type { ParamDecl } from './layers/index.js';
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

function compileBlock(
  layers: LayerSpec[],
  inputShape: Shape,
  prefix: (index: number) => string,
  out: NamedParam[],
): Block {
  let shape = inputShape;
  let macs = 0;
  const compiled = layers.map((spec, i) => {
    const impl = layerImpl(spec);
    let outputShape: Shape;
    try {
      outputShape = impl.outputShape(spec, shape);
    } catch (e) {
      throw new Error(`${prefix(i)} (${spec.kind}): ${(e as Error).message}`, { cause: e });
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
    throw new Error(
      `${spec.name}: ${exits} segments need ${exits} heads (the last one empty), got ${spec.heads.length}`,
    );
  }
  if (spec.heads[exits - 1].length !== 0) {
    throw new Error(`${spec.name}: the last exit is the trunk's own classifier, so its head must be empty`);
  }
  if (spec.lossWeights && spec.lossWeights.length !== exits) {
    throw new Error(`${spec.name}: ${exits} exits need ${exits} loss weights, got ${spec.lossWeights.length}`);
  }
  if (spec.segments.some((s) => s.length === 0))
    throw new Error(`${spec.name}: every trunk segment needs at least one layer`);
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
      throw new Error(
        `${spec.name}: exit ${k + 1} must end in ${spec.classes} class scores, its output is [${logitsShape.join(', ')}]`,
      );
    }
  }
  return { segments, heads, params };
}

/**
 * Where an exit's head and the next trunk segment begin with the same parameter-free layers (in
 * B-LeNet both start with max pool and relu), those layers are computed once, at the end of the
 * segment, and their output is what the exit and the trunk continue from. Same arithmetic, fewer ops.
 */
export function hoistSharedPrefixes(
  segments: Block[],
  heads: Block[],
): { segments: CompiledLayer[][]; heads: CompiledLayer[][] } {
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
