/** The ONNX batching model server (Open Inference Protocol v2). */
export { startModelServer, EXTENSIONS, TIMEOUT_HEADER, type ModelServer } from './server';
export { resolveServerOptions, type ModelServerOptions } from './options';
export type { Signature, TensorSpec } from './signature';
