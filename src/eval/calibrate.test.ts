import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../rng.js';
import { calibrate, formatThreshold, pairedDropStdErr, paretoFrontier, REFERENCE_GRID } from './calibrate.js';
import { normalQuantile } from './normal_quantile.js';
import { cumulativeExitMacs } from '../model/macs.js';
import type { OperatingPoint } from './calibrate.js';

test('cumulativeExitMacs adds every segment and head up to each exit', () => {
  assert.deepEqual(cumulativeExitMacs({ segments: [10, 100, 50], heads: [5, 7, 0] }), [15, 122, 172]);
});

test('paretoFrontier keeps only points more accurate than every cheaper one', () => {
  const p = (macs: number, accuracy: number): OperatingPoint => ({
    thresholds: [macs],
    accuracy,
    exitFractions: [],
    macs,
  });
  const frontier = paretoFrontier([p(5, 0.9), p(1, 0.8), p(3, 0.7), p(4, 0.9), p(2, 0.85), p(6, 0.95)]);
  assert.deepEqual(
    frontier.map((x) => x.macs),
    [1, 2, 4, 6],
  );
});

test('calibrate sweeps the grid, and picks the cheapest setting within the tolerance', () => {
  const rng = new Rng(3);
  const n = 400;
  const classes = 3;
  const labels = Uint8Array.from({ length: n }, () => rng.int(classes));
  // Exit 1 is confident and right on even samples, unsure and wrong on odd ones; exit 2 is always right.
  const exit1 = new Float32Array(n * classes);
  const exit2 = new Float32Array(n * classes);
  for (let i = 0; i < n; i++) {
    const confident = i % 2 === 0;
    for (let c = 0; c < classes; c++)
      exit1[i * classes + c] = confident ? (c === labels[i] ? 8 : 0) : c === (labels[i] + 1) % classes ? 0.3 : 0;
    exit2[i * classes + labels[i]] = 5;
  }
  const c = calibrate({
    exitLogits: [exit1, exit2],
    labels,
    classes,
    exitMacs: [10, 100],
    baselineAccuracy: 1,
    grid: [0.001, 0.01, 0.1, 1, 2],
  });
  // 0.01 lets exactly the confident half leave (their entropy is about 0.0013 < 0.01), keeping 100 %.
  assert.deepEqual(c.chosen.thresholds, [0.01]);
  assert.equal(c.chosen.accuracy, 1);
  assert.deepEqual(c.chosen.exitFractions, [0.5, 0.5]);
  assert.equal(c.chosen.macs, 55);
  assert.ok(c.metTarget);
  // Allowing a 50-point drop picks the cheapest point: everything at exit 1.
  const loose = calibrate({
    exitLogits: [exit1, exit2],
    labels,
    classes,
    exitMacs: [10, 100],
    baselineAccuracy: 1,
    maxDrop: 0.5,
    grid: [0.001, 0.01, 0.1, 1, 2],
  });
  assert.deepEqual(loose.chosen.exitFractions, [1, 0]);
  assert.equal(loose.chosen.accuracy, 0.5);
  // An unreachable target falls back to the most accurate point and says so.
  const strict = calibrate({
    exitLogits: [exit1, exit2],
    labels,
    classes,
    exitMacs: [10, 100],
    baselineAccuracy: 1.01,
    grid: [0.01, 2],
  });
  assert.equal(strict.metTarget, false);
  assert.equal(strict.chosen.accuracy, 1);
});

