/**
 * Text embeddings from the text tower of a CLIP-style ONNX model pair, run by onnxruntime-node on the
 * CPU: the vectors land in the same space as the image tower's, so cosine similarity ranks images by
 * a text.
 *
 * What the model must look like:
 * - an integer input `input_ids` (else the only integer input) `[N, L]`, int64 or int32; L fixed (that
 *   many tokens are fed) or symbolic (the tokenizer's context length, 77 for CLIP, is fed);
 * - optionally `attention_mask` (1 on tokens, 0 on padding) and `position_ids` (0 … L-1), fed when declared;
 * - the embedding output `text_embeds` if there is one (CLIPTextModelWithProjection's exports), else the
 *   first output, float32, either `[N, D]` (used as is) or `[N, L, D]` (a token sequence such as
 *   `last_hidden_state`: the row at the end token, which is where CLIP pools — its argmax token id).
 *
 * Outputs are L2-normalised. Ids are `onnx-text:<file name>:<sha256 prefix>`.
 */
import { basename, extname, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { ClipTokenizer } from './clip-tokenizer.js';
import type { TextEmbedder } from './embedding-model.js';
import { l2Normalise, OnnxModelError, openOnnxSession } from './onnx-model.js';

export interface OnnxTextModelOptions {
  /** Local path of the text encoder's .onnx file. */
  path: string;
  tokenizer: ClipTokenizer;
  /** Texts per inference run when the batch axis is symbolic. Default 16. */
  batchSize?: number;
  /** onnxruntime intra-op threads. Default: onnxruntime's choice. */
  threads?: number;
  /** Which output holds the embedding, when not `text_embeds` or the first. */
  outputName?: string;
}

export interface OnnxTextModel extends TextEmbedder {
  readonly dimensions: number;
  /** Tokens fed per text. */
  readonly sequenceLength: number;
  close(): Promise<void>;
}

const DEFAULT_BATCH_SIZE = 16;

export async function loadOnnxTextModel(options: OnnxTextModelOptions): Promise<OnnxTextModel> {
  const path = resolve(options.path);
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError('batchSize must be a positive integer');
  const { session, digest } = await openOnnxSession(path, 'ONNX text model', options.threads);
  const id = `onnx-text:${basename(path, extname(path)).replaceAll(':', '_')}:${digest.slice(0, 8)}`;

  try {
    const layout = describeSession(session, path, options);
    const runner = new TextRunner(session, layout, options.tokenizer, batchSize);
    const dimensions = layout.dimensions ?? (await runner.embed(['']))[0]!.length;
    return {
      id,
      dimensions,
      sequenceLength: layout.sequenceLength,
      embedText: (texts) => runner.embed(texts),
      close: () => runner.close(),
    };
  } catch (error) {
    await session.release().catch(() => undefined);
    throw error;
  }
}

interface Layout {
  idsName: string;
  idsType: 'int64' | 'int32';
  maskName: string | undefined;
  maskType: 'int64' | 'int32';
  positionsName: string | undefined;
  outputName: string;
  fixedBatch: number | undefined;
  sequenceLength: number;
  /** From the output's static shape; undefined when symbolic. */
  dimensions: number | undefined;
}

const INTEGER_TYPES = new Set(['int64', 'int32']);

function describeSession(session: ort.InferenceSession, path: string, options: OnnxTextModelOptions): Layout {
  const fail = (message: string): never => {
    throw new OnnxModelError(path, `unsupported ONNX text model ${path}: ${message}`);
  };
  const inputs = session.inputMetadata;
  const tensorInput = (name: string) => inputs.find((input) => input.name === name && input.isTensor) as (ort.InferenceSession.ValueMetadata & { isTensor: true }) | undefined;
  const integerInputs = inputs.filter((input) => input.isTensor && INTEGER_TYPES.has(input.type));
  const ids = tensorInput('input_ids') ?? (integerInputs.length === 1 ? (integerInputs[0] as ort.InferenceSession.ValueMetadata & { isTensor: true }) : undefined);
  if (!ids) return fail(`expected an integer input named input_ids (inputs: ${session.inputNames.join(', ')})`);
  if (!INTEGER_TYPES.has(ids.type)) fail(`input '${ids.name}' is ${ids.type}, expected int64 or int32`);
  if (ids.shape.length !== 2) fail(`input '${ids.name}' has shape [${ids.shape.join(', ')}], expected [N, L]`);
  const mask = tensorInput('attention_mask');
  const positions = tensorInput('position_ids');
  const others = inputs.filter((input) => ![ids.name, mask?.name, positions?.name].includes(input.name));
  if (others.length > 0) {
    fail(`it also wants ${others.map((input) => `'${input.name}'`).join(', ')}; give the text encoder alone (a combined CLIP export needs splitting into its text and vision models)`);
  }
  const [batchDim, lengthDim] = ids.shape;
  const fixedBatch = typeof batchDim === 'number' && batchDim > 0 ? batchDim : undefined;
  const sequenceLength = typeof lengthDim === 'number' && lengthDim > 0 ? lengthDim : options.tokenizer.contextLength;
  if (sequenceLength < 2) fail(`input '${ids.name}' takes ${sequenceLength} token, too few for start and end tokens`);

  const outputs = session.outputMetadata;
  const output =
    options.outputName !== undefined
      ? outputs.find((candidate) => candidate.name === options.outputName)
      : (outputs.find((candidate) => candidate.name === 'text_embeds') ?? outputs[0]);
  if (!output) return fail(options.outputName === undefined ? 'it has no outputs' : `no output named '${options.outputName}' (outputs: ${session.outputNames.join(', ')})`);
  if (!output.isTensor) return fail(`output '${output.name}' is not a tensor`);
  if (output.type !== 'float32') fail(`output '${output.name}' is ${output.type}, expected float32`);
  if (output.shape.length !== 0 && output.shape.length !== 2 && output.shape.length !== 3) {
    fail(`output '${output.name}' has shape [${output.shape.join(', ')}], expected [N, D] or [N, L, D]`);
  }
  const embeddingAxis = output.shape.at(-1);
  return {
    idsName: ids.name,
    idsType: ids.type as 'int64' | 'int32',
    maskName: mask?.name,
    maskType: mask?.type === 'int32' ? 'int32' : 'int64',
    positionsName: positions?.name,
    outputName: output.name,
    fixedBatch,
    sequenceLength,
    dimensions: output.shape.length > 0 && typeof embeddingAxis === 'number' && embeddingAxis > 0 ? embeddingAxis : undefined,
  };
}

class TextRunner {
  private closed = false;

  constructor(
    private readonly session: ort.InferenceSession,
    private readonly layout: Layout,
    private readonly tokenizer: ClipTokenizer,
    private readonly batchSize: number,
  ) {}

  async embed(texts: string[]): Promise<Float32Array[]> {
    if (this.closed) throw new Error('ONNX text model is closed');
    const { layout, tokenizer } = this;
    const length = layout.sequenceLength;
    const batchSize = layout.fixedBatch ?? this.batchSize;
    const vectors: Float32Array[] = [];
    for (let start = 0; start < texts.length; start += batchSize) {
      const batch = texts.slice(start, start + batchSize);
      const rows = layout.fixedBatch ?? batch.length;
      const ids: number[] = [];
      const mask: number[] = [];
      const endPositions: number[] = [];
      // The rows that pad a fixed batch hold an empty text.
      for (let row = 0; row < rows; row++) {
        const encoded = tokenizer.encode(batch[row] ?? '', length);
        // The first end token: the last position of a cut text, else the one before the padding.
        const end = encoded.indexOf(tokenizer.endId, 1);
        ids.push(...encoded);
        mask.push(...encoded.map((_, i) => (i <= end ? 1 : 0)));
        endPositions.push(end);
      }
      const feeds: Record<string, ort.Tensor> = { [layout.idsName]: integerTensor(layout.idsType, ids, [rows, length]) };
      if (layout.maskName) feeds[layout.maskName] = integerTensor(layout.maskType, mask, [rows, length]);
      if (layout.positionsName) {
        feeds[layout.positionsName] = integerTensor('int64', Array.from({ length: rows * length }, (_, i) => i % length), [rows, length]);
      }
      let output: ort.Tensor | undefined;
      try {
        const results = await this.session.run(feeds, [layout.outputName]);
        output = results[layout.outputName];
        const name = layout.outputName;
        if (output === undefined || output.type !== 'float32' || !(output.data instanceof Float32Array)) {
          throw new Error(`ONNX text model output '${name}' is missing or not float32`);
        }
        const dims = output.dims;
        const data = output.data;
        if (dims[0] !== rows || (dims.length !== 2 && dims.length !== 3) || dims.some((dim) => dim < 1) || (dims.length === 3 && dims[1] !== length)) {
          throw new Error(`ONNX text model output '${name}' has shape [${dims.join(', ')}] for ${rows} texts of ${length} tokens`);
        }
        const depth = dims.at(-1)!;
        batch.forEach((_, row) => {
          // A token sequence is read at the end token: CLIP's pooled position (its highest token id).
          const offset = dims.length === 2 ? row * depth : (row * length + endPositions[row]!) * depth;
          const vector = Float32Array.from(data.subarray(offset, offset + depth));
          if (this.layout.dimensions !== undefined && vector.length !== this.layout.dimensions) {
            throw new Error(`ONNX text model output has ${vector.length} dimensions, expected ${this.layout.dimensions}`);
          }
          vectors.push(l2Normalise(vector, 'ONNX text model'));
        });
      } finally {
        for (const tensor of Object.values(feeds)) tensor.dispose();
        output?.dispose();
      }
    }
    return vectors;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.session.release();
  }
}

function integerTensor(type: 'int64' | 'int32', values: number[], dims: number[]): ort.Tensor {
  return type === 'int64' ? new ort.Tensor('int64', BigInt64Array.from(values, (v) => BigInt(v)), dims) : new ort.Tensor('int32', Int32Array.from(values), dims);
}
