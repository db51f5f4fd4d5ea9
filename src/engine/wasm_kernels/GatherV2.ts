import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/**
 * GatherV2 on the wasm backend, fast path for what early exit's compaction needs: whole rows
 * (axis 0, no batch dims) of a float32 tensor, copied straight between views of the wasm heap.
 * The stock kernel takes milliseconds to pick a few rows of a 256x30x30x5 tensor (docs/benchmarks.md);
 * this takes microseconds. Every other case goes to the stock kernel.
 */
export function fastGatherV2Config(stock: tf.KernelConfig): tf.KernelConfig {
  return {
    kernelName: tf.GatherV2,
    backendName: 'wasm',
    setupFunc: stock.setupFunc,
    kernelFunc: (args) => {
      const { x, indices } = args.inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
      const { axis, batchDims } = args.attrs as unknown as tf.GatherV2Attrs;
      const backend = args.backend as BackendWasm;
      const parsedAxis = tf.util.parseAxisParam(axis, x.shape)[0];
      if (parsedAxis !== 0 || (batchDims ?? 0) !== 0 || x.dtype !== 'float32' || indices.shape.length !== 1) {
        return stock.kernelFunc(args);
      }
      const rows = backend.readSync(indices.dataId) as Int32Array;
      const count = x.shape[0];
      for (const r of rows) {
        if (!(r >= 0 && r < count)) throw new Error(`GatherV2: the index value ${r} is not in [0, ${count - 1}]`);
      }
      const rowSize = tf.util.sizeFromShape(x.shape.slice(1));
      const out = backend.makeOutput([rows.length, ...x.shape.slice(1)], 'float32');
      // Views are taken after makeOutput, which may grow (and so detach) the heap.
      const src = backend.typedArrayFromHeap(x) as Float32Array;
      const dst = backend.typedArrayFromHeap(out) as Float32Array;
      for (let i = 0; i < rows.length; i++)
        dst.set(src.subarray(rows[i] * rowSize, (rows[i] + 1) * rowSize), i * rowSize);
      return out;
    },
  };
}
