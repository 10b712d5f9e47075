/**
 * Encodes an infer response: JSON tensors, or the binary tensor extension (a JSON header whose
 * length goes in `Inference-Header-Content-Length`, followed by the raw output bytes).
 */
import { fromHalf, oipFromOrt, type Tensor } from './datatypes';

export interface ResponseOutput {
  name: string;
  tensor: Tensor;
  binary: boolean;
}

export interface EncodedResponse {
  body: Buffer;
  /** Set when binary outputs follow the JSON header. */
  headerLength?: number;
}

function jsonData(t: Tensor): unknown[] {
  const d = t.data;
  if (Array.isArray(d)) return d;
  if (t.type === 'bool') return Array.from(d as Uint8Array, (v) => v !== 0);
  if (t.type === 'float16') return Array.from(d as Uint16Array, fromHalf);
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) return Array.from(d, (v) => Number(v));
  return Array.from(d);
}

export function binaryData(t: Tensor): Buffer {
  const d = t.data;
  if (!Array.isArray(d)) return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  const parts: Buffer[] = [];
  for (const s of d) {
    const bytes = Buffer.from(s, 'utf8');
    const len = Buffer.allocUnsafe(4);
    len.writeUInt32LE(bytes.length, 0);
    parts.push(len, bytes);
  }
  return Buffer.concat(parts);
}

export function encodeInferResponse(
  modelName: string,
  modelVersion: string,
  id: string | undefined,
  outputs: ResponseOutput[],
): EncodedResponse {
  const binaries: Buffer[] = [];
  const json = outputs.map((o) => {
    const base = { name: o.name, datatype: oipFromOrt(o.tensor.type) ?? o.tensor.type, shape: o.tensor.dims };
    if (!o.binary) return { ...base, data: jsonData(o.tensor) };
    const bytes = binaryData(o.tensor);
    binaries.push(bytes);
    return { ...base, parameters: { binary_data_size: bytes.length } };
  });
  const header = Buffer.from(
    JSON.stringify({
      model_name: modelName,
      model_version: modelVersion,
      ...(id !== undefined ? { id } : {}),
      outputs: json,
    }),
  );
  if (binaries.length === 0) return { body: header };
  return { body: Buffer.concat([header, ...binaries]), headerLength: header.length };
}
