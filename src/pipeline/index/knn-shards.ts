import fsp from 'node:fs/promises';
import { blobKeys, type BlobStore } from '../../storage/blob-store.js';
import type { KnnGraph } from './vector-index.js';

const MAGIC = 'VZKNNSH1';
const HEADER_BYTES = 16;

/**
 * Rows of one k-NN graph computed by different workers, kept in the blob store (the one place every
 * worker reaches) until the merge step puts them together.
 */
export class KnnShardStore {
  constructor(private readonly blobs: BlobStore) {}

  async save(datasetId: string, taskId: string, shard: number, graph: KnnGraph): Promise<void> {
    const header = Buffer.alloc(HEADER_BYTES);
    header.write(MAGIC, 0, 'latin1');
    header.writeUInt32LE(graph.n, 8);
    header.writeUInt32LE(graph.k, 12);
    await this.blobs.putBuffer(
      blobKeys.knnShard(datasetId, taskId, shard),
      Buffer.concat([header, bytesOf(graph.neighbors), bytesOf(graph.similarities)]),
    );
  }

  exists(datasetId: string, taskId: string, shard: number): Promise<boolean> {
    return this.blobs.exists(blobKeys.knnShard(datasetId, taskId, shard));
  }

  async load(datasetId: string, taskId: string, shard: number): Promise<KnnGraph> {
    const data = await this.blobs.withLocalFile(blobKeys.knnShard(datasetId, taskId, shard), (file) => fsp.readFile(file));
    if (data.toString('latin1', 0, 8) !== MAGIC) throw new Error(`k-NN shard ${shard} of task ${taskId} is not a shard file`);
    const n = data.readUInt32LE(8);
    const k = data.readUInt32LE(12);
    const cells = n * k;
    if (data.length !== HEADER_BYTES + cells * 8) throw new Error(`k-NN shard ${shard} of task ${taskId} is truncated`);
    // Copied out so the arrays are aligned whatever the Buffer's offset in its pool.
    const neighbors = new Uint32Array(cells);
    new Uint8Array(neighbors.buffer).set(data.subarray(HEADER_BYTES, HEADER_BYTES + cells * 4));
    const similarities = new Float32Array(cells);
    new Uint8Array(similarities.buffer).set(data.subarray(HEADER_BYTES + cells * 4));
    return { n, k, neighbors, similarities, exact: false };
  }

  async deleteAll(datasetId: string, taskId: string): Promise<void> {
    await this.blobs.deletePrefix(blobKeys.knnShardsPrefix(datasetId, taskId));
  }
}

function bytesOf(array: Uint32Array | Float32Array): Buffer {
  return Buffer.from(array.buffer, array.byteOffset, array.byteLength);
}
