import onnxProto from 'onnx-proto';

/** The generated ONNX protobuf classes (ONNX 1.10 schema, via protobufjs). */
export const onnx = onnxProto.onnx;
export type ModelProto = onnxProto.onnx.ModelProto;

/** The operator set the exporter targets (ReduceLogSumExp with an `axes` attribute, ReduceSum with an `axes` input). */
export const OPSET = 13;
/** IR version 7 (ONNX 1.8), enough for opset 13 and read by every current runtime. */
export const IR_VERSION = 7;

/** A dimension: a fixed size, or a symbolic name (the batch dimension, 'N'). */
export type Dim = number | string;

/** An attribute: an int, ints, a string, a float (`{ float }`: a bare number is an int) or floats. */
export type AttrValue = number | number[] | string | { float: number } | { floats: number[] };

function attribute(name: string, value: AttrValue): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(value) };
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new Error(`onnx attribute ${name}: integer expected, got ${value}`);
    return { name, type: T.INT, i: value };
  }
  if (Array.isArray(value)) return { name, type: T.INTS, ints: value };
  if ('float' in value) return { name, type: T.FLOAT, f: value.float };
  return { name, type: T.FLOATS, floats: value.floats };
}

function valueInfo(name: string, shape: Dim[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

/**
 * Builds one ONNX graph: nodes in order, weights as raw little-endian initializers, unique value
 * names. Serialisation is the generated protobuf code's; nothing here encodes bytes by hand.
 */
export class GraphBuilder {
  private readonly nodes: onnxProto.onnx.INodeProto[] = [];
  private readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  private readonly inputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly outputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly used = new Set<string>();

  constructor(readonly name: string) {}

  /** A fresh value name based on `hint`. */
  fresh(hint: string): string {
    let name = hint;
    for (let i = 1; this.used.has(name); i++) name = `${hint}_${i}`;
    this.used.add(name);
    return name;
  }

  input(name: string, shape: Dim[]): string {
    if (this.used.has(name)) throw new Error(`onnx graph ${this.name}: name '${name}' is taken`);
    this.used.add(name);
    this.inputs.push(valueInfo(name, shape));
    return name;
  }

  /** Whether `name` is one of the graph's inputs. */
  isInput(name: string): boolean {
    return this.inputs.some((i) => i.name === name);
  }

  /**
   * Declares `value` a graph output under `name`: the node computing it is renamed (every run op
   * counts at batch 1), or, for a graph input or a value already output, an Identity copies it.
   */
  output(value: string, name: string, shape: Dim[]): void {
    if (value !== name) {
      if (this.used.has(name)) throw new Error(`onnx graph ${this.name}: name '${name}' is taken`);
      this.used.add(name);
      const producer = this.nodes.find((n) => n.output![0] === value);
      if (producer && !this.outputs.some((o) => o.name === value)) {
        producer.output = [name];
        for (const n of this.nodes) n.input = n.input!.map((i) => (i === value ? name : i));
      } else {
        this.nodes.push({ opType: 'Identity', input: [value], output: [name], name: `${name}_identity` });
      }
    }
    this.outputs.push(valueInfo(name, shape));
  }

  floatConstant(hint: string, dims: number[], values: Float32Array): string {
    const size = dims.reduce((a, b) => a * b, 1);
    if (values.length !== size)
      throw new Error(`onnx graph ${this.name}: ${hint} has ${values.length} values for shape [${dims}]`);
    const name = this.fresh(hint);
    const raw = new Uint8Array(values.byteLength);
    new Float32Array(raw.buffer).set(values);
    this.initializers.push({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: littleEndian(raw, 4) });
    return name;
  }

  int64Constant(hint: string, values: number[]): string {
    const name = this.fresh(hint);
    const raw = new Uint8Array(values.length * 8);
    new BigInt64Array(raw.buffer).set(values.map((v) => BigInt(v)));
    this.initializers.push({
      name,
      dims: [values.length],
      dataType: onnx.TensorProto.DataType.INT64,
      rawData: littleEndian(raw, 8),
    });
    return name;
  }

  /** Adds a node with one output; returns the output's name. */
  node(
    opType: string,
    inputs: string[],
    attributes: Record<string, AttrValue> = {},
    hint = opType.toLowerCase(),
  ): string {
    const output = this.fresh(hint);
    this.nodes.push({
      opType,
      input: inputs,
      output: [output],
      name: `${output}_${opType}`,
      attribute: Object.entries(attributes).map(([k, v]) => attribute(k, v)),
    });
    return output;
  }

  build(docString: string): ModelProto {
    return onnx.ModelProto.create({
      irVersion: IR_VERSION,
      producerName: 'branchynet',
      producerVersion: '1',
      docString,
      opsetImport: [{ domain: '', version: OPSET }],
      graph: {
        name: this.name,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    });
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** ONNX raw_data is little-endian; swap each element's bytes on a big-endian host. */
function littleEndian(bytes: Uint8Array, width: number): Uint8Array {
  if (LITTLE_ENDIAN) return bytes;
  for (let i = 0; i < bytes.length; i += width) bytes.subarray(i, i + width).reverse();
  return bytes;
}

export function encodeModel(model: ModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

export function decodeModel(bytes: Uint8Array): ModelProto {
  return onnx.ModelProto.decode(bytes);
}
