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

/** An attribute: an int, ints, a string, a float (`{ float }`: a bare number is an int), floats or a subgraph (`If`'s branches). */
export type AttrValue =
  number | number[] | string | { float: number } | { floats: number[] } | { graph: onnxProto.onnx.IGraphProto };

/** Element types of graph inputs and outputs. */
export type ElemType = 'float' | 'int64' | 'bool';

const ELEM_TYPES: Record<ElemType, number> = {
  float: onnx.TensorProto.DataType.FLOAT,
  int64: onnx.TensorProto.DataType.INT64,
  bool: onnx.TensorProto.DataType.BOOL,
};

function attribute(name: string, value: AttrValue): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(value) };
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new Error(`onnx attribute ${name}: integer expected, got ${value}`);
    return { name, type: T.INT, i: value };
  }
  if (Array.isArray(value)) return { name, type: T.INTS, ints: value };
  if ('float' in value) return { name, type: T.FLOAT, f: value.float };
  if ('graph' in value) return { name, type: T.GRAPH, g: value.graph };
  return { name, type: T.FLOATS, floats: value.floats };
}

function valueInfo(name: string, shape: Dim[], elem: ElemType = 'float'): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ELEM_TYPES[elem],
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
  private readonly valueInfos: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly entries = new Set<string>();

  /** `used`: the value names taken so far, shared with the enclosing graph for a subgraph (one name space per model). */
  constructor(
    readonly name: string,
    private readonly used = new Set<string>(),
  ) {}

  /** A builder for a subgraph of this graph (an `If` branch): its own nodes and weights, this graph's name space. */
  subgraph(name: string): GraphBuilder {
    return new GraphBuilder(name, this.used);
  }

  /**
   * Marks `name` (a value computed in this graph) as where the graph's work starts, so that
   * `isInput` treats it as an input: in a subgraph, the rows handed in from the enclosing graph.
   */
  markEntry(name: string): void {
    this.entries.add(name);
  }

  /** A fresh value name based on `hint`. */
  fresh(hint: string): string {
    let name = hint;
    for (let i = 1; this.used.has(name); i++) name = `${hint}_${i}`;
    this.used.add(name);
    return name;
  }

  input(name: string, shape: Dim[], elem: ElemType = 'float'): string {
    if (this.used.has(name)) throw new Error(`onnx graph ${this.name}: name '${name}' is taken`);
    this.used.add(name);
    this.inputs.push(valueInfo(name, shape, elem));
    return name;
  }

  /** Whether `name` is one of the graph's inputs (or marked as one, `markEntry`). */
  isInput(name: string): boolean {
    return this.entries.has(name) || this.inputs.some((i) => i.name === name);
  }

  /**
   * Gives the graph input `name` a default value: an initializer of the same name, which a caller
   * may override by feeding the input (IR version 4 on).
   */
  inputDefault(name: string, dims: number[], values: Float32Array): void {
    if (!this.inputs.some((i) => i.name === name)) throw new Error(`onnx graph ${this.name}: no input '${name}'`);
    const raw = new Uint8Array(values.byteLength);
    new Float32Array(raw.buffer).set(values);
    this.initializers.push({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: littleEndian(raw, 4) });
  }

  /**
   * Declares `value` a graph output under `name`: the node computing it is renamed (every run op
   * counts at batch 1), or, for a graph input or a value already output, an Identity copies it.
   */
  output(value: string, name: string, shape: Dim[], elem: ElemType = 'float', reserved = false): void {
    if (value !== name) {
      // `reserved`: the name was taken for this output beforehand (`fresh`), so that no other value gets it.
      if (this.used.has(name) && !reserved) throw new Error(`onnx graph ${this.name}: name '${name}' is taken`);
      this.used.add(name);
      const producer = this.nodes.find((n) => n.output!.includes(value));
      if (producer && !this.outputs.some((o) => o.name === value)) {
        producer.output = producer.output!.map((o) => (o === value ? name : o));
        for (const n of this.nodes) n.input = n.input!.map((i) => (i === value ? name : i));
      } else {
        this.nodes.push({ opType: 'Identity', input: [value], output: [name], name: `${name}_identity` });
      }
    }
    this.outputs.push(valueInfo(name, shape, elem));
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

  /** An int64 constant: a vector, or with `scalar` a single value of shape []. */
  int64Constant(hint: string, values: number[], scalar = false): string {
    if (scalar && values.length !== 1)
      throw new Error(`onnx graph ${this.name}: a scalar ${hint} needs one value, got ${values.length}`);
    const name = this.fresh(hint);
    const raw = new Uint8Array(values.length * 8);
    new BigInt64Array(raw.buffer).set(values.map((v) => BigInt(v)));
    this.initializers.push({
      name,
      dims: scalar ? [] : [values.length],
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

  /**
   * States the shape of a value computed in the graph (its value_info), for where the runtime's
   * shape inference cannot tell: e.g. a symbolic row count that later nodes share.
   */
  declareShape(value: string, shape: Dim[], elem: ElemType = 'float'): void {
    this.valueInfos.push(valueInfo(value, shape, elem));
  }

  /** Adds a node with several outputs (one name per hint); returns their names. */
  nodeOutputs(opType: string, inputs: string[], attributes: Record<string, AttrValue>, hints: string[]): string[] {
    const outputs = hints.map((h) => this.fresh(h));
    this.nodes.push({
      opType,
      input: inputs,
      output: outputs,
      name: `${outputs[0]}_${opType}`,
      attribute: Object.entries(attributes).map(([k, v]) => attribute(k, v)),
    });
    return outputs;
  }

  /** The graph alone (a model's graph, or a subgraph for a node attribute). */
  graph(): onnxProto.onnx.IGraphProto {
    return {
      name: this.name,
      node: this.nodes,
      initializer: this.initializers,
      input: this.inputs,
      output: this.outputs,
      valueInfo: this.valueInfos,
    };
  }

  build(docString: string): ModelProto {
    return onnx.ModelProto.create({
      irVersion: IR_VERSION,
      producerName: 'branchynet',
      producerVersion: '1',
      docString,
      opsetImport: [{ domain: '', version: OPSET }],
      graph: this.graph(),
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
