/**
 * A few lines over onnx-proto for writing small ONNX graphs by hand: named float/int64
 * initializers, nodes, and a model whose every input and output has a dynamic leading batch
 * dimension (dim_param "batch"), which is what the batching model server merges along.
 */
import { onnx } from 'onnx-proto';

export const OPSET = 13;
export const IR_VERSION = 8;

type Attr = number | number[] | string;

export class GraphBuilder {
  private readonly nodes: onnx.INodeProto[] = [];
  private readonly initializers: onnx.ITensorProto[] = [];
  private counter = 0;

  /** A fresh, deterministic tensor name. */
  name(hint: string): string {
    return `${hint}_${this.counter++}`;
  }

  floats(hint: string, dims: number[], values: ArrayLike<number>): string {
    const size = dims.reduce((a, b) => a * b, 1);
    if (values.length !== size) throw new Error(`${hint}: ${values.length} values for dims [${dims}]`);
    const data = Float32Array.from(values);
    const name = this.name(hint);
    this.initializers.push({
      name,
      dims,
      dataType: onnx.TensorProto.DataType.FLOAT,
      // Raw little-endian bytes: compact, and what every ONNX reader accepts.
      rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    });
    return name;
  }

  int64s(hint: string, dims: number[], values: number[]): string {
    const name = this.name(hint);
    this.initializers.push({ name, dims, dataType: onnx.TensorProto.DataType.INT64, int64Data: values });
    return name;
  }

  /** Appends a node with one output and returns the output's name. */
  op(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, output?: string): string {
    const out = output ?? this.name(opType.toLowerCase());
    const attribute: onnx.IAttributeProto[] = Object.entries(attrs).map(([name, v]) => {
      if (typeof v === 'string') {
        return { name, type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode(v) };
      }
      if (Array.isArray(v)) return { name, type: onnx.AttributeProto.AttributeType.INTS, ints: v };
      // Float attributes are not needed here; thresholds live in initializers instead.
      if (!Number.isInteger(v)) throw new Error(`${opType}.${name}: integer attribute expected, got ${v}`);
      return { name, type: onnx.AttributeProto.AttributeType.INT, i: v };
    });
    this.nodes.push({ opType, input: inputs, output: [out], name: this.name(`n_${opType}`), attribute });
    return out;
  }

  /** Serialized model bytes: float32 tensors, leading dim "batch" on every input and output. */
  build(opts: {
    graphName: string;
    docString: string;
    /** `width` for [batch, width]; `dims` for [batch, ...dims] (images). */
    inputs: ({ name: string; width: number } | { name: string; dims: number[] })[];
    outputs: { name: string; width: number }[];
    metadata?: Record<string, string>;
  }): Uint8Array {
    const valueInfo = (name: string, dims: number[]): onnx.IValueInfoProto => ({
      name,
      type: {
        tensorType: {
          elemType: onnx.TensorProto.DataType.FLOAT,
          shape: { dim: [{ dimParam: 'batch' }, ...dims.map((d) => ({ dimValue: d }))] },
        },
      },
    });
    const model: onnx.IModelProto = {
      irVersion: IR_VERSION,
      opsetImport: [{ domain: '', version: OPSET }],
      producerName: 'runway-demo',
      producerVersion: '1',
      docString: opts.docString,
      graph: {
        name: opts.graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: opts.inputs.map((i) => valueInfo(i.name, 'dims' in i ? i.dims : [i.width])),
        output: opts.outputs.map((o) => valueInfo(o.name, [o.width])),
      },
      metadataProps: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
    };
    return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
  }
}
