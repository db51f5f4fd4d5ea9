/** Command-line plumbing shared by the benchmark scripts. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * A benchmark's options (plus -h / --help): with --help prints `help` and exits; an unknown or
 * malformed option prints one line and `help` and exits with status 1.
 */
export function benchArgs<const O extends Options>(
  options: O,
  help: string,
): ReturnType<typeof parseArgs<{ options: O }>>['values'] {
  let parsed: ReturnType<typeof parseArgs<{ options: O }>>;
  try {
    parsed = parseArgs({ options: { ...options, help: { type: 'boolean', short: 'h' } } }) as ReturnType<
      typeof parseArgs<{ options: O }>
    >;
  } catch (e) {
    process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n${help}`);
    process.exit(1);
  }
  if ((parsed.values as { help?: boolean }).help) {
    process.stdout.write(help);
    process.exit(0);
  }
  return parsed.values;
}

/** An option's integer value >= 1, or `fallback` when absent. */
export function positiveOption(raw: string | undefined, name: string, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: expected an integer >= 1, got '${raw}'`);
  return n;
}

/** The --model directory (default the shipped B-LeNet), checked to hold a saved model. */
export function modelDirOption(raw: string | undefined): string {
  const dir = raw ?? 'models/b-lenet-mnist';
  if (!existsSync(join(dir, 'model.json')))
    throw new Error(`${dir}: no model.json; pass --model DIR (a directory written by 'branchynet train')`);
  return dir;
}

/** Runs a benchmark's main, printing a failure as one line and exit status 1. */
export function runBench(main: () => Promise<void>): void {
  main().catch((e: unknown) => {
    process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  });
}
