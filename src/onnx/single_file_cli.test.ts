import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadDataset } from '../data/index.js';
import { initBackend } from '../engine/backend.js';
import { loadOnnxRuntime } from '../node/onnx.js';
import { SingleFileSession, toPixels } from '../node/single_file_session.js';
import { decodeModel } from './graph.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(ROOT, 'dist', 'cli.js');
const LENET = join(ROOT, 'models', 'b-lenet-mnist');
const tmp = mkdtempSync(join(tmpdir(), 'bn-single-cli-'));
let ortError: string | null = null;

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout.trim(), stderr: r.stderr.trim() };
}

before(async () => {
  await initBackend('wasm');
  const loaded = await loadOnnxRuntime();
  if ('error' in loaded) ortError = loaded.error;
});
after(() => rmSync(tmp, { recursive: true, force: true }));

test('branchynet export --single --out DIR writes DIR/model.onnx; bad combinations are one-line errors', () => {
  const out = join(tmp, 'single');
  const r = cli('export', '--model', LENET, '--single', '--out', out);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, join(out, 'model.onnx'));
  assert.match(r.stderr, /^exported b-lenet as one early-exit graph: 2 exits, thresholds \[0\.25\], opset 13$/);
  const other = cli('export', '--model', LENET, '--single', '--out', join(tmp, 'other'), '--thresholds', '0.5');
  assert.equal(other.code, 0, other.stderr);
  const meta = (file: string) =>
    Object.fromEntries(decodeModel(readFileSync(file)).metadataProps!.map((p) => [p.key, p.value]));
  assert.equal(meta(join(tmp, 'other', 'model.onnx'))['branchynet.thresholds'], '[0.5]');
  for (const [args, message] of [
    [['--single'], /^branchynet: --single needs --out DIR/],
    [
      ['--single', '--out', out, '--thresholds', '1,2'],
      /^branchynet: --thresholds: b-lenet has 2 exits and needs 1 thresholds, got 2$/,
    ],
    [['--out', out, '--thresholds', '1'], /^branchynet: --thresholds applies to --single and --triton only$/],
    [['--out', out, '--triton', join(tmp, 't')], /^branchynet: --out with --triton needs --single/],
  ] as const) {
    const bad = cli('export', '--model', LENET, ...args);
    assert.equal(bad.code, 1, args.join(' '));
    assert.match(bad.stderr, message);
  }
});

/** Reads config.pbtxt's tensors (the subset of the text format that file uses). */
function parseConfig(text: string) {
  const field = (re: RegExp) => re.exec(text)?.[1];
  const tensors = (section: 'input' | 'output') => {
    const body = new RegExp(`^${section} \\[\\n([\\s\\S]*?)\\n\\]`, 'm').exec(text)![1];
    return body
      .split(/\n {2}\},?\n?/)
      .filter((b) => b.trim())
      .map((b) => ({
        name: /name: "([^"]+)"/.exec(b)![1],
        dataType: /data_type: (\w+)/.exec(b)![1],
        dims: /dims: \[ ([^\]]*) \]/
          .exec(b)![1]
          .split(',')
          .map((d) => Number(d.trim())),
        reshape: /reshape: \{ shape: \[ ([^\]]*)\]/.exec(b)?.[1].trim() ?? null,
      }));
  };
  return {
    name: field(/^name: "([^"]+)"/m),
    platform: field(/^platform: "([^"]+)"/m),
    maxBatchSize: Number(field(/^max_batch_size: (\d+)/m)),
    dynamicBatching: /^dynamic_batching \{/m.test(text),
    inputs: tensors('input'),
    outputs: tensors('output'),
  };
}

