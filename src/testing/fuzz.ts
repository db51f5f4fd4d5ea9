import { UserError } from '../errors.js';
import type { Rng } from '../rng.js';

/**
 * Mutators and a verdict for fuzzing the file loaders: every corrupted input must either be
 * refused with a one-line `UserError` or load into a valid object; anything else is a bug.
 */

/** A mutated copy of a file, with a short description for failure reports. */
export interface Mutant<T> {
  how: string;
  value: T;
}

/** Values that make a declared size, count or offset absurd. */
const HUGE = [0x7fffffff, 0x80000000, 0xffffffff, 0x10000000] as const;

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[rng.int(items.length)];
}

/**
 * A byte-level mutation of `original`: truncation, bit flips, random runs, a random or empty file,
 * appended garbage, a broken magic number, or a huge / zero value in one of the little- or
 * big-endian uint32 header fields at `fields` (byte offsets).
 */
export function mutateBytes(
  rng: Rng,
  original: Uint8Array,
  fields: { offset: number; littleEndian: boolean }[] = [],
): Mutant<Uint8Array> {
  const n = original.length;
  const copy = () => new Uint8Array(original);
  const ops = [
    'truncate',
    'truncate',
    'empty',
    'flip',
    'flip',
    'flip',
    'run',
    'random',
    'append',
    'magic',
    'field',
    'field',
  ] as const;
  const op = pick(rng, ops);
  switch (op) {
    case 'truncate': {
      // Near the start (headers) as often as anywhere.
      const at = rng.next() < 0.5 ? rng.int(Math.min(n, 64)) : rng.int(n);
      return { how: `truncated to ${at} of ${n} bytes`, value: original.slice(0, at) };
    }
    case 'empty':
      return { how: 'zero-length file', value: new Uint8Array(0) };
    case 'flip': {
      const bytes = copy();
      const flips = 1 + rng.int(8);
      const where: number[] = [];
      for (let i = 0; i < flips && n > 0; i++) {
        const at = rng.next() < 0.4 ? rng.int(Math.min(n, 64)) : rng.int(n);
        bytes[at] ^= 1 << rng.int(8);
        where.push(at);
      }
      return { how: `bits flipped at bytes ${where.join(', ')}`, value: bytes };
    }
    case 'run': {
      const bytes = copy();
      const at = rng.int(Math.max(n, 1));
      const len = Math.min(n - at, 1 + rng.int(64));
      for (let i = 0; i < len; i++) bytes[at + i] = rng.int(256);
      return { how: `${len} random bytes at ${at}`, value: bytes };
    }
    case 'random': {
      const len = rng.int(2 * n + 16);
      const bytes = new Uint8Array(len);
      for (let i = 0; i < len; i++) bytes[i] = rng.int(256);
      return { how: `${len} random bytes instead of the file`, value: bytes };
    }
    case 'append': {
      const extra = 1 + rng.int(64);
      const bytes = new Uint8Array(n + extra);
      bytes.set(original);
      for (let i = n; i < n + extra; i++) bytes[i] = rng.int(256);
      return { how: `${extra} bytes appended`, value: bytes };
    }
    case 'magic': {
      const bytes = copy();
      const len = Math.min(n, 1 + rng.int(8));
      for (let i = 0; i < len; i++) bytes[i] = rng.int(256);
      return { how: `first ${len} bytes (the magic number) replaced`, value: bytes };
    }
    case 'field': {
      const usable = fields.filter((f) => f.offset + 4 <= n);
      if (usable.length === 0) return mutateBytes(rng, original);
      const f = pick(rng, usable);
      const value = rng.next() < 0.75 ? pick(rng, HUGE) : rng.int(4);
      const bytes = copy();
      new DataView(bytes.buffer).setUint32(f.offset, value, f.littleEndian);
      return { how: `uint32 at ${f.offset} set to ${value}`, value: bytes };
    }
  }
}

