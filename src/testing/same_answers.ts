import assert from 'node:assert/strict';
import type { ExitResults } from '../runtime/early_exit.js';

/** Same predictions and exits, entropies within 1e-4 (runtimes compute them in float32 differently). */
export function assertSameAnswers(got: ExitResults, want: ExitResults, what: string): void {
  assert.deepEqual(got.predictions, want.predictions, `${what}: predictions`);
  assert.deepEqual(got.exitTaken, want.exitTaken, `${what}: exits`);
  for (let i = 0; i < want.entropies.length; i++) {
    assert.ok(
      Math.abs(got.entropies[i] - want.entropies[i]) <= 1e-4,
      `${what}: entropy of sample ${i}: ${got.entropies[i]} vs ${want.entropies[i]}`,
    );
  }
}