test("branchynet export --triton DIR: config.pbtxt matches the file's inputs and outputs", async (t) => {
  const repo = join(tmp, 'triton');
  const r = cli('export', '--model', LENET, '--triton', repo);
  assert.equal(r.code, 0, r.stderr);
  const configPath = join(repo, 'b-lenet', 'config.pbtxt');
  const modelPath = join(repo, 'b-lenet', '1', 'model.onnx');
  assert.deepEqual(r.stdout.split('\n'), [configPath, modelPath]);
  const config = parseConfig(readFileSync(configPath, 'utf8'));
  assert.equal(config.name, 'b-lenet');
  assert.equal(config.platform, 'onnxruntime_onnx');
  assert.ok(config.maxBatchSize >= 1);
  assert.ok(config.dynamicBatching);

  // Against the graph: every input without a default, every output; batch dimension first and dropped.
  const graph = decodeModel(readFileSync(modelPath)).graph!;
  const defaults = new Set(graph.initializer!.map((i) => i.name));
  const TYPES: Record<number, string> = { 1: 'TYPE_FP32', 7: 'TYPE_INT64' };
  const expected = (values: typeof graph.input) =>
    values!
      .filter((v) => !defaults.has(v.name!))
      .map((v) => {
        const dims = v.type!.tensorType!.shape!.dim!;
        assert.equal(dims[0].dimParam, 'N', `${v.name}: batch dimension first`);
        const rest = dims.slice(1).map((d) => Number(d.dimValue));
        return {
          name: v.name!,
          dataType: TYPES[v.type!.tensorType!.elemType!],
          dims: rest.length ? rest : [1],
          reshape: rest.length ? null : '',
        };
      });
  assert.deepEqual(config.inputs, expected(graph.input));
  assert.deepEqual(config.outputs, expected(graph.output));

  // What ONNX Runtime (Triton's backend) reports for the session: the same names.
  if (ortError) return t.skip(`onnxruntime-node did not load: ${ortError}`);
  const ort = ((await loadOnnxRuntime()) as { ort: typeof import('onnxruntime-node') }).ort;
  const session = await ort.InferenceSession.create(readFileSync(modelPath), { logSeverityLevel: 3 });
  assert.deepEqual(
    session.inputNames,
    config.inputs.map((i) => i.name),
  );
  assert.deepEqual(
    session.outputNames,
    config.outputs.map((o) => o.name),
  );
  await session.release();
});

test('the public-API script in docs/single-file.md classifies MNIST digits as the single file does', async (t) => {
  if (ortError) return t.skip(`onnxruntime-node did not load: ${ortError}`);
  const doc = readFileSync(join(ROOT, 'docs', 'single-file.md'), 'utf8');
  const script = /<!-- public-api-script -->\n```js\n([\s\S]*?)```/.exec(doc)?.[1];
  assert.ok(script, 'docs/single-file.md has the script block');
  const out = join(tmp, 'doc');
  assert.equal(cli('export', '--model', LENET, '--single', '--out', out).code, 0);
  // Beside the package's node_modules, so that 'onnxruntime-node' resolves as in a user's project.
  const scriptDir = mkdtempSync(join(ROOT, '.doc-script-'));
  try {
    const scriptPath = join(scriptDir, 'classify.mjs');
    writeFileSync(scriptPath, script);
    const test = loadDataset('mnist').test;
    const session = await SingleFileSession.create(readFileSync(join(out, 'model.onnx')), [28, 28, 1], 10);
    try {
      for (const i of [0, 1, 2, 3]) {
        const pixels = toPixels(test.images.subarray(i * 784, (i + 1) * 784));
        const raw = join(scriptDir, `digit${i}.raw`);
        writeFileSync(raw, Uint8Array.from(pixels));
        const r = spawnSync(process.execPath, [scriptPath, join(out, 'model.onnx'), raw], { encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
        const want = await session.classify(pixels, 1, 1);
        assert.equal(
          r.stdout.trim(),
          `class ${want.predictions[0]}, exit ${want.exitTaken[0]}, entropy ${want.entropies[0].toFixed(4)}`,
        );
        assert.equal(want.predictions[0], test.labels[i]);
      }
    } finally {
      await session.release();
    }
  } finally {
    rmSync(scriptDir, { recursive: true, force: true });
  }
});
