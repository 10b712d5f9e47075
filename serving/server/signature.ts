/**
 * A model's signature as the protocol shows it: inputs and outputs with OIP datatypes and shapes
 * (-1 for a dynamic dimension), read from the onnxruntime session's metadata.
 */
import { oipFromOrt, type OipDatatype } from './datatypes';

export interface TensorSpec {
  name: string;
  datatype: OipDatatype;
  shape: number[];
}

export interface Signature {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  /**
   * True when every input and output has a dynamic leading dimension: requests can be merged
   * along it. Otherwise the model is served unbatched, one request per run.
   */
  batched: boolean;
}

/** The shape of onnxruntime-node's `inputMetadata` / `outputMetadata` entries. */
export interface OrtValueMetadata {
  name: string;
  isTensor: boolean;
  type?: string;
  shape?: ReadonlyArray<number | string | null | undefined>;
}

function toSpec(m: OrtValueMetadata, kind: string, file: string): TensorSpec {
  if (!m.isTensor || !m.type)
    throw new Error(`${file}: ${kind} "${m.name}" is not a tensor; only tensors are served`);
  const datatype = oipFromOrt(m.type);
  if (!datatype) throw new Error(`${file}: ${kind} "${m.name}" has type ${m.type}, which OIP cannot carry`);
  // Symbolic names ("batch", "unk__314") and unknown dims are dynamic.
  const shape = (m.shape ?? []).map((d) => (typeof d === 'number' && d >= 0 ? d : -1));
  return { name: m.name, datatype, shape };
}

export function signatureFromMetadata(
  inputs: readonly OrtValueMetadata[],
  outputs: readonly OrtValueMetadata[],
  file: string,
): Signature {
  const ins = inputs.map((m) => toSpec(m, 'input', file));
  const outs = outputs.map((m) => toSpec(m, 'output', file));
  const leadingDynamic = (t: TensorSpec): boolean => t.shape.length > 0 && t.shape[0] === -1;
  return { inputs: ins, outputs: outs, batched: ins.length > 0 && [...ins, ...outs].every(leadingDynamic) };
}
