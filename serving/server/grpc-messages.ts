/**
 * The OIP gRPC messages as @grpc/proto-loader decodes them from grpc_predict_v2.proto (field
 * names as in the proto, int64 as decimal strings, defaults filled in), and the service
 * definition both the model server and the router build on.
 */
import path from 'node:path';
import type { ServiceDefinition } from '@grpc/grpc-js';
import { loadSync, type PackageDefinition } from '@grpc/proto-loader';
import { projectRoot } from '../../common/paths';

export const OIP_PROTO = path.join(projectRoot, 'serving', 'server', 'grpc_predict_v2.proto');
export const OIP_SERVICE = 'inference.GRPCInferenceService';

/** An int64 as proto-loader hands it over (`longs: String`) or accepts it. */
type Int64 = string | number;

export interface InferParameter {
  bool_param?: boolean;
  int64_param?: Int64;
  string_param?: string;
  double_param?: number;
  uint64_param?: Int64;
  parameter_choice?: 'bool_param' | 'int64_param' | 'string_param' | 'double_param' | 'uint64_param';
}

export interface InferTensorContents {
  bool_contents: boolean[];
  int_contents: number[];
  int64_contents: Int64[];
  uint_contents: number[];
  uint64_contents: Int64[];
  fp32_contents: number[];
  fp64_contents: number[];
  bytes_contents: Buffer[];
}

export interface InferInputTensor {
  name: string;
  datatype: string;
  shape: Int64[];
  parameters: Record<string, InferParameter>;
  contents: InferTensorContents | null;
}

export interface ModelInferRequest {
  model_name: string;
  model_version: string;
  id: string;
  parameters: Record<string, InferParameter>;
  inputs: InferInputTensor[];
  outputs: { name: string; parameters: Record<string, InferParameter> }[];
  raw_input_contents: Buffer[];
}

export interface InferOutputTensor {
  name: string;
  datatype: string;
  shape: Int64[];
  parameters?: Record<string, InferParameter>;
  contents?: Partial<InferTensorContents> | null;
}

export interface ModelInferResponse {
  model_name: string;
  model_version: string;
  id: string;
  outputs: InferOutputTensor[];
  raw_output_contents: Buffer[];
}

let loaded: PackageDefinition | undefined;

/** The parsed proto, loaded once per process. */
export function oipPackage(): PackageDefinition {
  loaded ??= loadSync(OIP_PROTO, {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    arrays: true,
    oneofs: true,
  });
  return loaded;
}

/** The GRPCInferenceService definition, with proto-loader's (de)serializers per method. */
export function oipService(): ServiceDefinition {
  return oipPackage()[OIP_SERVICE] as ServiceDefinition;
}

/** The integer value of an InferParameter, whichever numeric field carries it; undefined otherwise. */
export function intParameter(p: InferParameter | undefined): number | undefined {
  const choice = p?.parameter_choice;
  if (!p || !choice || choice === 'bool_param' || choice === 'string_param') return undefined;
  const n = Number(p[choice]);
  return Number.isSafeInteger(n) ? n : undefined;
}
