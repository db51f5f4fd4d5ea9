import type { LayerKind, LayerSpec } from '../spec.js';
import { avgPool } from './avg_pool.js';
import { batchNorm } from './batch_norm.js';
import { conv2d } from './conv2d.js';
import { dense } from './dense.js';
import { dropout } from './dropout.js';
import { flatten } from './flatten.js';
import { lrn } from './lrn.js';
import { maxPool } from './max_pool.js';
import { relu } from './relu.js';
import { resBlock } from './res_block.js';
import type { LayerImpl } from './types.js';

const LAYERS: { [K in LayerKind]: LayerImpl<Extract<LayerSpec, { kind: K }>> } = {
  conv2d,
  maxPool,
  relu,
  flatten,
  dense,
  lrn,
  dropout,
  batchNorm,
  avgPool,
  resBlock,
};

export function layerImpl<S extends LayerSpec>(spec: S): LayerImpl<S> {
  const impl = (LAYERS as Record<string, LayerImpl<LayerSpec> | undefined>)[spec.kind];
  if (!impl) throw new Error(`unknown layer kind '${spec.kind}' (known: ${Object.keys(LAYERS).join(', ')})`);
  return impl as unknown as LayerImpl<S>;
}

export type { LayerImpl, ParamDecl, Params, ForwardOptions, Activation } from './types.js';
