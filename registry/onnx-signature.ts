/**
 * What a pushed file really is: loaded with onnxruntime (the runtime that will serve it), so a
 * file that is not a loadable ONNX model is refused at push, on either registry, and the model's
 * actual inputs and outputs are written into the version's metadata where a reviewer sees them.
 */
import fs from 'node:fs';
import type { ModelSpec } from '../specs/schema';
import { signatureFromMetadata, type Signature, type TensorSpec } from '../serving/server/signature';

export async function readOnnxSignature(file: string): Promise<Signature> {
  if (!fs.statSync(file, { throwIfNoEntry: false })?.isFile()) {
    throw new Error(`${file} does not exist or is not a file`);
  }
  const ort = await import('onnxruntime-node');
  let session: Awaited<ReturnType<typeof ort.InferenceSession.create>>;
  try {
    session = await ort.InferenceSession.create(file);
  } catch (err) {
    const why = (err instanceof Error ? err.message : String(err)).split('\n')[0];
    throw new Error(`${file} is not a loadable ONNX model (onnxruntime: ${why}); nothing was pushed`);
  }
  try {
    return signatureFromMetadata(session.inputMetadata, session.outputMetadata, file);
  } finally {
    await session.release();
  }
}

/** `features:FP32[-1,8]`, comma-separated: short enough for an MLflow tag, readable in a list. */
export function formatTensors(tensors: readonly TensorSpec[]): string {
  return tensors.map((t) => `${t.name}:${t.datatype}[${t.shape.join(',')}]`).join(' ');
}

export function signatureMetadata(sig: Signature): Record<string, string> {
  return { 'signature.inputs': formatTensors(sig.inputs), 'signature.outputs': formatTensors(sig.outputs) };
}

/** How the model's real signature differs from a spec's (empty when they agree). -1 matches any size. */
export function signatureDifferences(actual: Signature, declared: ModelSpec['model']['signature']): string[] {
  const out: string[] = [];
  const side = (kind: 'input' | 'output', real: readonly TensorSpec[], want: readonly TensorSpec[]): void => {
    for (const w of want) {
      const r = real.find((t) => t.name === w.name);
      if (!r) {
        out.push(
          `${kind} ${w.name}: in the spec, not in the model (model has ${formatTensors(real) || 'none'})`,
        );
        continue;
      }
      if (r.datatype !== w.datatype)
        out.push(`${kind} ${w.name}: spec says ${w.datatype}, model has ${r.datatype}`);
      const fits =
        r.shape.length === w.shape.length &&
        r.shape.every((d, i) => d === w.shape[i] || d === -1 || w.shape[i] === -1);
      if (!fits)
        out.push(
          `${kind} ${w.name}: spec says shape [${w.shape.join(',')}], model has [${r.shape.join(',')}]`,
        );
    }
    for (const r of real) {
      if (!want.some((w) => w.name === r.name)) out.push(`${kind} ${r.name}: in the model, not in the spec`);
    }
  };
  side('input', actual.inputs, declared.inputs);
  side('output', actual.outputs, declared.outputs);
  return out;
}
