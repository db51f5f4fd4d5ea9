import type { CompiledLayer } from '../model/network.js';
import type { Conv2dSpec, Shape } from '../model/spec.js';
import type { ParamReader } from './layers.js';

/**
 * Channel counts are padded to multiples of this: ONNX Runtime's blocked (NCHWc) kernels use
 * blocks of 16 channels with AVX-512 and 8 with AVX2.
 */
export const CHANNEL_BLOCK = 16;

type Reader = (layer: CompiledLayer) => ParamReader;

const roundUp = (c: number) => Math.ceil(c / CHANNEL_BLOCK) * CHANNEL_BLOCK;

function withChannels(shape: Shape, channels: number): Shape {
  return [...shape.slice(0, -1), channels];
}

/** HWIO filter [k, k, cin, cout] placed into [k, k, cin2, cout2], the rest zeros. */
function padFilter(values: Float32Array, [kh, kw, cin, cout]: number[], cin2: number, cout2: number): Float32Array {
  const out = new Float32Array(kh * kw * cin2 * cout2);
  for (let t = 0; t < kh * kw; t++) {
    for (let i = 0; i < cin; i++)
      out.set(values.subarray((t * cin + i) * cout, (t * cin + i + 1) * cout), (t * cin2 + i) * cout2);
  }
  return out;
}

/** Dense weights whose rows follow an NHWC flatten of `channels` channels, re-laid for `channels2`. */
function padDenseRows(
  values: Float32Array,
  [rows, units]: number[],
  channels: number,
  channels2: number,
): Float32Array {
  const positions = rows / channels;
  const out = new Float32Array(positions * channels2 * units);
  for (let p = 0; p < positions; p++)
    out.set(values.subarray(p * channels * units, (p + 1) * channels * units), p * channels2 * units);
  return out;
}

/**
 * Where a convolution's output goes through relu and max pooling only and then into another
 * convolution or a flatten + dense layer of the same block, the index of that consumer; else -1.
 */
function pooledConsumer(layers: CompiledLayer[], i: number): number {
  let j = i + 1;
  let pooled = false;
  for (; j < layers.length && (layers[j].spec.kind === 'relu' || layers[j].spec.kind === 'maxPool'); j++)
    pooled ||= layers[j].spec.kind === 'maxPool';
  if (!pooled || j >= layers.length) return -1;
  const kind = layers[j].spec.kind;
  if (kind === 'conv2d') return j;
  if (kind === 'flatten' && layers[j + 1]?.spec.kind === 'dense') return j;
  return -1;
}

/**
 * Pads the filters of each convolution whose output is max-pooled within the block to a multiple
 * of `CHANNEL_BLOCK`, with zero filters and biases, and gives its consumer zero weights for the
 * added channels: the same results, exactly. ONNX Runtime computes a convolution's output channels
 * in blocks of 16 (AVX-512) anyway, but pools in blocked layout only when the channel count is a
 * multiple of the block; otherwise each conv -> pool pair converts the whole activation back to
 * plain NCHW first, which costs more than the pooling itself for B-LeNet's 5- and 10-channel maps.
 * Layers for which `skip` says so (the phase-convolution rewrite) are left as they are, and so are
 * values handed on from the block (their shape is part of the stage's interface).
 */
export function padPooledChannels(
  layers: CompiledLayer[],
  read: Reader,
  skip: (i: number) => boolean,
): { layers: CompiledLayer[]; read: Reader } {
  const out = layers.slice();
  const readers = new Map<CompiledLayer, ParamReader>();
  const readerOf = (layer: CompiledLayer) => readers.get(layer) ?? read(layer);
  for (let i = 0; i < out.length; i++) {
    const conv = out[i];
    if (conv.spec.kind !== 'conv2d' || skip(i)) continue;
    const filters = conv.spec.filters;
    const padded = roundUp(filters);
    const consumer = pooledConsumer(out, i);
    if (padded === filters || consumer < 0) continue;

    const convReader = readerOf(conv);
    const convSpec: Conv2dSpec = { ...conv.spec, filters: padded };
    const wide: CompiledLayer = { ...conv, spec: convSpec, outputShape: withChannels(conv.outputShape, padded) };
    readers.set(wide, (short) => {
      const p = convReader(short);
      if (short === 'w')
        return { values: padFilter(p.values, p.shape, p.shape[2], padded), shape: [...p.shape.slice(0, 3), padded] };
      const bias = new Float32Array(padded);
      bias.set(p.values);
      return { values: bias, shape: [padded] };
    });
    out[i] = wide;
    for (let j = i + 1; j < consumer; j++) {
      out[j] = {
        ...out[j],
        inputShape: withChannels(out[j].inputShape, padded),
        outputShape: withChannels(out[j].outputShape, padded),
      };
    }

    const next = out[consumer];
    if (next.spec.kind === 'conv2d') {
      const nextReader = readerOf(next);
      const wideNext: CompiledLayer = { ...next, inputShape: withChannels(next.inputShape, padded) };
      readers.set(wideNext, (short) => {
        const p = nextReader(short);
        if (short !== 'w') return p;
        return {
          values: padFilter(p.values, p.shape, padded, p.shape[3]),
          shape: [p.shape[0], p.shape[1], padded, p.shape[3]],
        };
      });
      out[consumer] = wideNext;
    } else {
      const flatten = next;
      const [h, w] = flatten.inputShape;
      out[consumer] = { ...flatten, inputShape: [h, w, padded], outputShape: [h * w * padded] };
      const dense = out[consumer + 1];
      const denseReader = readerOf(dense);
      const wideDense: CompiledLayer = { ...dense, inputShape: [h * w * padded] };
      readers.set(wideDense, (short) => {
        const p = denseReader(short);
        if (short !== 'w') return p;
        return { values: padDenseRows(p.values, p.shape, filters, padded), shape: [h * w * padded, p.shape[1]] };
      });
      out[consumer + 1] = wideDense;
    }
  }
  return { layers: out, read: readerOf };
}