test("the fine grid adds each exit's entropy quantiles and finds settings between the reference's coarse top values", () => {
  const rng = new Rng(4);
  const n = 1000;
  const classes = 10;
  const labels = Uint8Array.from({ length: n }, () => rng.int(classes));
  // Exit 1 is unsure everywhere (entropy between 1 and 2): right on half the samples (entropy
  // 1.17-1.36), wrong on the others (1.55-1.74). Exit 2 is always right.
  const exit1 = new Float32Array(n * classes);
  const exit2 = new Float32Array(n * classes);
  for (let i = 0; i < n; i++) {
    const sure = i % 2 === 0;
    const top = sure ? 2.9 + rng.next() * 0.3 : 2.3 + rng.next() * 0.3; // logit of the favoured class, others 0
    const favoured = sure ? labels[i]! : (labels[i]! + 1) % classes;
    exit1[i * classes + favoured] = top;
    exit2[i * classes + labels[i]!] = 8;
  }
  const args = { exitLogits: [exit1, exit2], labels, classes, exitMacs: [10, 100], baselineAccuracy: 1 };
  const reference = calibrate({ ...args, grid: 'reference' });
  const fine = calibrate({ ...args, grid: 'fine' });
  // Every entropy lies in (1, 2): the reference grid has nothing between "nobody leaves" and "all leave".
  assert.deepEqual(reference.chosen.exitFractions, [0, 1]);
  assert.equal(reference.grid[0]!.length, 17);
  assert.deepEqual([1.15112949607609, 0.0001, 10, 2.302585].map(formatThreshold), ['1.151', '0.0001', '10', '2.303']);
  // The fine grid has cut points inside (1, 2) and lets the sure half leave at exit 1, keeping 100 %.
  assert.ok(fine.grid[0]!.filter((t) => t > 1 && t < 2).length >= 15, `${fine.grid[0]}`);
  assert.ok(fine.grid[0]!.length > 17 && REFERENCE_GRID.every((t) => fine.grid[0]!.includes(t)));
  assert.equal(fine.chosen.accuracy, 1);
  assert.ok(fine.chosen.exitFractions[0]! >= 0.45, `exit-1 fraction ${fine.chosen.exitFractions[0]}`);
  assert.ok(fine.chosen.macs < reference.chosen.macs);
});

test('normalQuantile matches tabulated standard normal quantiles', () => {
  const table: [number, number][] = [
    [0.5, 0],
    [0.9, 1.2815515655],
    [0.95, 1.644853627],
    [0.975, 1.959963985],
    [0.99, 2.326347874],
    [0.001, -3.090232306],
    [0.02, -2.053748911],
    [1 - 1e-6, 4.753424309],
  ];
  for (const [p, z] of table) assert.ok(Math.abs(normalQuantile(p) - z) < 1e-8, `p ${p}: ${normalQuantile(p)} vs ${z}`);
  assert.throws(() => normalQuantile(1), RangeError);
  assert.throws(() => normalQuantile(0), RangeError);
});

/**
 * A noisy two-exit problem: exit 1 right with a probability that falls with its entropy, exit 2 and the baseline
 * mostly right.
 */
function noisyProblem(seed: number, n: number) {
  const rng = new Rng(seed);
  const classes = 4;
  const labels = Uint8Array.from({ length: n }, () => rng.int(classes));
  const exit1 = new Float32Array(n * classes);
  const exit2 = new Float32Array(n * classes);
  const baselineCorrect = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const sharpness = 6 * rng.next();
    const guess = rng.next() < 0.35 + sharpness / 10 ? labels[i]! : rng.int(classes);
    exit1[i * classes + guess] = sharpness;
    const right2 = rng.next() < 0.9;
    exit2[i * classes + (right2 ? labels[i]! : (labels[i]! + 1) % classes)] = 5;
    baselineCorrect[i] = rng.next() < 0.9 ? 1 : 0;
  }
  return {
    exitLogits: [exit1, exit2],
    labels,
    classes,
    exitMacs: [10, 100],
    baselineCorrect,
    baselineAccuracy: baselineCorrect.reduce((s, b) => s + b, 0) / n,
  };
}

