/**
 * The Open Inference Protocol (KServe v2, also Triton's) as this server speaks it: reading an
 * infer request (JSON tensors, or the binary tensor extension) into pixels, and writing the
 * response and the model metadata.
 */
import { oneLine, shown, UserError } from '../errors.js';
import { checkThresholds, softmaxRow } from '../runtime/exit_rule.js';

/** The input tensor's name. */
export const IMAGE_INPUT = 'image';
/** Output tensors, in the order they are answered when a request names none. */
export const DEFAULT_OUTPUTS = ['label', 'exit', 'entropy'] as const;
export const OUTPUT_NAMES = ['label', 'exit', 'entropy', 'probabilities'] as const;
export type OutputName = (typeof OUTPUT_NAMES)[number];
export const INPUT_DATATYPES = ['FP32', 'UINT8'] as const;
/** The binary tensor extension's header: the length of the JSON part of the body, in bytes. */
export const BINARY_HEADER = 'inference-header-content-length';

/** What a served model looks like to the protocol. */
export interface ModelShape {
  name: string;
  /** [height, width, channels] of one image. */
  inputShape: readonly [number, number, number];
  classes: number;
  /** Exits the answers come from (1 for a baseline network). */
  exits: number;
}

/** An infer request, checked: N images of raw pixels (0-255, channels last, packed). */
export interface InferRequest {
  id?: string;
  count: number;
  pixels: Float32Array;
  /** The request's own thresholds, or undefined for the model's. */
  thresholds?: number[];
  outputs: OutputName[];
}

/** The answers of a request's rows. */
export interface RowAnswers {
  predictions: Int32Array;
  exitTaken: Uint8Array;
  entropies: Float32Array;
  /** rows x classes */
  logits: Float32Array;
}

export interface OutputTensor {
  name: OutputName;
  datatype: 'INT64' | 'FP32';
  shape: number[];
  data: number[];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function bad(detail: string): never {
  throw new UserError(detail);
}

/**
 * Splits a request body into its JSON part and its binary part: with the binary extension's
 * header the JSON is the first `headerLength` bytes and the tensors' bytes follow.
 */
export function splitBody(body: Buffer, headerLength: string | undefined): { json: Buffer; binary: Buffer | null } {
  if (headerLength === undefined) return { json: body, binary: null };
  const n = Number(headerLength);
  if (!/^\d+$/.test(headerLength.trim()) || n > body.length)
    bad(
      `Inference-Header-Content-Length: expected the JSON part's length in bytes (0 to ${body.length}), got ${shown(headerLength)}`,
    );
  return { json: body.subarray(0, n), binary: body.subarray(n) };
}

/** Parses the JSON part of a request body. */
export function parseJson(bytes: Buffer): unknown {
  if (bytes.length === 0) bad('empty body: expected an infer request (JSON object with "inputs")');
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    return bad(`malformed JSON: ${oneLine((e as Error).message, 120)}`);
  }
}

function checkShape(raw: unknown, model: ModelShape): number {
  const [h, w, c] = model.inputShape;
  const expected = `[N, ${h}, ${w}, ${c}]`;
  if (!Array.isArray(raw) || raw.length !== 4 || !raw.every((d) => Number.isInteger(d)))
    bad(`input 'image': shape must be ${expected} (N images, channels last), got ${shown(raw)}`);
  const [n, ...rest] = raw as number[];
  if (rest[0] !== h || rest[1] !== w || rest[2] !== c)
    bad(`input 'image': shape must be ${expected} for ${model.name}, got ${shown(raw)}`);
  if (n < 1) bad(`input 'image': shape's N must be >= 1, got ${n}`);
  return n;
}

