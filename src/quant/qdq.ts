/**
 * Graph rewriting for post-training static quantisation of an exported stage graph (ONNX, float):
 * batch norm folded into the convolution before it, then QuantizeLinear / DequantizeLinear pairs
 * placed on activations and int8 weights behind DequantizeLinear (QDQ form). ONNX Runtime reads
 * DQ -> Conv -> [Relu] -> Q as one QLinearConv (the Relu disappears when the Q's zero point is 0),
 * DQ, DQ -> Add -> Q as QLinearAdd and DQ -> Gemm as QGemm; every other runtime that reads QDQ
 * simulates the same arithmetic in float.
 */
import type onnxProto from 'onnx-proto';
import { onnx, type ModelProto } from '../onnx/graph.js';
import type { QuantParams } from './maths.js';
import { quantizeBias, quantizeWeightsPerChannel } from './maths.js';

type Node = onnxProto.onnx.INodeProto;
type Tensor = onnxProto.onnx.ITensorProto;
const DT = onnx.TensorProto.DataType;

/** Ops given int8 weights: the weight is input 1 (and the bias input 2), initializers. */
const WEIGHTED = new Set(['Conv', 'Gemm']);
/** Ops that run on quantised activations (inputs and output). */
const QUANTIZED_OPS = new Set([...WEIGHTED, 'Add', 'Relu', 'MaxPool', 'AveragePool']);
/** Ops whose output takes its input's quantisation: they only select or move values. */
const SAME_PARAMS = new Set(['MaxPool']);
/** Ops whose output, when a lone Relu reads it, is quantised only after the Relu (the pair fuses). */
const FUSES_RELU = new Set(['Conv', 'Gemm', 'Add']);
/** Graph outputs that stay float: the class scores (and an entropy) are what the caller reads. */
const FLOAT_OUTPUTS = new Set(['logits', 'entropy']);

/** A decoded copy (mutating it leaves `model` alone). */
export function cloneModel(model: ModelProto): ModelProto {
  return onnx.ModelProto.decode(onnx.ModelProto.encode(model).finish());
}

function floatData(t: Tensor): Float32Array {
  if (t.dataType !== DT.FLOAT) throw new Error(`quant: initializer ${t.name} is not float32`);
  if (t.rawData && t.rawData.length > 0) {
    // A copy: the decoded bytes may be an unaligned view into the whole file.
    const raw = Uint8Array.from(t.rawData);
    return new Float32Array(raw.buffer, 0, raw.byteLength / 4);
  }
  return Float32Array.from(t.floatData ?? []);
}

function rawTensor(name: string, dims: number[], dataType: number, data: ArrayBufferView): Tensor {
  return {
    name,
    dims,
    dataType,
    rawData: new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)),
  };
}

function attr(node: Node, name: string): onnxProto.onnx.IAttributeProto | undefined {
  return (node.attribute ?? []).find((a) => a.name === name);
}

function consumersOf(nodes: Node[]): Map<string, Node[]> {
  const map = new Map<string, Node[]>();
  for (const n of nodes) for (const i of n.input ?? []) if (i) map.set(i, [...(map.get(i) ?? []), n]);
  return map;
}

function producersOf(nodes: Node[]): Map<string, Node> {
  const map = new Map<string, Node>();
  for (const n of nodes) for (const o of n.output ?? []) map.set(o, n);
  return map;
}

/**
 * Folds every BatchNormalization that reads a Conv's output (and nothing else reads it) into that
 * Conv: w' = w * gamma / sqrt(var + eps) per output channel, b' = (b - mean) * that + beta. The
 * folded graph computes the same function up to float rounding; folding first gives the int8
 * weights the scales of the weights that actually run.
 */
