import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's Node build registers no op gradients; the union package's does.
import '@tensorflow/tfjs';
import {
  adamState,
  CHECKED_VERSIONS,
  directOrtBinding,
  openDirectSession,
  registeredBackend,
  setAdamLearningRate,
} from './compat.js';
import { initBackend } from './engine/backend.js';
import { loadOnnxRuntime } from './node/onnx.js';
import { encodeModel, GraphBuilder } from './onnx/graph.js';
import { openPublicSession } from './runtime/ort_session.js';

const require = createRequire(import.meta.url);
const installed = (name: string): string => (require(`${name}/package.json`) as { version: string }).version;
const minor = (v: string) => v.split('.').slice(0, 2).join('.');

test('the dependencies compat.ts reaches into are the versions it was checked against (re-check compat.ts on an upgrade)', async (t) => {
  for (const [name, version] of Object.entries(CHECKED_VERSIONS)) {
    if (name === 'onnxruntime-node' && 'error' in (await loadOnnxRuntime())) {
      t.diagnostic('onnxruntime-node is not installed');
      continue;
    }
    assert.equal(
      minor(installed(name)),
      minor(version),
      `${name} ${installed(name)} installed, compat.ts checked against ${version}`,
    );
  }
});

test("onnxruntime-node: the native binding has the session compat.ts drives, and its runs equal the public API's", async (t) => {
  const loaded = await loadOnnxRuntime();
  if ('error' in loaded) return t.skip(`onnxruntime-node did not load: ${loaded.error}`);
  const binding = directOrtBinding();
  assert.ok(!('error' in binding), 'error' in binding ? binding.error : '');
  const g = new GraphBuilder('double');
  const x = g.input('x', ['N', 3]);
  g.output(g.node('Add', [x, x], {}, 'sum'), 'y', ['N', 3]);
  const model = encodeModel(g.build('y = x + x'));
  const direct = await openDirectSession(loaded.ort, model, {}, ['y'], true);
  const viaApi = await openPublicSession(loaded.ort, model, {}, ['y'], false);
  assert.equal(direct.direct, true);
  const feeds = { x: new loaded.ort.Tensor('float32', Float32Array.from([1, 2, 3, -4, 5.5, 6]), [2, 3]) };
  const a = direct.run(feeds);
  assert.ok(!(a instanceof Promise), 'a direct run is synchronous');
  const b = await viaApi.run(feeds);
  assert.deepEqual([...(a as Record<string, { data: Float32Array }>).y.data], [2, 4, 6, -8, 11, 12]);
  assert.deepEqual([...(a as Record<string, { data: Float32Array }>).y.data], [...(b.y.data as Float32Array)]);
  await Promise.all([direct.release(), viaApi.release()]);
});

test('tfjs: the engine registry holds the backend instance that kernels are set up on', async () => {
  await initBackend('wasm');
  const instance = registeredBackend('wasm');
  assert.ok(instance !== undefined, 'the wasm instance is registered');
  assert.equal(instance, tf.backend(), 'it is the active backend');
  assert.equal(typeof instance.numDataIds, 'function');
  assert.equal(registeredBackend('no-such-backend'), undefined);
});

test('tfjs: AdamOptimizer keeps the state compat.ts reads, and setting the step size changes the next update', async () => {
  await initBackend('wasm');
  const step = (learningRate: number, setTo?: number): number => {
    const x = tf.variable(tf.scalar(1));
    const adam = tf.train.adam(learningRate) as tf.AdamOptimizer;
    if (setTo !== undefined) setAdamLearningRate(adam, setTo);
    adam.minimize(() => tf.mul(x, x) as tf.Scalar);
    const state = adamState(adam);
    assert.equal(state.learningRate, setTo ?? learningRate);
    for (const k of ['beta1', 'beta2', 'epsilon'] as const) assert.equal(typeof state[k], 'number', k);
    assert.ok(
      Math.abs(state.accBeta1.dataSync()[0] - 0.9 * 0.9) < 1e-6,
      'accBeta1 after one step is beta1^2 (tfjs starts it at beta1)',
    );
    assert.ok(Math.abs(state.accBeta2.dataSync()[0] - 0.999 * 0.999) < 1e-6);
    assert.equal(state.accumulatedFirstMoment.length, 1);
    assert.ok(
      state.accumulatedFirstMoment[0].variable instanceof tf.Variable &&
        state.accumulatedSecondMoment[0].variable instanceof tf.Variable,
    );
    const after = x.dataSync()[0];
    adam.dispose();
    x.dispose();
    return after;
  };
  const small = step(0.01);
  assert.equal(step(0.5, 0.01), small, 'the set step size is the one used');
  assert.notEqual(step(0.5), small);
});
