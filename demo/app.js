// The demo page of `branchynet demo`: the library's browser build on onnxruntime-web, all files local.
import * as ort from './lib/ort.wasm.min.mjs';
import { EarlyExitModel, exitsHere, rowEntropy } from './lib/branchynet.js';

const $ = (id) => document.getElementById(id);
const COLORS = ['#2d6cdf', '#f29d38', '#3aa66a', '#b5549b', '#8a6d3b', '#4aa3b5'];
const pct = (x) => `${(100 * x).toFixed(1)}%`;
const ms = (x) => `${x.toFixed(3)} ms`;

const info = await (await fetch('./info.json')).json();
const model = await EarlyExitModel.load('./model/', { ort });
const [H, W, C] = model.inputShape;
const SIZE = H * W * C;
const exits = model.exits;
const classes = model.classNames.length;
const { stages, baseline } = model.runners;
const maxEntropy = Math.log(classes);
if (!model.thresholds) model.thresholds = Array(exits - 1).fill(maxEntropy / 2);
const macs = model.macs();

const testPixels = info.testCount ? new Uint8Array(await (await fetch('./testset.bin')).arrayBuffer()) : null;
const testImage = (i) => testPixels.subarray(i * SIZE, (i + 1) * SIZE);
$('about').textContent =
  `${model.name}: ${exits} exits, input ${W}x${H}x${C}, ONNX Runtime Web ${ort.env.versions?.web ?? ''} ` +
  `(WebAssembly, ${ort.env.wasm.numThreads ?? 1} thread(s)${crossOriginIsolated ? ', cross-origin isolated' : ''})`;

// ---- one image: answer, entropy at each exit that ran, time against the full network ----

/** Runs one stage at a time until the exit rule fires: the entropies of the exits that ran. */
async function trace(pre) {
  const rows = [];
  let act = stages.input(pre, 1);
  for (let k = 0; k < exits; k++) {
    const out = await stages.runStage(k, act);
    stages.dispose(act);
    const { entropy } = rowEntropy(out.logits, 0, classes);
    const last = k === exits - 1;
    const leaves = exitsHere(entropy, k, model.thresholds, exits);
    rows.push({ exit: k + 1, entropy, threshold: last ? null : model.thresholds[k], leaves });
    if (leaves) {
      if (out.next) stages.dispose(out.next);
      break;
    }
    act = out.next;
  }
  return rows;
}

