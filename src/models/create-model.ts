import type { ModelConfig } from '../config.js';
import { createBuiltinModel } from './builtin-descriptor.js';
import { loadClipTokenizer } from './clip-tokenizer.js';
import type { EmbeddingModel } from './embedding-model.js';
import { loadOnnxModel, OnnxModelError } from './onnx-model.js';
import { loadOnnxTextModel } from './onnx-text-model.js';

/**
 * The configured embedding model: the built-in descriptor, or an ONNX image model from a local file,
 * with the text encoder and tokenizer of the same CLIP-style model when they are configured.
 */
export async function createEmbeddingModel(config: ModelConfig, threads: number): Promise<EmbeddingModel> {
  if (config.kind === 'builtin') return createBuiltinModel();
  const image = await loadOnnxModel({
    path: config.path,
    inputSize: config.inputSize,
    mean: config.mean,
    std: config.std,
    duplicateCosine: config.duplicateCosine,
    threads,
  });
  if (!config.text) return image;

  const { path: textPath, tokenizer: tokenizerPath } = config.text;
  let text;
  try {
    const tokenizer = await loadClipTokenizer(tokenizerPath);
    text = await loadOnnxTextModel({ path: textPath, tokenizer, threads });
  } catch (error) {
    await image.close();
    throw error;
  }
  if (text.dimensions !== image.dimensions) {
    await Promise.all([image.close(), text.close()]);
    throw new OnnxModelError(
      textPath,
      `the text model ${textPath} gives ${text.dimensions}-dimensional vectors but the image model ${config.path} gives ${image.dimensions}: ` +
        'use the text and image towers of the same CLIP model (their projected text_embeds / image_embeds outputs)',
    );
  }
  return {
    id: image.id,
    dimensions: image.dimensions,
    duplicateCosine: image.duplicateCosine,
    embed: (rasters) => image.embed(rasters),
    text: { id: text.id, embedText: (texts) => text.embedText(texts) },
    async close() {
      await Promise.all([image.close(), text.close()]);
    },
  };
}