export function foldBatchNorms(model: ModelProto): number {
  const graph = model.graph!;
  const nodes = graph.node!;
  const inits = new Map(graph.initializer!.map((t) => [t.name!, t]));
  let folded = 0;
  for (let i = 0; i < nodes.length; i++) {
    const bn = nodes[i];
    if (bn.opType !== 'BatchNormalization') continue;
    const conv = producersOf(nodes).get(bn.input![0]);
    if (!conv || conv.opType !== 'Conv' || (consumersOf(nodes).get(bn.input![0]) ?? []).length !== 1) continue;
    if (graph.output!.some((o) => o.name === bn.input![0])) continue;
    const [gamma, beta, mean, variance] = bn.input!.slice(1).map((name) => inits.get(name));
    const w = inits.get(conv.input![1]);
    const b = conv.input![2] ? inits.get(conv.input![2]) : undefined;
    if (!gamma || !beta || !mean || !variance || !w) continue;
    const eps = attr(bn, 'epsilon')?.f ?? 1e-5;
    const [g, be, m, v] = [gamma, beta, mean, variance].map(floatData);
    const weights = floatData(w);
    const channels = g.length;
    const per = weights.length / channels;
    const bias = b ? floatData(b) : new Float32Array(channels);
    const newW = new Float32Array(weights.length);
    const newB = new Float32Array(channels);
    for (let c = 0; c < channels; c++) {
      const k = g[c] / Math.sqrt(v[c] + eps);
      for (let j = 0; j < per; j++) newW[c * per + j] = weights[c * per + j] * k;
      newB[c] = (bias[c] - m[c]) * k + be[c];
    }
    Object.assign(w, rawTensor(w.name!, w.dims!.map(Number), DT.FLOAT, newW));
    const biasName = b ? b.name! : `${w.name}_folded_bias`;
    const biasTensor = rawTensor(biasName, [channels], DT.FLOAT, newB);
    if (b) Object.assign(b, biasTensor);
    else {
      graph.initializer!.push(biasTensor);
      inits.set(biasName, biasTensor);
      conv.input = [conv.input![0], conv.input![1], biasName];
    }
    conv.output = [bn.output![0]];
    nodes.splice(i, 1);
    i--;
    folded++;
  }
  graph.initializer = graph.initializer!.filter((t) => nodes.some((n) => n.input!.includes(t.name!)));
  return folded;
}

/** The nodes given int8 weights, by name, in graph order. */
export function weightedNodes(model: ModelProto): string[] {
  return model.graph!.node!.filter((n) => WEIGHTED.has(n.opType!)).map((n) => n.name!);
}

/**
 * The activation tensors to quantise when every quantisable node except `floatNodes` runs in
 * int8: the inputs and outputs of those nodes, except a value that goes straight from a Conv, Gemm
 * or Add into a lone Relu (quantised after the Relu) and the float graph outputs (the logits).
 * In graph order (inputs first).
 */
export function activationsToQuantize(model: ModelProto, floatNodes: ReadonlySet<string> = new Set()): string[] {
  const graph = model.graph!;
  const nodes = graph.node!;
  const inits = new Set(graph.initializer!.map((t) => t.name!));
  const consumers = consumersOf(nodes);
  const producers = producersOf(nodes);
  const active = (n: Node) => QUANTIZED_OPS.has(n.opType!) && !floatNodes.has(n.name!);
  const fusedIntoRelu = (t: string) => {
    const p = producers.get(t);
    const c = consumers.get(t) ?? [];
    return (
      p !== undefined &&
      FUSES_RELU.has(p.opType!) &&
      c.length === 1 &&
      c[0].opType === 'Relu' &&
      !graph.output!.some((o) => o.name === t)
    );
  };
  const chosen = new Set<string>();
  const consider = (t: string | null | undefined) => {
    if (t && !inits.has(t) && !FLOAT_OUTPUTS.has(t) && !fusedIntoRelu(t)) chosen.add(t);
  };
  for (const n of nodes) {
    if (!active(n)) continue;
    if (WEIGHTED.has(n.opType!)) consider(n.input![0]);
    else n.input!.forEach(consider);
    n.output!.forEach(consider);
  }
  const order = [...graph.input!.map((i) => i.name!), ...nodes.flatMap((n) => n.output!)];
  return order.filter((t) => chosen.has(t));
}