async function baselineOnce(pre, count) {
  const act = baseline.input(pre, count);
  const out = await baseline.runStage(0, act);
  baseline.dispose(act);
  return out;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

let lastImage = null;
async function explain(image) {
  lastImage = image;
  const pixels = image instanceof ImageData ? image : Uint8Array.from(image);
  const answer = await model.classify(pixels);
  const pre = model.preprocess(Float32Array.from(toChannels(pixels)));
  const rows = await trace(pre);
  // Times of one image, early exit and full network interleaved; the median of 7 of each.
  const early = [];
  const full = [];
  for (let r = 0; r < 7; r++) {
    let t = performance.now();
    await model.exitResults(pre, 1);
    early.push(performance.now() - t);
    t = performance.now();
    await baselineOnce(pre, 1);
    full.push(performance.now() - t);
  }
  $('label').textContent = answer.className;
  $('exit-line').textContent =
    `from exit ${answer.exit} of ${exits}${answer.exit < exits ? ' (early)' : ' (the full network)'}, ` +
    `confidence ${pct(answer.probabilities[answer.label])}`;
  $('trace').querySelector('tbody').replaceChildren(
    ...rows.map((r) => {
      const tr = document.createElement('tr');
      const verdict = r.threshold === null ? 'last exit' : r.leaves ? 'below: exits' : 'above: goes on';
      tr.innerHTML = `<td>${r.exit}</td><td>${r.entropy < 0.001 ? r.entropy.toExponential(1) : r.entropy.toFixed(3)}</td><td>${r.threshold === null ? '–' : r.threshold.toFixed(2)}</td><td class="${r.leaves ? 'yes' : 'no'}">${verdict}</td>`;
      return tr;
    }),
  );
  const e = median(early);
  const f = median(full);
  $('timing').textContent = `time ${ms(e)} against ${ms(f)} for the full network (${(f / e).toFixed(2)}x)`;
}

/** RGBA ImageData to the model's channels (as the library does), for the trace. */
function toChannels(pixels) {
  if (!(pixels instanceof ImageData)) return pixels;
  const out = new Float32Array(SIZE);
  const d = pixels.data;
  for (let p = 0; p < W * H; p++) {
    if (C === 1) out[p] = 0.299 * d[4 * p] + 0.587 * d[4 * p + 1] + 0.114 * d[4 * p + 2];
    else for (let c = 0; c < 3; c++) out[3 * p + c] = d[4 * p + c];
  }
  return out;
}

/** Shows `pixels` (H x W x C bytes) on a canvas at the network's size. */
function paint(canvas, pixels) {
  canvas.width = W;
  canvas.height = H;
  const img = new ImageData(W, H);
  for (let p = 0; p < W * H; p++) {
    for (let c = 0; c < 3; c++) img.data[4 * p + c] = pixels[C * p + (C === 1 ? 0 : c)];
    img.data[4 * p + 3] = 255;
  }
  canvas.getContext('2d').putImageData(img, 0, 0);
}

// ---- MNIST: a drawing pad scaled to 28x28 as MNIST digits are (20x20 box, centred by mass) ----

const pad = $('pad');
const padCtx = pad.getContext('2d', { willReadFrequently: true });
function clearPad() {
  padCtx.fillStyle = '#000';
  padCtx.fillRect(0, 0, pad.width, pad.height);
}

function padToDigit() {
  const { data } = padCtx.getImageData(0, 0, pad.width, pad.height);
  let x0 = pad.width, y0 = pad.height, x1 = -1, y1 = -1;
  for (let y = 0; y < pad.height; y++)
    for (let x = 0; x < pad.width; x++)
      if (data[4 * (y * pad.width + x)] > 20) {
        x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
      }
  if (x1 < 0) return null;
  const side = Math.max(x1 - x0, y1 - y0) + 1;
  const scale = 20 / side;
  const small = document.createElement('canvas');
  small.width = W;
  small.height = H;
  const ctx = small.getContext('2d', { willReadFrequently: true });
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, W, H);
  ctx.imageSmoothingQuality = 'high';
  const w = (x1 - x0 + 1) * scale;
  const h = (y1 - y0 + 1) * scale;
  ctx.drawImage(pad, x0, y0, x1 - x0 + 1, y1 - y0 + 1, (W - w) / 2, (H - h) / 2, w, h);
  // Shift so that the centre of mass is at the centre.
  let img = ctx.getImageData(0, 0, W, H);
  let m = 0, mx = 0, my = 0;
  for (let p = 0; p < W * H; p++) {
    const v = img.data[4 * p];
    m += v; mx += v * (p % W); my += v * Math.floor(p / W);
  }
  const dx = Math.round((W - 1) / 2 - mx / m);
  const dy = Math.round((H - 1) / 2 - my / m);
  const copy = document.createElement('canvas');
  copy.width = W;
  copy.height = H;
  copy.getContext('2d').putImageData(img, 0, 0);
  ctx.fillRect(0, 0, W, H);
  ctx.drawImage(copy, dx, dy);
  img = ctx.getImageData(0, 0, W, H);
  return img;
}

function setUpPad() {
  $('mnist-input').hidden = false;
  clearPad();
  let drawing = false;
  const at = (e) => {
    const r = pad.getBoundingClientRect();
    return [((e.clientX - r.left) * pad.width) / r.width, ((e.clientY - r.top) * pad.height) / r.height];
  };
  pad.addEventListener('pointerdown', (e) => {
    drawing = true;
    pad.setPointerCapture(e.pointerId);
    padCtx.strokeStyle = '#fff';
    padCtx.lineWidth = 22;
    padCtx.lineCap = padCtx.lineJoin = 'round';
    padCtx.beginPath();
    padCtx.moveTo(...at(e));
    padCtx.lineTo(...at(e));
    padCtx.stroke();
  });
  pad.addEventListener('pointermove', (e) => {
    if (!drawing) return;
    padCtx.lineTo(...at(e));
    padCtx.stroke();
  });
  const end = async () => {
    if (!drawing) return;
    drawing = false;
    const digit = padToDigit();
    if (!digit) return;
    $('preview').width = W;
    $('preview').height = H;
    $('preview').getContext('2d').putImageData(digit, 0, 0);
    await explain(digit);
  };
  pad.addEventListener('pointerup', end);
  pad.addEventListener('pointercancel', end);
}

// ---- CIFAR-10 and other colour models: a strip of test images, or a picture of one's own ----

