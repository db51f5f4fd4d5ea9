#!/usr/bin/env node
/**
 * Benchmark: early exit in headless Chromium, on onnxruntime-web through the demo page
 * (`branchynet demo`): time per sample of early exit against the full network at batch 1 and
 * batched, interleaved round by round in the page, with the accuracy, the exit mix and `parity`
 * (the fraction of test images whose label and exit equal Node's ONNX runtime's).
 * `npm run bench:browser -- --help` for the options; figures in docs/benchmarks.md.
 */
import { EarlyExitModel } from '../api/early_exit_model.js';
import { startDemo } from '../demo/demo_server.js';
import { initBackend } from '../engine/backend.js';
import { findChromium, launchChromium, NO_CHROMIUM } from '../testing/chromium.js';
import { benchArgs, modelDirOption, positiveOption, runBench } from './args.js';

const HELP = `usage: npm run bench:browser -- [options]
  --model DIR      saved model directory (default models/b-lenet-mnist)
  --images N       test images (default 500)
  --rounds N       timing rounds, after one warm-up round (default 5)
  --batch-size N   rows per batch of the batched runs (default 256)
  --json           print the figures as JSON
`;

const values = benchArgs(
  {
    model: { type: 'string' },
    images: { type: 'string' },
    rounds: { type: 'string' },
    'batch-size': { type: 'string' },
    json: { type: 'boolean' },
  },
  HELP,
);

interface PageFigures {
  accuracy: number;
  exitFractions: number[];
  answers: string[];
  measured: {
    msPerSample: number;
    baseline: { msPerSample: number };
    speedup: number;
    batched: { batchSize: number; msPerSample: number; baseline: { msPerSample: number }; speedup: number };
  };
  ort: { version: string; threads: number; crossOriginIsolated: boolean };
}

async function main(): Promise<void> {
  const dir = modelDirOption(values.model);
  const images = positiveOption(values.images, 'images', 500);
  const rounds = positiveOption(values.rounds, 'rounds', 5);
  const batch = positiveOption(values['batch-size'], 'batch-size', 256);
  const chromium = findChromium();
  if (!chromium) throw new Error(NO_CHROMIUM);
  await initBackend('wasm');
  const demo = await startDemo({ model: dir, testImages: images });
  try {
    if (!demo.testSet) throw new Error(`${dir}: no test images for this model`);
    let nodeRuntime = '';
    const nodeModel = await EarlyExitModel.load(demo.exportDir, {
      notice: (line) => (nodeRuntime = /^runtime: (.*)$/.exec(line)?.[1] ?? nodeRuntime),
    });
    const want = (await nodeModel.classifyBatch(demo.testSet.pixels, { batchSize: 64 })).map(
      (a) => `${a.label}@${a.exit}`,
    );
    await nodeModel.dispose();
    const browser = await launchChromium(chromium);
    try {
      const page = await browser.newPage();
      await page.goto(demo.url);
      await page.waitForSelector('body[data-ready="true"]', { timeout: 120_000 });
      const figures = (await page.evaluate(
        async (settings) => {
          const demoApi = (window as unknown as { branchynetDemo: Record<string, (o?: unknown) => Promise<unknown>> })
            .branchynetDemo;
          const classified = (await demoApi.classifyTestSet()) as object;
          return { ...classified, measured: await demoApi.measure(settings), ort: await demoApi.ortInfo() };
        },
        { images, rounds, batch },
      )) as PageFigures;
      const same = figures.answers.filter((a, i) => a === want[i]).length;
      const result = {
        model: dir,
        browser: `Chromium ${browser.version()}`,
        runtime: `onnxruntime-web ${figures.ort.version} (WebAssembly, ${figures.ort.threads} thread(s))`,
        nodeRuntime,
        images: want.length,
        rounds,
        accuracy: figures.accuracy,
        exitFractions: figures.exitFractions,
        msPerSample: figures.measured.msPerSample,
        baseline: figures.measured.baseline,
        speedup: figures.measured.speedup,
        batched: figures.measured.batched,
        parity: same / want.length,
      };
      if (values.json) {
        process.stdout.write(JSON.stringify(result, null, 2) + '\n');
      } else {
        const f = (x: number) => x.toFixed(3);
        process.stdout.write(
          [
            `${dir} in ${result.browser} on ${result.runtime}, ${result.images} test images, ${rounds} rounds`,
            `accuracy ${(100 * result.accuracy).toFixed(2)}%, exits ${result.exitFractions.map((x) => (100 * x).toFixed(1) + '%').join(' / ')}, parity with Node (${nodeRuntime}) ${(100 * result.parity).toFixed(2)}%`,
            `batch 1:   early exit ${f(result.msPerSample)} ms/sample, baseline ${f(result.baseline.msPerSample)} ms/sample, speed-up ${result.speedup.toFixed(2)}x`,
            `batch ${batch}: early exit ${f(result.batched.msPerSample)} ms/sample, baseline ${f(result.batched.baseline.msPerSample)} ms/sample, speed-up ${result.batched.speedup.toFixed(2)}x`,
          ].join('\n') + '\n',
        );
      }
    } finally {
      await browser.close();
    }
  } finally {
    await demo.close();
  }
}

runBench(main);
