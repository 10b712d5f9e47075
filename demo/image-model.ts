/**
 * A small image classifier with the shape of a real one: a 3×48×192 FP32 image through three
 * strided 3×3 convolutions (24, 48, 64 channels), global average pooling and a dense layer into
 * ten class probabilities, with seeded random weights (about 11 M multiply-adds per image). Its
 * answers mean nothing; it is for benchmarks where the input tensor is large (110 kB binary,
 * about 300 kB as JSON), as camera and document models have.
 */
import { createRng } from './dataset';
import { GraphBuilder } from './onnx-builder';

export const IMAGE_MODEL = {
  file: 'image-cnn.onnx',
  input: 'image',
  output: 'probabilities',
  /** Per-image dims after the batch dimension: channels, height, width. */
  dims: [3, 48, 192],
  classes: 10,
} as const;

const CONVS = [24, 48, 64];
const SEED = 4004;

export function buildImageModel(): Uint8Array {
  const rng = createRng(SEED);
  const g = new GraphBuilder();
  const he = (fanIn: number, n: number): number[] =>
    Array.from({ length: n }, () => rng.normal() * Math.sqrt(2 / fanIn));
  let x: string = IMAGE_MODEL.input;
  let channels: number = IMAGE_MODEL.dims[0];
  for (const out of CONVS) {
    const w = g.floats('conv_w', [out, channels, 3, 3], he(channels * 9, out * channels * 9));
    const b = g.floats('conv_b', [out], new Array<number>(out).fill(0.01));
    x = g.op('Conv', [x, w, b], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
    x = g.op('Relu', [x]);
    channels = out;
  }
  x = g.op('GlobalAveragePool', [x]);
  x = g.op('Flatten', [x], { axis: 1 });
  const w = g.floats(
    'dense_w',
    [channels, IMAGE_MODEL.classes],
    he(channels, channels * IMAGE_MODEL.classes),
  );
  const b = g.floats('dense_b', [IMAGE_MODEL.classes], new Array<number>(IMAGE_MODEL.classes).fill(0));
  x = g.op('Gemm', [x, w, b]);
  g.op('Softmax', [x], { axis: 1 }, IMAGE_MODEL.output);
  return g.build({
    graphName: 'image-cnn',
    docString: 'A 3x48x192 image classifier with seeded random weights, for large-tensor benchmarks',
    inputs: [{ name: IMAGE_MODEL.input, dims: [...IMAGE_MODEL.dims] }],
    outputs: [{ name: IMAGE_MODEL.output, width: IMAGE_MODEL.classes }],
    metadata: { 'runway.demo.member': 'image-cnn' },
  });
}