test('each point carries the paired standard error of its drop', () => {
  const problem = noisyProblem(5, 500);
  const c = calibrate({ ...problem, maxDrop: 0.02, grid: 'fine' });
  const entropyAndArgmax = (k: number, i: number) => {
    const row = Array.from(problem.exitLogits[k]!.subarray(i * problem.classes, (i + 1) * problem.classes));
    const m = Math.max(...row);
    const e = row.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    return { h: -e.reduce((a, v) => a + (v / s) * Math.log(v / s), 0), argmax: row.indexOf(m) };
  };
  for (const p of [c.chosen, ...c.frontier.slice(0, 5)]) {
    // Direct: per-sample differences, their mean and population variance.
    const d = Array.from(problem.labels, (label, i) => {
      const first = entropyAndArgmax(0, i);
      const answer = first.h < p.thresholds[0]! ? first.argmax : entropyAndArgmax(1, i).argmax;
      return problem.baselineCorrect[i]! - (answer === label ? 1 : 0);
    });
    const mean = d.reduce((a, b) => a + b, 0) / d.length;
    const variance = d.reduce((a, b) => a + (b - mean) ** 2, 0) / d.length;
    assert.ok(Math.abs(mean - (problem.baselineAccuracy - p.accuracy)) < 1e-12);
    assert.ok(
      Math.abs(p.dropStdErr! - Math.sqrt(variance / d.length)) < 1e-9,
      `${p.dropStdErr} vs ${Math.sqrt(variance / d.length)}`,
    );
  }
  assert.equal(pairedDropStdErr(0, 0, 10), 0);
});

test('with a confidence, calibration picks the cheapest setting whose drop bound holds', () => {
  const problem = noisyProblem(6, 800);
  const plain = calibrate({ ...problem, maxDrop: 0.03, grid: 'fine' });
  assert.equal(plain.confidence, null);
  const even = calibrate({ ...problem, maxDrop: 0.03, grid: 'fine', confidence: 0.5 });
  assert.deepEqual(even.chosen.thresholds, plain.chosen.thresholds);
  let previousMacs = plain.chosen.macs;
  for (const confidence of [0.5, 0.8, 0.9, 0.99]) {
    const c = calibrate({ ...problem, maxDrop: 0.03, grid: 'fine', confidence });
    assert.equal(c.confidence, confidence);
    assert.ok(c.metTarget);
    const z = normalQuantile(confidence);
    const bound = (p: OperatingPoint) => problem.baselineAccuracy - p.accuracy + z * p.dropStdErr!;
    assert.ok(bound(c.chosen) <= 0.03 + 1e-12, `confidence ${confidence}: bound ${bound(c.chosen)}`);
    // No cheaper setting of the sweep meets the bound: rerun the sweep on the chosen point's exit-1 thresholds
    // below it.
    for (const t of c.grid[0]!.filter((t) => t > c.chosen.thresholds[0]!)) {
      const cheaper = calibrate({ ...problem, maxDrop: 1, grid: [t] }).chosen;
      assert.ok(cheaper.macs < c.chosen.macs || cheaper.macs === c.chosen.macs);
      if (cheaper.macs < c.chosen.macs)
        assert.ok(bound(cheaper) > 0.03, `threshold ${t} is cheaper and meets the bound`);
    }
    // A higher confidence never buys a cheaper setting.
    assert.ok(c.chosen.macs >= previousMacs, `confidence ${confidence}: ${c.chosen.macs} < ${previousMacs}`);
    previousMacs = c.chosen.macs;
  }
  const strict = calibrate({ ...problem, maxDrop: 0.03, grid: 'fine', confidence: 0.99 });
  assert.ok(strict.chosen.macs > plain.chosen.macs, 'a 99 % bound should cost more than the bare tolerance here');
  assert.throws(() => calibrate({ ...problem, baselineCorrect: undefined, confidence: 0.9 }), /baselineCorrect/);
  assert.throws(() => calibrate({ ...problem, confidence: 1 }), /confidence/);
  assert.throws(() => calibrate({ ...problem, confidence: 0.4 }), /confidence/);
  assert.throws(() => calibrate({ ...problem, baselineCorrect: new Uint8Array(3) }), /baseline answers/);
  assert.throws(
    () => calibrate({ ...problem, baselineAccuracy: problem.baselineAccuracy + 0.01 }),
    /disagrees with the baseline's answers/,
  );
});