/** A copy of `model` that also outputs `tensors` (float, any shape): for observing ranges. */
export function withObservedOutputs(model: ModelProto, tensors: readonly string[]): ModelProto {
  const copy = cloneModel(model);
  const graph = copy.graph!;
  const present = new Set(graph.output!.map((o) => o.name!));
  for (const t of tensors) {
    if (present.has(t) || graph.input!.some((i) => i.name === t)) continue;
    graph.output!.push({ name: t, type: { tensorType: { elemType: DT.FLOAT } } });
  }
  return copy;
}

function scalar(name: string, dataType: number, value: number): Tensor {
  const data =
    dataType === DT.FLOAT
      ? new Float32Array([value])
      : dataType === DT.UINT8
        ? new Uint8Array([value])
        : new Int8Array([value]);
  return rawTensor(name, [], dataType, data);
}

/**
 * The quantised graph: `params` (per activation tensor, see activationsToQuantize with the same
 * `floatNodes`) become QuantizeLinear -> DequantizeLinear pairs on those tensors (uint8), and the
 * weights of every Conv and Gemm outside `floatNodes` become int8 initializers per output channel
 * (Conv axis 0, Gemm with transB = 0 axis 1) behind a DequantizeLinear, their biases int32. A
 * MaxPool's output takes its input's parameters. Opset 13: per-axis DequantizeLinear.
 */
