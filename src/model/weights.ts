import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../errors.js';
import type { NamedArray } from '../io/tensor_pack.js';
import type { BranchyNet } from './network.js';

/** The network's parameters as plain arrays, in the network's fixed parameter order. */
export function readWeights(net: BranchyNet, prefix = ''): NamedArray[] {
  return net.paramList.map(({ name }) => {
    const v = net.params.get(name)!;
    return { name: prefix + name, shape: v.shape.slice(), data: v.dataSync() as Float32Array };
  });
}

/** Assigns every parameter of `net` from `arrays` (matched by name, shapes checked). */
export function assignWeights(net: BranchyNet, arrays: NamedArray[], source: string, prefix = ''): void {
  const byName = new Map(arrays.map((a) => [a.name, a]));
  for (const { name } of net.paramList) {
    const a = byName.get(prefix + name);
    const v = net.params.get(name)!;
    if (!a) throw new UserError(`${source}: no weights for parameter '${name}' of ${net.spec.name}`);
    if (a.shape.join() !== v.shape.join()) {
      throw new UserError(
        `${source}: parameter '${name}' has shape [${a.shape}] in the file but [${v.shape}] in ${net.spec.name}`,
      );
    }
    const t = tf.tensor(a.data, a.shape);
    v.assign(t);
    t.dispose();
  }
}
