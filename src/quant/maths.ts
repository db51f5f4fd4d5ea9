/**
 * The quantisation arithmetic, in one place: ranges, scales, zero points and rounding, as ONNX's
 * QuantizeLinear and DequantizeLinear define them (y = saturate(round_half_even(x / scale) + zp),
 * x = (y - zp) * scale). Activations are uint8 with an asymmetric range that always holds 0 (so
 * that zero padding and a Relu's zeros are exact); weights are int8, symmetric, one scale per
 * output channel; biases are int32 with scale = input scale x weight scale and zero point 0, the
 * form ONNX Runtime fuses into QLinearConv.
 */

export const UINT8_MIN = 0;
export const UINT8_MAX = 255;
/** Symmetric int8 weights use [-127, 127]: -128 would make the range lopsided. */
export const INT8_WEIGHT_MAX = 127;
const INT32_MAX = 2147483647;

/** Rounds to the nearest integer, ties to the even one (ONNX QuantizeLinear's rounding). */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/** A uint8 quantisation of one tensor: real = (q - zeroPoint) * scale. */
export interface QuantParams {
  scale: number;
  zeroPoint: number;
}

/**
 * uint8 parameters covering [min, max] widened to hold 0. The scale is a float32 (what the ONNX
 * file stores); a zero-width range gets scale 1.
 */
export function activationParams(min: number, max: number): QuantParams {
  if (!(Number.isFinite(min) && Number.isFinite(max) && min <= max))
    throw new RangeError(`quant: invalid range [${min}, ${max}]`);
  const lo = Math.min(0, min);
  const hi = Math.max(0, max);
  if (hi === lo) return { scale: 1, zeroPoint: 0 };
  const scale = Math.fround((hi - lo) / (UINT8_MAX - UINT8_MIN));
  const zeroPoint = Math.min(UINT8_MAX, Math.max(UINT8_MIN, roundHalfEven(UINT8_MIN - lo / scale)));
  return { scale, zeroPoint };
}

/** ONNX QuantizeLinear to uint8 of one value. */
export function quantizeValue(x: number, p: QuantParams): number {
  return Math.min(UINT8_MAX, Math.max(UINT8_MIN, roundHalfEven(Math.fround(x / p.scale)) + p.zeroPoint));
}

/** ONNX DequantizeLinear of one uint8 value. */
export function dequantizeValue(q: number, p: QuantParams): number {
  return Math.fround((q - p.zeroPoint) * p.scale);
}

/** Per-output-channel symmetric int8 weights: `values` holds `channels` blocks of equal size along `axis`. */
export interface ChannelWeights {
  values: Int8Array;
  scales: Float32Array;
}

/**
 * Quantises weights of shape `dims` per channel along `axis` (0: a Conv's [O, I, kh, kw]; 1: a
 * Gemm's [K, N]): scale_c = max |w| over channel c / 127, q = round_half_even(w / scale_c) clamped
 * to [-127, 127]. A channel of zeros gets scale 1 (any scale represents it exactly).
 */
export function quantizeWeightsPerChannel(w: Float32Array, dims: number[], axis: number): ChannelWeights {
  const channels = dims[axis];
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const size = dims.reduce((a, b) => a * b, 1);
  if (w.length !== size) throw new RangeError(`quant: ${w.length} weights for shape [${dims}]`);
  const channelOf = (i: number) => Math.floor(i / inner) % channels;
  const maxAbs = new Float64Array(channels);
  for (let i = 0; i < size; i++) maxAbs[channelOf(i)] = Math.max(maxAbs[channelOf(i)], Math.abs(w[i]));
  const scales = Float32Array.from(maxAbs, (m) => (m === 0 ? 1 : m / INT8_WEIGHT_MAX));
  const values = new Int8Array(size);
  for (let i = 0; i < size; i++) {
    const q = roundHalfEven(Math.fround(w[i] / scales[channelOf(i)]));
    values[i] = Math.min(INT8_WEIGHT_MAX, Math.max(-INT8_WEIGHT_MAX, q));
  }
  return { values, scales };
}

/** int32 biases for an int8 product: scale_c = inputScale x weightScales[c], zero point 0. */
export function quantizeBias(
  bias: Float32Array,
  inputScale: number,
  weightScales: Float32Array,
): { values: Int32Array; scales: Float32Array } {
  if (bias.length !== weightScales.length)
    throw new RangeError(`quant: ${bias.length} biases for ${weightScales.length} channels`);
  const scales = Float32Array.from(weightScales, (s) => inputScale * s);
  const values = Int32Array.from(bias, (b, c) =>
    Math.min(INT32_MAX, Math.max(-INT32_MAX, roundHalfEven(b / scales[c]))),
  );
  return { values, scales };
}

/**
 * The p-th and (1 - p)-th quantiles of `values` (p in (0.5, 1]), e.g. p = 0.9999 clips the
 * rarest 0.01 % at either end; with p = 1 the minimum and maximum. Sorts a copy.
 */
export function percentileRange(values: Float32Array, p: number): [number, number] {
  if (!(p > 0.5 && p <= 1)) throw new RangeError(`quant: percentile must lie in (0.5, 1], got ${p}`);
  if (values.length === 0) return [0, 0];
  const sorted = Float32Array.from(values).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))];
  return [at(1 - p), at(p)];
}
