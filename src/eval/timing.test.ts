import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../engine/backend.js';
import { trunkOf } from '../model/io.js';
import { BranchyNet } from '../model/network.js';
import { randomDataset, tinySpec } from '../testing/fixtures.js';
import { earlyExit } from '../runtime/early_exit.js';
import type { StageRunner } from '../runtime/runner.js';
import { TfjsRunner } from '../runtime/tfjs_runner.js';
import { type Contender, interleaved } from './timing.js';

before(async () => {
  await initBackend('wasm');
});

/** Records which contender started a pass (its input's row count) when. */
function logging(name: string, inner: StageRunner<tf.Tensor>, log: string[]): StageRunner<tf.Tensor> {
  return {
    exits: inner.exits,
    classes: inner.classes,
    input: (images, count) => {
      log.push(`${name} ${count}`);
      return inner.input(images, count);
    },
    runStage: (k, a) => inner.runStage(k, a),
    selectRows: (a, r) => inner.selectRows(a, r),
    concatRows: (parts) => inner.concatRows(parts),
    dispose: (a) => inner.dispose(a),
  };
}

test('interleaved: every contender runs each chunk `passes` times, in ABBA order, with the answers of one plain run', async () => {
  const spec = tinySpec();
  const net = new BranchyNet(spec, 3);
  const data = randomDataset(10, spec.input, spec.classes, 2);
  const base = trunkOf(net);
  const thresholds = [0.5, 0.8];
  const log: string[] = [];
  const contenders: Contender[] = [
    { name: 'a', runner: logging('a', new TfjsRunner(net), log) as StageRunner<unknown>, thresholds, sync: true },
    { name: 'b', runner: logging('b', new TfjsRunner(base), log) as StageRunner<unknown>, thresholds: [], sync: false },
  ];
  // Chunks of 4, 4 and 2 images, the batch size 4: one input per pass.
  const chunks: [number, number][] = [];
  const { seconds, results } = await interleaved(contenders, data, 10, 4, 4, 2, (done, count) =>
    chunks.push([done, count]),
  );
  assert.deepEqual(chunks, [
    [4, 10],
    [8, 10],
    [10, 10],
  ]);
  assert.deepEqual(log, ['a 4', 'b 4', 'b 4', 'a 4', 'b 4', 'a 4', 'a 4', 'b 4', 'a 2', 'b 2', 'b 2', 'a 2']);
  assert.ok(seconds.every((s) => s > 0));
  const models = [net, base];
  contenders.forEach((c, i) =>
    assert.deepEqual(results[i], earlyExit(new TfjsRunner(models[i]), data.images, 10, c.thresholds, 4), c.name),
  );
  await assert.rejects(() => interleaved(contenders, data, 10, 4, 4, 0), /passes must be an integer >= 1/);
  base.dispose();
  net.dispose();
});