function pixelsFromJson(data: unknown, datatype: string, size: number): Float32Array {
  if (!Array.isArray(data)) bad(`input 'image': data must be an array of ${size} numbers, got ${shown(data)}`);
  const flat = data.some(Array.isArray) ? (data.flat(Infinity) as unknown[]) : data;
  if (flat.length !== size)
    bad(`input 'image': data holds ${flat.length} values, but its shape needs ${size} (row-major, channels last)`);
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    const v = flat[i];
    if (typeof v !== 'number' || !Number.isFinite(v))
      bad(`input 'image': data[${i}] must be a finite number, got ${shown(v)}`);
    if (datatype === 'UINT8' && !(Number.isInteger(v) && v >= 0 && v <= 255))
      bad(`input 'image': UINT8 data[${i}] must be an integer 0-255, got ${v}`);
    out[i] = v;
  }
  return out;
}

function pixelsFromBinary(bytes: Buffer, datatype: string, size: number): Float32Array {
  const width = datatype === 'UINT8' ? 1 : 4;
  if (bytes.length !== size * width)
    bad(`input 'image': binary data holds ${bytes.length} bytes, but ${size} ${datatype} values need ${size * width}`);
  if (datatype === 'UINT8') return Float32Array.from(bytes);
  const out = new Float32Array(size);
  // Little-endian, as the extension specifies; a DataView also reads from unaligned offsets.
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < size; i++) {
    const v = view.getFloat32(i * 4, true);
    if (!Number.isFinite(v)) bad(`input 'image': binary FP32 value ${i} must be finite, got ${v}`);
    out[i] = v;
  }
  return out;
}

function checkOutputs(raw: unknown): OutputName[] {
  if (raw === undefined) return [...DEFAULT_OUTPUTS];
  if (!Array.isArray(raw) || raw.length === 0)
    bad(`outputs: expected a non-empty array of {"name": ...} with names ${OUTPUT_NAMES.join(', ')}`);
  const names: OutputName[] = [];
  for (const o of raw) {
    const name = isObject(o) ? o.name : undefined;
    if (typeof name !== 'string' || !(OUTPUT_NAMES as readonly string[]).includes(name))
      bad(`outputs: unknown output ${shown(name ?? o)}; this model answers ${OUTPUT_NAMES.join(', ')}`);
    if (names.includes(name as OutputName)) bad(`outputs: '${name}' is asked for twice`);
    names.push(name as OutputName);
  }
  return names;
}

function checkRequestThresholds(parameters: unknown, model: ModelShape): number[] | undefined {
  if (parameters === undefined) return undefined;
  if (!isObject(parameters)) bad(`parameters: expected an object, got ${shown(parameters)}`);
  const raw = parameters.thresholds;
  if (raw === undefined) return undefined;
  if (model.exits < 2) bad(`parameters.thresholds: ${model.name} serves one exit, so it takes no thresholds`);
  if (!Array.isArray(raw) || !raw.every((t) => typeof t === 'number'))
    bad(`parameters.thresholds: expected ${model.exits - 1} numbers >= 0, got ${shown(raw)}`);
  try {
    checkThresholds(raw as number[], model.exits);
  } catch (e) {
    bad(`parameters.${(e as Error).message}`);
  }
  return raw as number[];
}

