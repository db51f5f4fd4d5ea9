import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { cifarTestDir, NO_CIFAR } from './testing/cifar.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), 'cli.js');
const REPO = join(dirname(CLI), '..');

function run(...args: string[]) {
  return runWith({}, ...args);
}

function runIn(cwd: string, ...args: string[]) {
  return runWith({ cwd }, ...args);
}

function runWith(options: { cwd?: string; env?: NodeJS.ProcessEnv }, ...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', ...options });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.trim() };
}

function assertOneLineError(r: ReturnType<typeof run>, pattern: RegExp): void {
  assert.equal(r.code, 1);
  assert.equal(r.stderr.split('\n').length, 1, `one line expected, got:\n${r.stderr}`);
  assert.match(r.stderr, pattern);
  assert.doesNotMatch(r.stderr, /\bat .*\.js:\d+/);
}

test('help lists the commands', () => {
  const r = run('--help');
  assert.equal(r.code, 0);
  for (const c of ['run', 'train', 'calibrate', 'eval', 'info']) assert.match(r.stdout, new RegExp(`^  ${c} `, 'm'));
});

test('info prints MACs per exit of B-LeNet', () => {
  const r = run('info');
  assert.equal(r.code, 0);
  assert.match(
    r.stdout,
    /exit 1: segment 112500 MACs -> \[30,30,5\], head 107650 MACs; answering here costs 220150 MACs \(19\.3% of the trunk\)/,
  );
});

test('info takes a saved model directory by its bare name', () => {
  const r = runIn(join(REPO, 'models'), 'info', '--model', 'b-lenet-mnist');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^b-lenet: input \[28,28,1\]/);
  assert.match(runIn(REPO, 'info', '--model', 'no-such-net').stderr, /no-such-net/);
});

test('calibrate keeps the validation split the model was trained with', () => {
  // models/b-lenet-mnist held out 5000 images: 100 would validate on its training images.
  assertOneLineError(
    runIn(REPO, 'calibrate', '--model', 'models/b-lenet-mnist', '--val-size', '100'),
    /--val-size: the model was trained with 5000 images held out/,
  );
});

test('without the native backend, only training says so: one notice line, never before an error (BRANCHYNET_ONEDNN=0)', () => {
  const env = { ...process.env, BRANCHYNET_ONEDNN: '0' };
  const noticeLines = (stderr: string) => stderr.split('\n').filter((l) => /native oneDNN backend unavailable/.test(l));
  assertOneLineError(
    runWith({ cwd: REPO, env }, 'calibrate', '--model', 'models/b-lenet-mnist', '--val-size', '100'),
    /--val-size: the model was trained with 5000 images held out/,
  );
  assertOneLineError(runWith({ env }, 'train', '--out', '/tmp/x', '--epochs', 'many'), /--epochs: expected an integer/);
  const info = runWith({ env }, 'info');
  assert.equal(info.code, 0, info.stderr);
  assert.deepEqual(noticeLines(info.stderr), []);
  const dir = mkdtempSync(join(tmpdir(), 'branchynet-notice-'));
  const train = runWith(
    { env },
    'train',
    '--out',
    join(dir, 'model'),
    '--train-limit',
    '64',
    '--val-size',
    '32',
    '--baseline-epochs',
    '0',
    '--epochs',
    '1',
    '--batch-size',
    '32',
  );
  assert.equal(train.code, 0, train.stderr);
  assert.equal(noticeLines(train.stderr).length, 1, train.stderr);
  // An explicit other backend asks for no notice.
  const wasm = runWith(
    { env },
    'train',
    '--backend',
    'wasm',
    '--out',
    join(dir, 'wasm'),
    '--train-limit',
    '64',
    '--val-size',
    '32',
    '--baseline-epochs',
    '0',
    '--epochs',
    '1',
    '--batch-size',
    '32',
  );
  assert.equal(wasm.code, 0, wasm.stderr);
  assert.deepEqual(noticeLines(wasm.stderr), []);
});