function setUpPictures() {
  $('cifar-input').hidden = false;
  $('clear').hidden = true;
  $('random').hidden = true;
  const strip = $('strip');
  const shown = Math.min(16, info.testCount);
  for (let i = 0; i < shown; i++) {
    const button = document.createElement('button');
    button.type = 'button';
    button.setAttribute('role', 'listitem');
    button.setAttribute('aria-pressed', 'false');
    button.setAttribute('aria-label', `test image ${i + 1}: ${model.classNames[info.testLabels[i]]}`);
    const canvas = document.createElement('canvas');
    paint(canvas, testImage(i));
    button.append(canvas);
    button.addEventListener('click', () => pickTest(i));
    strip.append(button);
  }
  const drop = $('drop');
  const usePicture = async (file) => {
    if (!file) return;
    const bitmap = await createImageBitmap(file);
    const side = Math.min(bitmap.width, bitmap.height);
    const canvas = $('preview');
    canvas.width = W;
    canvas.height = H;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(bitmap, (bitmap.width - side) / 2, (bitmap.height - side) / 2, side, side, 0, 0, W, H);
    await explain(ctx.getImageData(0, 0, W, H));
  };
  drop.addEventListener('dragover', (e) => (e.preventDefault(), drop.classList.add('over')));
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    usePicture(e.dataTransfer.files[0]);
  });
  $('file').addEventListener('change', (e) => usePicture(e.target.files[0]));
}

async function pickTest(i) {
  for (const b of $('strip').children) b.setAttribute('aria-pressed', String(b === $('strip').children[i]));
  paint($('preview'), testImage(i));
  if (info.dataset === 'mnist') {
    clearPad();
    padCtx.imageSmoothingEnabled = false;
    padCtx.drawImage($('preview'), 0, 0, pad.width, pad.height);
  }
  await explain(testImage(i));
  $('exit-line').textContent += `; true label ${model.classNames[info.testLabels[i]]}`;
}

// ---- thresholds against accuracy, exit mix and speed-up over the test images ----

/** Entropy and prediction of every test image at every exit, and the full network's predictions. */
async function allExits() {
  const n = info.testCount;
  const pre = model.preprocess(Float32Array.from(testPixels));
  const entropy = Array.from({ length: exits }, () => new Float32Array(n));
  const predicted = Array.from({ length: exits }, () => new Int32Array(n));
  let act = stages.input(pre, n);
  for (let k = 0; k < exits; k++) {
    const out = await stages.runStage(k, act);
    stages.dispose(act);
    for (let i = 0; i < n; i++) {
      const r = rowEntropy(out.logits, i, classes);
      entropy[k][i] = r.entropy;
      predicted[k][i] = r.argmax;
    }
    act = out.next;
  }
  const base = await baselineOnce(pre, n);
  let right = 0;
  for (let i = 0; i < n; i++) right += rowEntropy(base.logits, i, classes).argmax === info.testLabels[i] ? 1 : 0;
  return { n, entropy, predicted, baselineAccuracy: right / n };
}

let sweep = null;
function updateTradeOff() {
  const t = model.thresholds;
  const { n, entropy, predicted } = sweep;
  const counts = new Array(exits).fill(0);
  let right = 0;
  let cost = 0;
  for (let i = 0; i < n; i++) {
    let k = 0;
    while (!exitsHere(entropy[k][i], k, t, exits)) k++;
    counts[k]++;
    cost += macs.perExit[k];
    if (predicted[k][i] === info.testLabels[i]) right++;
  }
  $('accuracy').textContent =
    `accuracy ${pct(right / n)} on ${n} test images (full network ${pct(sweep.baselineAccuracy)})`;
  $('mix').replaceChildren(
    ...counts.map((c, k) => {
      const bar = document.createElement('span');
      bar.style.width = pct(c / n);
      bar.style.background = COLORS[k % COLORS.length];
      bar.title = `exit ${k + 1}: ${pct(c / n)}`;
      return bar;
    }),
  );
  $('mix-text').textContent = 'exit mix: ' + counts.map((c, k) => `exit ${k + 1} ${pct(c / n)}`).join(', ');
  $('speedup').textContent =
    `speed-up by multiply-accumulates: ${(macs.baseline / (cost / n)).toFixed(2)}x against the full network`;
}

function setUpSliders() {
  const box = $('sliders');
  const top = Math.max(maxEntropy, ...model.thresholds);
  model.thresholds.forEach((value, k) => {
    const row = document.createElement('div');
    row.className = 'slider';
    row.innerHTML =
      `<label for="t${k}">exit ${k + 1}</label>` +
      `<input id="t${k}" type="range" min="0" max="${top.toFixed(2)}" step="0.01" value="${value}">` +
      `<output for="t${k}">${value.toFixed(2)}</output>`;
    const input = row.querySelector('input');
    input.addEventListener('input', () => {
      const t = model.thresholds;
      t[k] = Number(input.value);
      model.thresholds = t;
      row.querySelector('output').textContent = t[k].toFixed(2);
      updateTradeOff();
    });
    // The answer of the image on show, again under the new threshold.
    input.addEventListener('change', () => lastImage && explain(lastImage));
    box.append(row);
  });
}