/** Checks an infer request against the model; a UserError names the first thing wrong. */
export function parseInferRequest(json: unknown, binary: Buffer | null, model: ModelShape): InferRequest {
  if (!isObject(json)) bad(`expected an infer request (JSON object with "inputs"), got ${shown(json)}`);
  const { id, inputs } = json;
  if (id !== undefined && typeof id !== 'string') bad(`id: expected a string, got ${shown(id)}`);
  if (!Array.isArray(inputs) || inputs.length !== 1)
    bad(`inputs: expected one tensor named '${IMAGE_INPUT}', got ${shown(inputs)}`);
  const input = inputs[0];
  if (!isObject(input)) bad(`inputs[0]: expected a tensor object, got ${shown(input)}`);
  if (input.name !== IMAGE_INPUT) bad(`inputs[0]: the input is named '${IMAGE_INPUT}', got ${shown(input.name)}`);
  const { datatype } = input;
  if (typeof datatype !== 'string' || !(INPUT_DATATYPES as readonly string[]).includes(datatype))
    bad(`input 'image': datatype must be FP32 or UINT8, got ${shown(datatype)}`);
  const count = checkShape(input.shape, model);
  const size = count * model.inputShape[0] * model.inputShape[1] * model.inputShape[2];
  const inputParameters = input.parameters;
  if (inputParameters !== undefined && !isObject(inputParameters))
    bad(`input 'image': parameters must be an object, got ${shown(inputParameters)}`);
  const binarySize = inputParameters?.binary_data_size;
  let pixels: Float32Array;
  if (binarySize !== undefined) {
    if (binary === null)
      bad(`input 'image': binary_data_size given, but the request has no Inference-Header-Content-Length header`);
    if (input.data !== undefined) bad(`input 'image': give either data or binary_data_size, not both`);
    if (!Number.isInteger(binarySize) || binarySize !== binary.length)
      bad(
        `input 'image': binary_data_size ${shown(binarySize)} differs from the ${binary.length} bytes after the JSON`,
      );
    pixels = pixelsFromBinary(binary, datatype, size);
  } else {
    if (binary !== null && binary.length > 0)
      bad(`${binary.length} bytes follow the JSON, but input 'image' has no binary_data_size`);
    pixels = pixelsFromJson(input.data, datatype, size);
  }
  const request: InferRequest = {
    count,
    pixels,
    outputs: checkOutputs(json.outputs),
  };
  const thresholds = checkRequestThresholds(json.parameters, model);
  if (thresholds) request.thresholds = thresholds;
  if (id !== undefined) request.id = id;
  return request;
}

/** Each row's softmax, rows one after another, as the JSON tensor's data. */
function softmaxRows(logits: Float32Array, rows: number, classes: number): number[] {
  return Array.from({ length: rows }, (_, r) => [...softmaxRow(logits, r, classes)]).flat();
}

/** The output tensors of a request's answers, in the order the request asked for them. */
export function outputTensors(
  answers: RowAnswers,
  count: number,
  classes: number,
  names: OutputName[],
): OutputTensor[] {
  return names.map((name): OutputTensor => {
    switch (name) {
      case 'label':
        return { name, datatype: 'INT64', shape: [count], data: Array.from(answers.predictions) };
      case 'exit':
        return { name, datatype: 'INT64', shape: [count], data: Array.from(answers.exitTaken) };
      case 'entropy':
        return { name, datatype: 'FP32', shape: [count], data: Array.from(answers.entropies) };
      case 'probabilities':
        return { name, datatype: 'FP32', shape: [count, classes], data: softmaxRows(answers.logits, count, classes) };
    }
  });
}

/** GET /v2/models/{name}: the model's tensors, plus its exits and thresholds in parameters. */
export function modelMetadata(
  model: ModelShape,
  parameters: { thresholds: number[] | null; classNames: string[]; mode: string; runtime: string; macs: unknown },
) {
  const [h, w, c] = model.inputShape;
  return {
    name: model.name,
    versions: ['1'],
    platform: 'branchynet',
    inputs: [{ name: IMAGE_INPUT, datatype: 'FP32', shape: [-1, h, w, c] }],
    outputs: [
      { name: 'label', datatype: 'INT64', shape: [-1] },
      { name: 'exit', datatype: 'INT64', shape: [-1] },
      { name: 'entropy', datatype: 'FP32', shape: [-1] },
      { name: 'probabilities', datatype: 'FP32', shape: [-1, model.classes] },
    ],
    parameters: {
      input_datatypes: [...INPUT_DATATYPES],
      pixel_range: '0-255, channels last',
      exits: model.exits,
      thresholds: parameters.thresholds,
      class_names: parameters.classNames,
      mode: parameters.mode,
      runtime: parameters.runtime,
      macs: parameters.macs,
    },
  };
}
