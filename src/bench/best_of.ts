/** Interleaved micro-timing shared by the benchmark scripts. */

/**
 * Best mean time (µs) of each case's `reps` calls over `rounds` rounds, the cases taking turns
 * round by round, so that a burst of load from other processes spoils one round of each at most.
 */
export async function bestOf(
  cases: Record<string, [() => unknown, number]>,
  rounds = 15,
): Promise<Record<string, number>> {
  const best: Record<string, number> = {};
  for (const [name, [f, reps]] of Object.entries(cases)) {
    for (let i = 0; i < Math.min(reps, 20); i++) await f();
    best[name] = Infinity;
  }
  for (let r = 0; r < rounds; r++) {
    for (const [name, [f, reps]] of Object.entries(cases)) {
      const start = performance.now();
      for (let i = 0; i < reps; i++) await f();
      best[name] = Math.min(best[name], ((performance.now() - start) * 1000) / reps);
    }
  }
  return best;
}