test('calibrate --confidence holds the drop as an upper bound and saves it with the thresholds', () => {
  assertOneLineError(
    runIn(REPO, 'calibrate', '--model', 'models/b-lenet-mnist', '--confidence', '1'),
    /--confidence: expected a probability in \[0\.5, 1\)/,
  );
  const dir = mkdtempSync(join(tmpdir(), 'branchynet-cal-'));
  for (const f of ['model.json', 'weights.bin', 'baseline.bin'])
    cpSync(join(REPO, 'models', 'b-lenet-mnist', f), join(dir, f));
  const r = runIn(REPO, 'calibrate', '--model', dir, '--max-drop', '0.2', '--confidence', '0.9');
  assert.equal(r.code, 0, r.stderr);
  const line = /drop (-?[\d.]+) \+- ([\d.]+) \(standard error\); max drop 0\.20 points at 90% confidence/.exec(
    r.stderr,
  );
  assert.ok(line, r.stderr);
  // The bound the line states holds: drop + 1.2816 x standard error <= 0.2 points (to the printed rounding).
  assert.ok(Number(line[1]) + 1.2816 * Number(line[2]) <= 0.2 + 0.02, r.stderr);
  const saved = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
  assert.equal(saved.calibration.confidence, 0.9);
  assert.deepEqual(saved.thresholds, saved.calibration.chosen.thresholds);
  assert.ok(saved.calibration.chosen.dropStdErr > 0);
});

test('a reader that closes the pipe early ends the command quietly', () => {
  // `true` exits at once, long before node has started: every write to stdout meets a closed pipe.
  const r = spawnSync('bash', ['-c', `set -o pipefail; "${process.execPath}" "${CLI}" info --model b-alexnet | true`], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /EPIPE|Error/);
});

test('download cifar10 puts the files where loading looks by default ($BRANCHYNET_CIFAR10_DIR)', (t) => {
  const withEnv = (value: string | undefined) => {
    const env = { ...process.env };
    delete env.BRANCHYNET_CIFAR10_DIR;
    if (value !== undefined) env.BRANCHYNET_CIFAR10_DIR = value;
    return runWith({ env }, 'download', 'cifar10');
  };
  assertOneLineError(
    withEnv(undefined),
    /--data-dir DIR is required: where to put the files \(or set BRANCHYNET_CIFAR10_DIR\)/,
  );
  const dev = cifarTestDir();
  if (dev === undefined) return t.skip(NO_CIFAR);
  const r = withEnv(dev);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /cifar10 is already there and verified/);
});

test('bad input gives one clear line, never a stack trace', () => {
  assertOneLineError(
    run('eval', '--model', '/nonexistent/model'),
    /^branchynet: \/nonexistent\/model\/model\.json: no such file/,
  );
  assertOneLineError(run('frobnicate'), /unknown command 'frobnicate'/);
  assertOneLineError(
    run('train', '--out', '/tmp/x', '--epochs', 'many'),
    /--epochs: expected an integer >= 0, got 'many'/,
  );
  assertOneLineError(run('eval', '--bogus'), /Unknown option '--bogus'/);
  assertOneLineError(run('run', '--passes', '5'), /^branchynet: --passes is not an option of run/);
  assertOneLineError(run('download', 'cifar10', '--model', 'x'), /--model is not an option of download/);
  assertOneLineError(
    run('train', '--out', '/tmp/x', '--init-from', 'a', '--baseline-from', 'b'),
    /--init-from already takes the baseline/,
  );
  assertOneLineError(
    run('train', '--out', '/tmp/x', '--distill-temperature', '2'),
    /--distill-temperature: only with --distill A/,
  );
  assertOneLineError(
    run('train', '--out', '/tmp/x', '--distill', '1', '--distill-temperature', '0'),
    /--distill-temperature: expected a number > 0/,
  );
  const dir = mkdtempSync(join(tmpdir(), 'bn-cli-'));
  writeFileSync(join(dir, 'train-images-idx3-ubyte'), Buffer.from([0x1f, 0x8b, 8, 0, 1, 2, 3]));
  assertOneLineError(
    run('train', '--out', join(dir, 'out'), '--data-dir', dir),
    /train-images-idx3-ubyte: not an IDX file \(bad magic number; is it still gzip-compressed\?\)/,
  );
});
