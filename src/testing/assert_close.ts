import assert from 'node:assert/strict';

/** A tensor read back for comparison. */
export interface Result {
  shape: number[];
  values: Float32Array;
}

/** Asserts max |a - b| <= tol * max(1, max |ref|) for one output. */
export function assertCloseOne(actual: Result, expected: Result, what: string, tol = 1e-4): void {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  let maxErr = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.values.length; i++) {
    maxErr = Math.max(maxErr, Math.abs(actual.values[i]! - expected.values[i]!));
    maxRef = Math.max(maxRef, Math.abs(expected.values[i]!));
  }
  assert.ok(
    Number.isFinite(maxErr) && maxErr <= tol * Math.max(1, maxRef),
    `${what}: max abs error ${maxErr.toExponential(2)} (max |ref| ${maxRef.toFixed(3)})`,
  );
}

/** The same for every output of a kernel, in order. */
export function assertCloseAll(actual: Result[], expected: Result[], what: string, tol = 1e-4): void {
  assert.equal(actual.length, expected.length, `${what}: number of outputs`);
  expected.forEach((e, k) => assertCloseOne(actual[k]!, e, `${what} #${k}`, tol));
}
