import type { ModelConfig } from '../config.js';
import { createBuiltinModel } from './builtin-descriptor.js';
import type { EmbeddingModel } from './embedding-model.js';
import { loadOnnxModel } from './onnx-model.js';

/** The configured embedding model: the built-in descriptor, or an ONNX image model from a local file. */
export async function createEmbeddingModel(config: ModelConfig, threads: number): Promise<EmbeddingModel> {
  if (config.kind === 'builtin') return createBuiltinModel();
  return loadOnnxModel({
    path: config.path,
    inputSize: config.inputSize,
    mean: config.mean,
    std: config.std,
    duplicateCosine: config.duplicateCosine,
    threads,
  });
}
