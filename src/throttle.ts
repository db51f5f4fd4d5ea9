/**
 * Passes on at most one line per `intervalMs` (the first only after a full interval), dropping the
 * rest: the log file of a long run shows it moving without filling up.
 */
export function throttledLines(
  write: (line: string) => void,
  intervalMs: number,
  now: () => number = Date.now,
): (line: string) => void {
  let last = now();
  return (line) => {
    const t = now();
    if (t - last < intervalMs) return;
    last = t;
    write(line);
  };
}
