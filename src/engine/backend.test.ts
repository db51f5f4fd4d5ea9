import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as tf from '@tensorflow/tfjs-core';
import { backendThreads, initBackend } from './backend.js';
import { kernelsRegistered } from './register_wasm_kernels.js';

test('initBackend: single-threaded SIMD wasm by default, cpu fallback, argument checks', async () => {
  assert.equal(await initBackend(), 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
  assert.equal(backendThreads(), 1);
  assert.equal(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'), true);
  assert.ok(kernelsRegistered());
  assert.equal(await initBackend('cpu'), 'cpu');
  assert.equal(tf.getBackend(), 'cpu');
  assert.equal(backendThreads(), 1);
  await assert.rejects(initBackend('wasm', { threads: 0 }), /threads/);
  await assert.rejects(initBackend('wasm', { threads: 9 }), /threads/);
  await assert.rejects(initBackend('wasm', { threads: 1.5 }), /threads/);
  assert.equal(await initBackend('wasm'), 'wasm');
});

// Threads are process-wide state (worker_threads, the wasm instance): check them in a child process,
// which must also exit on its own (pthreads unref'd) and print no tfjs-node banner.
const CHILD = `
import * as tf from '@tensorflow/tfjs-core';
import { backendThreads, initBackend } from ${JSON.stringify(new URL('./backend.js', import.meta.url).href)};
const xv = Array.from({ length: 2 * 17 * 13 * 3 }, (_, i) => Math.sin(i));
const fv = Array.from({ length: 5 * 5 * 3 * 4 }, (_, i) => Math.cos(i));
const step = () => tf.tidy(() => {
  const x = tf.tensor4d(xv, [2, 17, 13, 3]);
  const f = tf.tensor4d(fv, [5, 5, 3, 4]);
  const y = tf.conv2d(x, f, 2, 'same');
  return [...y.dataSync(), ...tf.conv2dTranspose(y, f, x.shape, 2, 'same').dataSync()];
});
await initBackend('cpu');
const ref = step();
await initBackend('wasm', { threads: 2 });
const threads = backendThreads();
const got = step();
await initBackend('wasm');
const threadsAfter = backendThreads();
const again = step();
const err = (a) => Math.max(...a.map((v, i) => Math.abs(v - ref[i])));
console.log(JSON.stringify({ threads, threadsAfter, err: err(got), errAfter: err(again) }));
`;

test('initBackend wasm {threads: 2}: threaded build under Node, exits cleanly, no banner', async () => {
  const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', CHILD], { timeout: 60_000 }, (error, out, err) => {
      if (error) reject(new Error(`${error.message}\n${err}`));
      else resolve({ stdout: out, stderr: err });
    });
  });
  const result = JSON.parse(stdout.trim().split('\n').pop()!) as {
    threads: number;
    threadsAfter: number;
    err: number;
    errAfter: number;
  };
  assert.equal(result.threads, 2);
  assert.equal(result.threadsAfter, 1);
  assert.ok(result.err < 1e-4, `threaded result differs from cpu by ${result.err}`);
  assert.ok(result.errAfter < 1e-4, `single-threaded result differs from cpu by ${result.errAfter}`);
  assert.doesNotMatch(stderr, /tfjs-node/);
});
