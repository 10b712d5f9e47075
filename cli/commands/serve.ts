import type { Command } from 'commander';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('Serve an ONNX model over the Open Inference Protocol v2 with dynamic batching')
    .requiredOption('--model <path>', 'ONNX model file')
    .requiredOption('--name <name>', 'model name in the API')
    .action(() => {
      throw new Error('not implemented yet');
    });
}
