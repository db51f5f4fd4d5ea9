import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { build } from 'esbuild';

/** Bundles `entry` for the browser; returns every module it pulled in and what it left external. */
async function browserBundle(entry: string): Promise<{ inputs: string[]; external: string[]; bytes: number }> {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  const output = Object.values(result.metafile.outputs)[0];
  return {
    inputs: Object.keys(result.metafile.inputs),
    external: output.imports.filter((i) => i.external).map((i) => i.path),
    bytes: result.outputFiles[0].contents.length,
  };
}

test('the main entry bundles for the browser: no node: built-in, no native module, no tfjs', async () => {
  const { inputs, external } = await browserBundle('dist/index.js');
  assert.deepEqual(external, [], 'nothing left for a Node resolver');
  assert.deepEqual(
    inputs.filter((i) => i.startsWith('node:') || i.endsWith('.node')),
    [],
  );
  assert.deepEqual(
    inputs.filter((i) => i.includes('@tensorflow') || i.includes('onnxruntime-node')),
    [],
  );
  assert.ok(
    inputs.includes('dist/api/early_exit_model.js') && inputs.includes('dist/runtime/early_exit.js'),
    'the model API and the schedule are in it',
  );
});

test('the early-exit loop pulls in no tfjs and no ONNX Runtime', async () => {
  const { inputs } = await browserBundle('dist/runtime/early_exit.js');
  assert.deepEqual(
    inputs.filter((i) => i.includes('node_modules')),
    [],
  );
});

test('bundling fails for a module that needs Node, so the checks above can fail', async () => {
  await assert.rejects(() => browserBundle('dist/node.js'), /Could not resolve|node:/);
});

test('npm pack ships the library, the CLI and B-LeNet, and no tests, fixtures, benchmarks or other models', () => {
  const [pack] = JSON.parse(
    execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }),
  ) as [{ files: { path: string }[] }];
  const files = pack.files.map((f) => f.path);
  for (const needed of [
    'dist/index.js',
    'dist/node.js',
    'dist/cli.js',
    'dist/index.d.ts',
    'dist/browser/branchynet.js',
    'models/b-lenet-mnist/model.json',
    'models/b-lenet-mnist/weights.bin',
    'README.md',
    'package.json',
  ]) {
    assert.ok(files.includes(needed), `ships ${needed}`);
  }
  assert.deepEqual(
    files.filter((f) => /\.test\.|^dist\/bench\/|^dist\/testing\/|^dist\/build\//.test(f)),
    [],
  );
  assert.deepEqual(
    files.filter((f) => f.startsWith('models/') && !f.startsWith('models/b-lenet-mnist/')),
    [],
  );
});
