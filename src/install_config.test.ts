import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

// `npm ci` must reach the npm registry only. onnxruntime-node's install script would download
// CUDA provider libraries from NuGet on linux/x64; two switches stop it, one per npm generation.
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function npmrcValue(key: string): string | undefined {
  const line = readFileSync(join(root, '.npmrc'), 'utf8')
    .split('\n')
    .find((l) => l.trim().startsWith(`${key}=`));
  return line?.trim().slice(key.length + 1);
}

test('npm 11+ skips the install scripts of dependencies: package.json denies them explicitly', () => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  for (const name of ['onnxruntime-node', 'protobufjs', 'core-js'])
    assert.equal(pkg.allowScripts?.[name], false, `allowScripts.${name}`);
});

const ortScript = (() => {
  try {
    return join(
      dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json')),
      'script',
      'install.js',
    );
  } catch {
    return null;
  }
})();

test(
  "npm 10 runs onnxruntime-node's install script: the .npmrc flag makes it exit before any download",
  { skip: ortScript && existsSync(ortScript) ? false : 'onnxruntime-node is not installed' },
  () => {
    const flag = npmrcValue('onnxruntime-node-install');
    assert.equal(flag, 'skip');
    // npm hands project config to scripts as npm_config_* variables. A proxy that refuses every
    // connection makes a download attempt fail at once instead of passing silently.
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      npm_config_onnxruntime_node_install: flag,
      GLOBAL_AGENT_HTTPS_PROXY: 'http://127.0.0.1:9',
      GLOBAL_AGENT_HTTP_PROXY: 'http://127.0.0.1:9',
    };
    delete env.ONNXRUNTIME_NODE_INSTALL;
    const run = spawnSync(process.execPath, [ortScript!], { env, encoding: 'utf8', timeout: 20_000 });
    assert.equal(run.status, 0, `exit ${run.status}: ${run.stdout}${run.stderr}`);
    assert.equal(`${run.stdout}${run.stderr}`.trim(), '');
  },
);