/** A float32 array file (weights, a checkpoint's data) with one value set to NaN or +-Infinity. */
export function injectNonFinite(rng: Rng, original: Uint8Array, dataStart: number): Mutant<Uint8Array> {
  const bytes = new Uint8Array(original);
  const values = Math.floor((bytes.length - dataStart) / 4);
  const index = rng.int(values);
  const value = pick(rng, [NaN, Infinity, -Infinity]);
  new DataView(bytes.buffer).setFloat32(dataStart + 4 * index, value, true);
  return { how: `float ${index} set to ${value}`, value: bytes };
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * Replacement values: wrong types, negative, fractional, huge, non-finite (1e999 parses as
 * Infinity), empty, huge arrays, paths, line breaks, long strings.
 */
function replacement(rng: Rng, old: Json): { how: string; value: Json } {
  const choices: [string, () => Json][] = [
    ['null', () => null],
    ['a string', () => 'x'],
    ['an empty string', () => ''],
    ['true', () => true],
    ['0', () => 0],
    ['-1', () => -1],
    ['1.5', () => 1.5],
    ['2^31', () => 2 ** 31],
    ['1e308', () => 1e308],
    ['Infinity', () => Infinity],
    ['-Infinity', () => -Infinity],
    ['an empty array', () => []],
    ['an empty object', () => ({})],
    ['a 100,000-element array', () => new Array(100000).fill(typeof old === 'number' ? old : 1)],
    ['wrapped in an array', () => [old]],
    ['a path outside the directory', () => '../../outside.bin'],
    ['a string with a line break', () => 'two\nlines'],
    ['a 10,000-character string', () => 'x'.repeat(10000)],
  ];
  if (typeof old === 'number') {
    choices.push(['negated', () => -old], ['doubled', () => old * 2], ['plus one', () => old + 1]);
  }
  const [how, make] = pick(rng, choices);
  return { how, value: make() };
}

/** Picks a node by a random walk from the root (each level as likely as the next, whatever its size). */
function walk(
  rng: Rng,
  root: Json,
): { parent: Json[] | { [key: string]: Json } | null; key: string | number; path: string } {
  let parent: Json[] | { [key: string]: Json } | null = null;
  let key: string | number = '';
  let node: Json = root;
  let path = '';
  for (;;) {
    const children: (string | number)[] = Array.isArray(node)
      ? node.map((_, i) => i)
      : node !== null && typeof node === 'object'
        ? Object.keys(node)
        : [];
    if (children.length === 0 || (parent !== null && rng.next() < 0.3)) return { parent, key, path };
    parent = node as Json[] | { [key: string]: Json };
    key = pick(rng, children);
    node = (parent as Record<string | number, Json>)[key];
    path += typeof key === 'number' ? `[${key}]` : `.${key}`;
  }
}

/**
 * JSON text; with `infinities`, +-Infinity written as numbers that JSON.parse reads back as such
 * (the replacer costs a call per value, so only where a mutation put one in).
 */
function stringify(value: Json, infinities = false): string {
  if (!infinities) return JSON.stringify(value, null, 1);
  return JSON.stringify(value, (_k, v) => (v === Infinity ? '@inf@' : v === -Infinity ? '@-inf@' : v), 1)
    .replace(/"@inf@"/g, '1e999')
    .replace(/"@-inf@"/g, '-1e999');
}

/**
 * A mutated JSON document: a field deleted, given another type or value (negative, huge, NaN in
 * the text, non-finite, a huge array), an array element duplicated; or the text truncated or
 * corrupted. Returns the text.
 */
export function mutateJson(rng: Rng, original: Json): Mutant<string> {
  const doc = structuredClone(original);
  const r = rng.next();
  if (r < 0.08) {
    const text = stringify(doc);
    const at = rng.int(text.length);
    return { how: `text truncated at ${at}`, value: text.slice(0, at) };
  }
  const { parent, key, path } = walk(rng, doc);
  if (parent === null) return { how: 'replaced by a number', value: '42' };
  const node = (parent as Record<string | number, Json>)[key];
  if (r < 0.12 && typeof node === 'number') {
    // NaN is not JSON: a writer that emits it makes a file JSON.parse refuses.
    (parent as Record<string | number, Json>)[key] = '@nan@';
    return { how: `${path} = NaN`, value: stringify(doc).replace('"@nan@"', 'NaN') };
  }
  if (r < 0.35) {
    if (Array.isArray(parent)) parent.splice(key as number, 1);
    else delete parent[key as string];
    return { how: `${path} deleted`, value: stringify(doc) };
  }
  if (r < 0.42 && Array.isArray(parent)) {
    parent.splice(key as number, 0, structuredClone(node));
    return { how: `${path} duplicated`, value: stringify(doc) };
  }
  const { how, value } = replacement(rng, node);
  (parent as Record<string | number, Json>)[key] = value;
  return { how: `${path} = ${how}`, value: stringify(doc, value === Infinity || value === -Infinity) };
}

/** Longest clear error message (a path, what was wrong, the value found, cut short). */
const MAX_MESSAGE = 500;

/** How one variant ended: refused with a UserError, or loaded and checked. */
export type Verdict = 'UserError' | 'loaded';

/** One variant that ended any other way: the bug the fuzz test reports. */
export interface FuzzFailure {
  kind: string;
  how: string;
  problem: string;
}

/** Counts of the verdicts of one kind of file, and its failures. */
export class FuzzTally {
  readonly counts = new Map<string, Record<Verdict, number>>();
  readonly failures: FuzzFailure[] = [];

  /**
   * Runs `load` and then `check` on what it returns. A one-line UserError (from either) counts as
   * refused; a return that passes `check` as loaded; any other error, a multi-line message or a
   * run longer than `limitMs` is recorded as a failure.
   */
  async run<T>(
    kind: string,
    how: string,
    load: () => T | Promise<T>,
    check: (value: T) => void | Promise<void>,
    limitMs = 5000,
  ): Promise<Verdict | null> {
    const started = performance.now();
    let verdict: Verdict | null = null;
    let problem: string | null = null;
    try {
      const value = await load();
      await check(value);
      verdict = 'loaded';
    } catch (e) {
      if (e instanceof UserError) {
        if (process.env.FUZZ_TRACE) console.error(`TRACE ${kind} | ${how} | ${e.message}`);
        if (e.message.includes('\n') || e.message.trim() === '')
          problem = `UserError message is not one line: ${JSON.stringify(e.message.slice(0, 300))}`;
        else if (e.message.length > MAX_MESSAGE)
          problem = `UserError message of ${e.message.length} characters: ${e.message.slice(0, 200)}...`;
        else verdict = 'UserError';
      } else {
        const err = e as Error;
        problem =
          `${err?.name ?? typeof e}: ${String(err?.message ?? e)
            .split('\n')[0]
            .slice(0, 300)}` + (err?.stack ? ` at ${err.stack.split('\n')[1]?.trim()}` : '');
      }
    }
    const ms = performance.now() - started;
    if (problem === null && ms > limitMs) problem = `took ${ms.toFixed(0)} ms (limit ${limitMs})`;
    const counts = this.counts.get(kind) ?? { UserError: 0, loaded: 0 };
    this.counts.set(kind, counts);
    if (problem !== null) {
      this.failures.push({ kind, how, problem });
      return null;
    }
    counts[verdict!] += 1;
    return verdict;
  }

  /** One line per kind and a total, e.g. "weights.bin: 400 variants: 310 UserError, 90 loaded". */
  summary(): string[] {
    const fmt = (n: number) => n.toLocaleString('en-US');
    const lines: string[] = [];
    let refused = 0;
    let loaded = 0;
    for (const [kind, c] of this.counts) {
      lines.push(
        `${kind}: ${fmt(c.UserError + c.loaded)} variants: ${fmt(c.UserError)} UserError, ${fmt(c.loaded)} loaded`,
      );
      refused += c.UserError;
      loaded += c.loaded;
    }
    lines.push(
      `fuzz: ${fmt(refused + loaded + this.failures.length)} variants: ${fmt(refused)} UserError, ` +
        `${fmt(loaded)} loaded, ${fmt(this.failures.length)} failures`,
    );
    return lines;
  }

  /**
   * The failures (of kinds starting with `kind`), one line each, the same problem (by its first
   * words) reported once with a count.
   */
  report(kind = '', limit = 25): string {
    const byProblem = new Map<string, { first: FuzzFailure; count: number }>();
    for (const f of this.failures.filter((x) => x.kind.startsWith(kind))) {
      const key = `${f.kind}|${f.problem.replace(/\d+/g, '#').slice(0, 120)}`;
      const seen = byProblem.get(key);
      if (seen) seen.count += 1;
      else byProblem.set(key, { first: f, count: 1 });
    }
    return [...byProblem.values()]
      .slice(0, limit)
      .map(({ first, count }) => `${first.kind} (${count}x), e.g. ${first.how}: ${first.problem}`)
      .join('\n');
  }
}
