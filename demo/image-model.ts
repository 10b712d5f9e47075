/**
 * Two image classifiers with the shape of real ones, for benchmarks where the input tensor is
 * large (110 kB binary, about 550 kB as JSON), as camera and document models have. Both take a
 * 3×48×192 FP32 image through 3×3 convolutions (padding 1), global average pooling and a dense
 * layer into ten class probabilities, with seeded random weights: their answers mean nothing.
 *
 * - image-cnn: three stride-2 convolutions (24, 48, 64 channels), 11 446 912 multiply-adds per
 *   image. So light that a request's HTTP and transfer cost dominates: the overhead floor.
 * - image-resnet: a ResNet-style stack, a stride-2 stem (32 channels) then four stages of a
 *   same-resolution residual convolution (32, 64, 128, 256 channels) with a stride-2 convolution
 *   between them, 118 778 368 multiply-adds per image: a CNN-sized model, where compute counts.
 *
 * multiplyAdds() derives the counts from the layer lists the graphs are built from.
 */
import { createRng } from './dataset';
import { GraphBuilder } from './onnx-builder';

interface ConvLayer {
  channels: number;
  stride: 1 | 2;
  /** Adds the layer's input to its output before the ReLU (same channels, stride 1). */
  residual?: boolean;
}

export interface ImageModel {
  name: 'image-cnn' | 'image-resnet';
  file: string;
  input: 'image';
  output: 'probabilities';
  /** Per-image dims after the batch dimension: channels, height, width. */
  dims: readonly [3, 48, 192];
  classes: 10;
  layers: readonly ConvLayer[];
  seed: number;
  description: string;
}

const shape = { input: 'image', output: 'probabilities', dims: [3, 48, 192], classes: 10 } as const;

export const IMAGE_MODEL: ImageModel = {
  ...shape,
  name: 'image-cnn',
  file: 'image-cnn.onnx',
  layers: [
    { channels: 24, stride: 2 },
    { channels: 48, stride: 2 },
    { channels: 64, stride: 2 },
  ],
  seed: 4004,
  description: 'A 3x48x192 image classifier with seeded random weights, for large-tensor benchmarks',
};

export const IMAGE_RESNET: ImageModel = {
  ...shape,
  name: 'image-resnet',
  file: 'image-resnet.onnx',
  layers: [
    { channels: 32, stride: 2 },
    { channels: 32, stride: 1, residual: true },
    { channels: 64, stride: 2 },
    { channels: 64, stride: 1, residual: true },
    { channels: 128, stride: 2 },
    { channels: 128, stride: 1, residual: true },
    { channels: 256, stride: 2 },
    { channels: 256, stride: 1, residual: true },
  ],
  seed: 4005,
  description:
    'A ResNet-style 3x48x192 image classifier (about 119 M multiply-adds) with seeded random weights, for large-tensor benchmarks',
};

export const IMAGE_MODELS: readonly ImageModel[] = [IMAGE_MODEL, IMAGE_RESNET];

/** Output size of a 3×3 convolution with padding 1. */
const convOut = (size: number, stride: number): number => Math.floor((size - 1) / stride) + 1;

/** Multiply-adds per image: every convolution's output positions × kernel size, and the dense layer. */
export function multiplyAdds(model: ImageModel): number {
  let [channels, h, w] = model.dims as readonly number[] as [number, number, number];
  let total = 0;
  for (const layer of model.layers) {
    h = convOut(h, layer.stride);
    w = convOut(w, layer.stride);
    total += h * w * layer.channels * channels * 9;
    channels = layer.channels;
  }
  return total + channels * model.classes;
}

export function buildImageModel(model: ImageModel = IMAGE_MODEL): Uint8Array {
  const rng = createRng(model.seed);
  const g = new GraphBuilder();
  const he = (fanIn: number, n: number): number[] =>
    Array.from({ length: n }, () => rng.normal() * Math.sqrt(2 / fanIn));
  let x: string = model.input;
  let channels: number = model.dims[0];
  for (const { channels: out, stride, residual } of model.layers) {
    if (residual && (out !== channels || stride !== 1))
      throw new Error(`${model.name}: a residual layer keeps its channels and resolution`);
    const w = g.floats('conv_w', [out, channels, 3, 3], he(channels * 9, out * channels * 9));
    const b = g.floats('conv_b', [out], new Array<number>(out).fill(0.01));
    const y = g.op('Conv', [x, w, b], {
      kernel_shape: [3, 3],
      strides: [stride, stride],
      pads: [1, 1, 1, 1],
    });
    x = g.op('Relu', [residual ? g.op('Add', [y, x]) : y]);
    channels = out;
  }
  x = g.op('GlobalAveragePool', [x]);
  x = g.op('Flatten', [x], { axis: 1 });
  const w = g.floats('dense_w', [channels, model.classes], he(channels, channels * model.classes));
  const b = g.floats('dense_b', [model.classes], new Array<number>(model.classes).fill(0));
  x = g.op('Gemm', [x, w, b]);
  g.op('Softmax', [x], { axis: 1 }, model.output);
  return g.build({
    graphName: model.name,
    docString: model.description,
    inputs: [{ name: model.input, dims: [...model.dims] }],
    outputs: [{ name: model.output, width: model.classes }],
    metadata: { 'runway.demo.member': model.name },
  });
}