// ---- the benchmark: batch 1 and batched, early exit against the full network, interleaved ----

/**
 * Times early exit and the full network on the first `images` test images, per image: batch 1
 * and batches of `batch`, interleaved over `rounds` rounds after one warm-up round.
 */
async function measure({ images = 200, rounds = 3, batch = 64 } = {}) {
  const n = Math.min(info.testCount, images);
  const pre = model.preprocess(Float32Array.from(testPixels.subarray(0, n * SIZE)));
  const one = Array.from({ length: n }, (_, i) => pre.slice(i * SIZE, (i + 1) * SIZE));
  const time = async (fn) => {
    const t = performance.now();
    await fn();
    return performance.now() - t;
  };
  const earlyOne = () => one.reduce((p, x) => p.then(() => model.exitResults(x, 1)), Promise.resolve());
  const fullOne = () => one.reduce((p, x) => p.then(() => baselineOnce(x, 1)), Promise.resolve());
  const earlyBatched = () => model.exitResults(pre, n, { batchSize: batch });
  const fullBatched = async () => {
    for (let i = 0; i < n; i += batch)
      await baselineOnce(pre.subarray(i * SIZE, Math.min(n, i + batch) * SIZE), Math.min(batch, n - i));
  };
  const runs = [earlyOne, fullOne, earlyBatched, fullBatched];
  for (const run of runs) await run(); // warm-up
  const sums = [0, 0, 0, 0];
  for (let r = 0; r < rounds; r++) for (let j = 0; j < runs.length; j++) sums[j] += await time(runs[j]);
  const [early, full, earlyB, fullB] = sums.map((s) => s / rounds / n);
  return {
    images: n,
    rounds,
    batch,
    msPerSample: early,
    baseline: { msPerSample: full },
    speedup: full / early,
    batched: { batchSize: batch, msPerSample: earlyB, baseline: { msPerSample: fullB }, speedup: fullB / earlyB },
  };
}

/** Every test image's label and exit under the current thresholds, batched; accuracy and exit mix. */
async function classifyTestSet() {
  const answers = await model.classifyBatch(testPixels, { batchSize: 64 });
  const fractions = new Array(exits).fill(0);
  for (const a of answers) fractions[a.exit - 1] += 1 / answers.length;
  const right = answers.filter((a, i) => a.label === info.testLabels[i]).length;
  return {
    accuracy: right / answers.length,
    exitFractions: fractions,
    answers: answers.map((a) => `${a.label}@${a.exit}`),
  };
}

async function benchmark() {
  const button = $('bench');
  button.disabled = true;
  button.textContent = 'Running…';
  const m = await measure();
  const row = (name, e, f) =>
    `<tr><th scope="row">${name}</th><td>${ms(e)}</td><td>${ms(f)}</td><td>${(f / e).toFixed(2)}x</td></tr>`;
  $('bench-table').querySelector('tbody').innerHTML =
    row('batch 1, per image', m.msPerSample, m.baseline.msPerSample) +
    row(`batch ${m.batch}, per image`, m.batched.msPerSample, m.batched.baseline.msPerSample);
  $('bench-table').hidden = false;
  button.disabled = false;
  button.textContent = `Run again (${m.images} images, ${m.rounds} rounds)`;
}

// For scripts driving the page (npm run bench:browser).
const ortInfo = () => ({ version: ort.env.versions?.web, threads: ort.env.wasm.numThreads, crossOriginIsolated });
window.branchynetDemo = { model, measure, classifyTestSet, ortInfo };

// ---- start ----

if (C === 1) setUpPad();
else setUpPictures();
$('clear').addEventListener('click', () => {
  clearPad();
  lastImage = null;
  $('label').textContent = '–';
  $('exit-line').textContent = 'Draw or pick an image.';
  $('trace').querySelector('tbody').replaceChildren();
  $('timing').textContent = '';
});
if (info.testCount) {
  $('random').addEventListener('click', () => pickTest(Math.floor(Math.random() * info.testCount)));
  sweep = await allExits();
  setUpSliders();
  updateTradeOff();
  $('bench').addEventListener('click', benchmark);
} else {
  $('random').disabled = $('bench').disabled = true;
  $('accuracy').textContent = 'No test images for this model: the sliders are off.';
}
$('status').textContent = `${model.name} is ready: ${exits} exits, calibrated thresholds [${model.thresholds.map((t) => t.toFixed(2)).join(', ')}]`;
document.body.dataset.ready = 'true';
