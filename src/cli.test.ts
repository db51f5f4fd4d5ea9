import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const CLI = join(dirname(fileURLToPath(import.meta.url)), 'cli.js');

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
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
  assert.match(r.stdout, /exit 1: segment 112500 MACs -> \[30,30,5\], head 107650 MACs; answering here costs 220150 MACs \(19\.3% of the trunk\)/);
});

test('bad input gives one clear line, never a stack trace', () => {
  assertOneLineError(run('eval', '--model', '/nonexistent/model'), /^branchynet: \/nonexistent\/model\/model\.json: no such file/);
  assertOneLineError(run('frobnicate'), /unknown command 'frobnicate'/);
  assertOneLineError(run('train', '--out', '/tmp/x', '--epochs', 'many'), /--epochs: expected an integer >= 0, got 'many'/);
  assertOneLineError(run('eval', '--bogus'), /Unknown option '--bogus'/);
  assertOneLineError(run('train', '--out', '/tmp/x', '--distill-temperature', '2'), /--distill-temperature: only with --distill A/);
  assertOneLineError(run('train', '--out', '/tmp/x', '--distill', '1', '--distill-temperature', '0'), /--distill-temperature: expected a number > 0/);
  const dir = mkdtempSync(join(tmpdir(), 'bn-cli-'));
  writeFileSync(join(dir, 'train-images-idx3-ubyte'), Buffer.from([0x1f, 0x8b, 8, 0, 1, 2, 3]));
  assertOneLineError(run('train', '--out', join(dir, 'out'), '--data-dir', dir), /train-images-idx3-ubyte: not an IDX file \(bad magic number; is it still gzip-compressed\?\)/);
});
