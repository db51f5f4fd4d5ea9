import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  activationParams,
  dequantizeValue,
  percentileRange,
  quantizeBias,
  quantizeValue,
  quantizeWeightsPerChannel,
  roundHalfEven,
} from './maths.js';

test('roundHalfEven rounds ties to the even integer, like ONNX QuantizeLinear', () => {
  assert.deepEqual(
    [0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5, 2.4999, 2.5001, -2.6].map(roundHalfEven),
    [0, 2, 2, 4, 0, -2, -2, 2, 3, -3],
  );
});

test('activationParams: uint8 range widened to hold 0, hand-computed', () => {
  // [-1, 3]: scale 4/255, zero point round(1 / (4/255)) = round(63.75) = 64.
  const p = activationParams(-1, 3);
  assert.equal(p.scale, Math.fround(4 / 255));
  assert.equal(p.zeroPoint, 64);
  // [0.5, 2]: widened to [0, 2]: scale 2/255, zero point 0 (a Relu's output).
  assert.deepEqual(activationParams(0.5, 2), { scale: Math.fround(2 / 255), zeroPoint: 0 });
  // [-2, -1]: widened to [-2, 0]: zero point 255.
  assert.deepEqual(activationParams(-2, -1), { scale: Math.fround(2 / 255), zeroPoint: 255 });
  assert.deepEqual(activationParams(0, 0), { scale: 1, zeroPoint: 0 });
  assert.throws(() => activationParams(1, 0), RangeError);
});

test('quantizeValue saturates and rounds half to even; dequantizeValue inverts within half a step', () => {
  const p = { scale: 0.5, zeroPoint: 10 };
  // 1.25 / 0.5 = 2.5 -> 2 (even) + 10; 1.75 / 0.5 = 3.5 -> 4 + 10.
  assert.equal(quantizeValue(1.25, p), 12);
  assert.equal(quantizeValue(1.75, p), 14);
  assert.equal(quantizeValue(-100, p), 0);
  assert.equal(quantizeValue(1000, p), 255);
  assert.equal(dequantizeValue(12, p), 1);
  const q = activationParams(-1, 3);
  for (const x of [-1, -0.3, 0, 0.01, 1.7, 3])
    assert.ok(Math.abs(dequantizeValue(quantizeValue(x, q), q) - x) <= q.scale / 2 + 1e-7, `${x}`);
  assert.equal(dequantizeValue(quantizeValue(0, q), q), 0, 'zero is exact');
});

test('quantizeWeightsPerChannel: symmetric scales per output channel along the given axis', () => {
  // Conv-like [2 channels, 3 values]: channel 0 max |w| 1.27 -> scale 0.01; channel 1 all zero -> scale 1.
  const conv = quantizeWeightsPerChannel(Float32Array.from([1.27, -0.635, 0.005, 0, 0, 0]), [2, 3], 0);
  assert.deepEqual([...conv.scales], [Math.fround(1.27 / 127), 1]);
  // 0.005 / 0.01 = 0.5 -> 0 (ties to even); -0.635 / 0.01 = -63.5 -> -64.
  assert.deepEqual([...conv.values], [127, -64, 0, 0, 0, 0]);
  // Gemm-like [K = 2, N = 2], per column (axis 1): columns max 2 and 0.5.
  const gemm = quantizeWeightsPerChannel(Float32Array.from([2, 0.25, -1, -0.5]), [2, 2], 1);
  assert.deepEqual([...gemm.scales], [Math.fround(2 / 127), Math.fround(0.5 / 127)]);
  assert.deepEqual([...gemm.values], [127, 64, -64, -127]);
});

test('quantizeBias: int32 at input scale x weight scale', () => {
  const b = quantizeBias(Float32Array.from([0.5, -0.25]), 0.1, Float32Array.from([0.01, 0.5]));
  // 0.5 / 0.001 = 500; -0.25 / 0.05 = -5.
  assert.deepEqual([...b.values], [500, -5]);
  assert.deepEqual([...b.scales], [Math.fround(0.1 * Math.fround(0.01)), Math.fround(0.1 * 0.5)]);
});

test('percentileRange clips the tails; p = 1 is the minimum and maximum', () => {
  const values = Float32Array.from({ length: 10001 }, (_, i) => i / 100);
  values[5000] = 1e6; // one outlier
  assert.deepEqual(percentileRange(values, 1), [0, 1e6]);
  const [lo, hi] = percentileRange(values, 0.999);
  assert.ok(lo > 0 && lo < 0.2, `${lo}`);
  assert.ok(hi > 99 && hi < 100.1, `${hi}`);
});