export function quantizeGraph(
  model: ModelProto,
  params: ReadonlyMap<string, QuantParams>,
  floatNodes: ReadonlySet<string> = new Set(),
): ModelProto {
  const copy = cloneModel(model);
  const graph = copy.graph!;
  const opset = copy.opsetImport!.find((o) => !o.domain)?.version ?? 0;
  if (Number(opset) < 13)
    throw new Error(`quant: per-axis DequantizeLinear needs opset 13 or later, the graph has ${opset}`);
  const nodes = graph.node!;
  const producers = producersOf(nodes);
  const tensors = activationsToQuantize(model, floatNodes);
  const inits = new Map(graph.initializer!.map((t) => [t.name!, t]));
  const taken = new Set([
    ...nodes.flatMap((n) => [...n.input!, ...n.output!]),
    ...inits.keys(),
    ...graph.input!.map((i) => i.name!),
  ]);
  const fresh = (hint: string) => {
    let name = hint;
    for (let i = 1; taken.has(name); i++) name = `${hint}_${i}`;
    taken.add(name);
    return name;
  };
  // A MaxPool's output takes its input's parameters; resolved in graph order.
  const resolved = new Map<string, QuantParams>();
  for (const t of tensors) {
    const p = producers.get(t);
    const same = p && SAME_PARAMS.has(p.opType!) ? resolved.get(p.input![0]) : undefined;
    const q = same ?? params.get(t);
    if (!q) throw new Error(`quant: no range for tensor ${t}`);
    resolved.set(t, q);
  }

  const added: Tensor[] = [];
  // Nodes to insert after a given node (null: before every node, for graph inputs).
  const after = new Map<Node | null, Node[]>();
  const renameInputs = new Map<string, string>();
  for (const t of tensors) {
    const q = resolved.get(t)!;
    const scale = fresh(`${t}_scale`);
    const zero = fresh(`${t}_zero_point`);
    added.push(scalar(scale, DT.FLOAT, q.scale), scalar(zero, DT.UINT8, q.zeroPoint));
    const quantized = fresh(`${t}_quantized`);
    const producer = producers.get(t) ?? null;
    if (producer === null) {
      const dq = fresh(`${t}_dequantized`);
      renameInputs.set(t, dq);
      after.set(null, [
        ...(after.get(null) ?? []),
        { opType: 'QuantizeLinear', input: [t, scale, zero], output: [quantized], name: `${quantized}_QuantizeLinear` },
        { opType: 'DequantizeLinear', input: [quantized, scale, zero], output: [dq], name: `${dq}_DequantizeLinear` },
      ]);
    } else {
      const raw = fresh(`${t}_float`);
      producer.output = producer.output!.map((o) => (o === t ? raw : o));
      after.set(producer, [
        ...(after.get(producer) ?? []),
        {
          opType: 'QuantizeLinear',
          input: [raw, scale, zero],
          output: [quantized],
          name: `${quantized}_QuantizeLinear`,
        },
        { opType: 'DequantizeLinear', input: [quantized, scale, zero], output: [t], name: `${t}_DequantizeLinear` },
      ]);
    }
  }
  for (const n of nodes) n.input = n.input!.map((i) => renameInputs.get(i) ?? i);

  for (const n of nodes) {
    if (!WEIGHTED.has(n.opType!) || floatNodes.has(n.name!)) continue;
    const w = inits.get(n.input![1]);
    if (!w) throw new Error(`quant: ${n.name}'s weight is not an initializer`);
    const dims = w.dims!.map(Number);
    let axis = 0;
    if (n.opType === 'Gemm') {
      if ((attr(n, 'transB')?.i ?? 0) !== 0 || (attr(n, 'transA')?.i ?? 0) !== 0)
        throw new Error(`quant: ${n.name}: transposed Gemm operands are not handled`);
      axis = 1;
    }
    const original = [...renameInputs].find(([, renamed]) => renamed === n.input![0])?.[0] ?? n.input![0];
    const inputParams = resolved.get(original);
    if (!inputParams) throw new Error(`quant: ${n.name}'s input ${n.input![0]} is not quantised`);
    const qw = quantizeWeightsPerChannel(floatData(w), dims, axis);
    const channels = dims[axis];
    const wq = fresh(`${w.name}_int8`);
    const ws = fresh(`${w.name}_scale`);
    const wz = fresh(`${w.name}_zero_point`);
    const wdq = fresh(`${w.name}_dequantized`);
    added.push(
      rawTensor(wq, dims, DT.INT8, qw.values),
      rawTensor(ws, [channels], DT.FLOAT, qw.scales),
      rawTensor(wz, [channels], DT.INT8, new Int8Array(channels)),
    );
    const dequantize = (inputs: string[], output: string, along: number): Node => ({
      opType: 'DequantizeLinear',
      input: inputs,
      output: [output],
      name: `${output}_DequantizeLinear`,
      attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: along }],
    });
    const extra: Node[] = [dequantize([wq, ws, wz], wdq, axis)];
    const inputs = [n.input![0], wdq];
    const b = n.input![2] ? inits.get(n.input![2]) : undefined;
    if (b) {
      const qb = quantizeBias(floatData(b), inputParams.scale, qw.scales);
      const bq = fresh(`${b.name}_int32`);
      const bs = fresh(`${b.name}_scale`);
      const bz = fresh(`${b.name}_zero_point`);
      const bdq = fresh(`${b.name}_dequantized`);
      added.push(
        rawTensor(bq, [channels], DT.INT32, qb.values),
        rawTensor(bs, [channels], DT.FLOAT, qb.scales),
        rawTensor(bz, [channels], DT.INT32, new Int32Array(channels)),
      );
      extra.push(dequantize([bq, bs, bz], bdq, 0));
      inputs.push(bdq);
    }
    n.input = inputs;
    // Weight DequantizeLinear nodes go first (they read initializers only): graph order stays topological.
    after.set(null, [...extra, ...(after.get(null) ?? [])]);
  }

  const ordered: Node[] = [...(after.get(null) ?? [])];
  for (const n of nodes) ordered.push(n, ...(after.get(n) ?? []));
  graph.node = ordered;
  graph.initializer = [...graph.initializer!, ...added].filter((t) => ordered.some((n) => n.input!.includes(t.name!)));
  return copy;
}
