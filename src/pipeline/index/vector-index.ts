import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import usearch from 'usearch';
import type { BlobStore } from '../../storage/blob-store.js';

/**
 * The in-process vector index behind the k-NN graph and search-by-image: the only module that talks
 * to usearch. Vectors are L2-normalised float32 rows of one flat array (row i = key i). Small sets
 * use usearch's exact (brute-force, SIMD) search; above `exactMaxSize` an HNSW graph takes over.
 *
 * usearch reports distances, not similarities: for metric `cos` (used here) the distance is
 * 1 − cos(a, b) (and for `ip` it is 1 − a·b, the same number on unit vectors), so the raw cosine
 * similarity handed out is 1 − distance, clamped to [−1, 1] (within 1e-6 of 1 counts as identical: 1).
 *
 * Every call into usearch is synchronous native code; the batch operations run it in slices and
 * yield to the event loop between them so a server process keeps answering while a dataset indexes.
 */

/** Marks a missing neighbour (fewer than k other vectors); its similarity is -Infinity. */
export const NO_NEIGHBOR = 0xffff_ffff;

export type VectorIndexMode = 'exact' | 'hnsw';

export interface VectorIndexOptions {
  /** `auto` (default): exact up to `exactMaxSize` vectors, HNSW beyond. */
  mode?: 'auto' | VectorIndexMode;
  /** Largest set searched exactly in `auto` mode (default {@link DEFAULT_EXACT_MAX_SIZE}). */
  exactMaxSize?: number;
  /** HNSW: edges per node (M). Default 16. */
  connectivity?: number;
  /** HNSW: candidate list while inserting (efConstruction). Default 128. */
  expansionAdd?: number;
  /** HNSW: candidate list while searching (ef; usearch widens it to k when k is larger). Default 64. */
  expansionSearch?: number;
  /**
   * HNSW: how vectors are stored inside the graph. Default f16: half the memory of f32 and about half
   * the build/search CPU at the same recall@10 (bench/knn.ts, 100k × 256); the neighbours found are
   * re-scored against the float32 rows, so similarities stay exact. bf16 loses recall.
   */
  quantization?: 'f32' | 'f16' | 'bf16';
  /** Native threads per batch call; 0 (default) = every core. */
  threads?: number;
}

export interface Progress {
  (done: number, total: number): void;
}

/** A k-NN graph or a batch of search results: row i holds the neighbours of vector/query i, best first. */
export interface Neighbors {
  /** Rows. */
  readonly n: number;
  /** Columns per row. */
  readonly k: number;
  /** n*k keys; {@link NO_NEIGHBOR} where a row has fewer than k. */
  readonly neighbors: Uint32Array;
  /** n*k raw cosine similarities (1 = identical direction); -Infinity where the neighbour is missing. */
  readonly similarities: Float32Array;
}

export interface KnnGraph extends Neighbors {
  /** True when the graph came from exact search (every neighbour is a true nearest neighbour). */
  readonly exact: boolean;
}

export const DEFAULT_EXACT_MAX_SIZE = 10_000;
const DEFAULT_CONNECTIVITY = 16;
const DEFAULT_EXPANSION_ADD = 128;
const DEFAULT_EXPANSION_SEARCH = 64;
/** Bytes of the n×batch distance matrix usearch's exact search allocates per call (16 B per pair). */
const EXACT_SCRATCH_BYTES = 256 * 1024 * 1024;
/** Vectors per native add/search call in HNSW mode: the event loop gets a turn between slices. */
const HNSW_SLICE = 4096;
/** Float32 rounding leaves identical unit vectors a hair below 1: snap those to exactly 1. */
const IDENTICAL = 1 - 1e-6;
const FLAT_MAGIC = 'VZFLAT01';
const FLAT_HEADER_BYTES = 16; // magic (8) + n (u32) + d (u32)

type ResolvedOptions = Required<Omit<VectorIndexOptions, 'mode' | 'exactMaxSize' | 'quantization'>> & {
  quantization: 'f32' | 'f16' | 'bf16' | 'unknown';
};

type Matches = { keys: BigUint64Array; distances: Float32Array; counts?: BigUint64Array };

export class VectorIndex {
  private constructor(
    readonly mode: VectorIndexMode,
    readonly dimensions: number,
    readonly size: number,
    /** The rows (row i = key i); absent for an HNSW index loaded without them. */
    private vectors: Float32Array | undefined,
    private readonly hnsw: InstanceType<typeof usearch.Index> | undefined,
    private readonly options: ResolvedOptions,
  ) {}

  /**
   * Builds an index over `vectors` (n = vectors.length / dimensions rows, keys 0..n-1). The array is
   * kept by reference (exact mode searches it; HNSW mode needs it for `knn`): do not mutate it.
   * Synchronous native work runs in slices with the event loop served in between.
   */
  static async build(
    vectors: Float32Array,
    dimensions: number,
    options: VectorIndexOptions & { onProgress?: Progress } = {},
  ): Promise<VectorIndex> {
    if (!Number.isInteger(dimensions) || dimensions <= 0) throw new Error(`Invalid dimensions: ${dimensions}`);
    if (vectors.length % dimensions !== 0) {
      throw new Error(`Vector data (${vectors.length} floats) is not a multiple of ${dimensions} dimensions`);
    }
    const n = vectors.length / dimensions;
    const resolved = resolveOptions(options);
    const mode = chooseMode(n, options);
    if (mode === 'exact') {
      options.onProgress?.(n, n);
      // A view into a larger buffer is copied once (see exactSearch below).
      const own = vectors.byteOffset === 0 ? vectors : vectors.slice();
      return new VectorIndex('exact', dimensions, n, own, undefined, resolved);
    }
    const index = newHnsw(dimensions, resolved);
    for (let start = 0; start < n; start += HNSW_SLICE) {
      const end = Math.min(n, start + HNSW_SLICE);
      const keys = new BigUint64Array(end - start);
      for (let i = start; i < end; i++) keys[i - start] = BigInt(i);
      index.add(keys, vectors.subarray(start * dimensions, end * dimensions), resolved.threads);
      options.onProgress?.(end, n);
      if (end < n) await yieldToEventLoop();
    }
    return new VectorIndex('hnsw', dimensions, n, vectors, index, resolved);
  }

  /** Whether `knn` can run (an HNSW index loaded from disk needs its vectors back). */
  get hasVectors(): boolean {
    return this.vectors !== undefined;
  }

  /** Gives a loaded HNSW index its rows back so `knn` can run. */
  attachVectors(vectors: Float32Array): void {
    if (vectors.length !== this.size * this.dimensions) {
      throw new Error(`Expected ${this.size}×${this.dimensions} floats, got ${vectors.length}`);
    }
    this.vectors = vectors;
  }

  /**
   * The k nearest neighbours of every indexed vector, itself excluded, best first. Identical vectors
   * are neighbours of each other with similarity 1. Rows of sets smaller than k+1 are padded.
   */
  async knn(k: number, options: { onProgress?: Progress } = {}): Promise<KnnGraph> {
    return this.knnRows(k, 0, this.size, options);
  }

  /**
   * Rows `from`..`to`-1 of `knn` (row 0 of the result is key `from`): one shard of the graph, so
   * several workers can compute one graph over the same persisted index.
   */
  async knnRows(k: number, from: number, to: number, options: { onProgress?: Progress } = {}): Promise<KnnGraph> {
    if (!Number.isInteger(k) || k <= 0) throw new Error(`k must be a positive integer, got ${k}`);
    if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to > this.size || from > to) {
      throw new Error(`Invalid row range ${from}..${to} of ${this.size}`);
    }
    const vectors = this.vectors;
    if (!vectors) throw new Error('This index was loaded without its vectors; attachVectors() before knn()');
    const n = this.size;
    const d = this.dimensions;
    const graph = emptyNeighbors(to - from, k);
    const wanted = Math.min(k + 1, n);
    if (n <= 1 || from === to) {
      options.onProgress?.(to - from, to - from);
      return { ...graph, exact: true };
    }
    const slice = this.mode === 'exact' ? exactBatch(n) : HNSW_SLICE;
    for (let start = from; start < to; start += slice) {
      const end = Math.min(to, start + slice);
      const rows = vectors.subarray(start * d, end * d);
      const matches = this.searchRaw(rows, wanted);
      copyRows(matches, end - start, wanted, graph, start, k, true, start - from);
      if (this.needsRescoring) rescoreRows(graph, start - from, rows, vectors, d);
      options.onProgress?.(end - from, to - from);
      if (end < to) await yieldToEventLoop();
    }
    return { ...graph, exact: this.mode === 'exact' };
  }

  /** The k nearest indexed vectors of each query (rows of `queries`), best first (synchronous). */
  search(queries: Float32Array, k: number): Neighbors {
    if (!Number.isInteger(k) || k <= 0) throw new Error(`k must be a positive integer, got ${k}`);
    if (queries.length % this.dimensions !== 0) {
      throw new Error(`Query data (${queries.length} floats) is not a multiple of ${this.dimensions} dimensions`);
    }
    const nq = queries.length / this.dimensions;
    const result = emptyNeighbors(nq, k);
    const wanted = Math.min(k, this.size);
    if (nq === 0 || wanted === 0) return result;
    const slice = this.mode === 'exact' ? exactBatch(this.size) : nq;
    for (let start = 0; start < nq; start += slice) {
      const end = Math.min(nq, start + slice);
      const rows = queries.subarray(start * this.dimensions, end * this.dimensions);
      const matches = this.searchRaw(rows, wanted);
      copyRows(matches, end - start, wanted, result, start, k, false);
      if (this.needsRescoring && this.vectors) rescoreRows(result, start, rows, this.vectors, this.dimensions);
    }
    return result;
  }

  /**
   * An HNSW graph holding f16/bf16 copies (or loaded from a file, whose precision is not known here)
   * measures approximate distances: the neighbours it finds are re-scored against the float32 rows
   * (k dot products per query) so similarities, and the thresholds applied to them, stay exact.
   */
  private get needsRescoring(): boolean {
    return this.mode === 'hnsw' && this.options.quantization !== 'f32';
  }

  /** Writes the index to `file` (exact: a flat vector file; HNSW: usearch's own format). */
  async save(file: string): Promise<void> {
    await fsp.mkdir(path.dirname(file), { recursive: true });
    const partial = `${file}.partial-${process.pid}-${Date.now()}`;
    try {
      if (this.mode === 'hnsw') {
        this.hnsw!.save(partial);
      } else {
        const header = Buffer.alloc(FLAT_HEADER_BYTES);
        header.write(FLAT_MAGIC, 0, 'latin1');
        header.writeUInt32LE(this.size, 8);
        header.writeUInt32LE(this.dimensions, 12);
        const handle = await fsp.open(partial, 'w');
        try {
          await handle.write(header);
          const v = this.vectors!;
          await handle.write(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
        } finally {
          await handle.close();
        }
      }
      await fsp.rename(partial, file);
    } catch (error) {
      await fsp.rm(partial, { force: true });
      throw error;
    }
  }

  /**
   * Reads an index written by `save`. An HNSW index comes back searchable; give it its `vectors`
   * (same row order) if `knn` will be called. `view` memory-maps an HNSW file instead of reading it
   * (the file must then outlive the index).
   */
  static async load(
    file: string,
    options: { vectors?: Float32Array; view?: boolean; threads?: number } = {},
  ): Promise<VectorIndex> {
    const handle = await fsp.open(file, 'r');
    let flat: { n: number; d: number } | undefined;
    try {
      const header = Buffer.alloc(FLAT_HEADER_BYTES);
      const { bytesRead } = await handle.read(header, 0, FLAT_HEADER_BYTES, 0);
      if (bytesRead === FLAT_HEADER_BYTES && header.toString('latin1', 0, 8) === FLAT_MAGIC) {
        flat = { n: header.readUInt32LE(8), d: header.readUInt32LE(12) };
        const vectors = new Float32Array(flat.n * flat.d);
        const bytes = new Uint8Array(vectors.buffer);
        let offset = 0;
        while (offset < bytes.length) {
          const chunk = Math.min(bytes.length - offset, 1 << 28);
          const read = await handle.read(bytes, offset, chunk, FLAT_HEADER_BYTES + offset);
          if (read.bytesRead === 0) throw new Error(`Truncated vector index file: ${file}`);
          offset += read.bytesRead;
        }
        const resolved = resolveOptions({ threads: options.threads ?? 0 });
        return new VectorIndex('exact', flat.d, flat.n, vectors, undefined, resolved);
      }
    } finally {
      await handle.close();
    }
    const resolved = resolveOptions({ threads: options.threads ?? 0 });
    const index = newHnsw(1, resolved); // load() replaces dimensions, metric and graph with the file's
    if (options.view) index.view(file);
    else index.load(file);
    const dimensions = index.dimensions();
    const loaded = new VectorIndex('hnsw', dimensions, index.size(), undefined, index, {
      ...resolved,
      connectivity: index.connectivity(),
      quantization: 'unknown',
    });
    if (options.vectors) loaded.attachVectors(options.vectors);
    return loaded;
  }

  /** Saves into a blob store under `key` (through a temporary local file). */
  async saveToStore(store: BlobStore, key: string): Promise<void> {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'vizdex-index-'));
    try {
      const file = path.join(dir, 'index.bin');
      await this.save(file);
      await store.putFile(key, file);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  }

  /** Loads an index saved with `saveToStore` (read fully into memory: remote copies are temporary). */
  static async loadFromStore(
    store: BlobStore,
    key: string,
    options: { vectors?: Float32Array; threads?: number } = {},
  ): Promise<VectorIndex> {
    return store.withLocalFile(key, (file) => VectorIndex.load(file, { ...options, view: false }));
  }

  private searchRaw(queries: Float32Array, wanted: number): Matches {
    if (this.mode === 'hnsw') {
      const result = this.hnsw!.search(queries, wanted, this.options.threads) as unknown as Matches;
      return result;
    }
    return exactSearch(this.vectors!, queries, this.dimensions, wanted, this.options.threads);
  }
}

/** Exact k-NN of `queries` against `dataset` (rows of `dimensions`), e.g. ground truth for a recall check. */
export function exactNeighbors(dataset: Float32Array, queries: Float32Array, dimensions: number, k: number): Neighbors {
  const n = dataset.length / dimensions;
  const nq = queries.length / dimensions;
  const result = emptyNeighbors(nq, k);
  const wanted = Math.min(k, n);
  if (nq === 0 || wanted === 0) return result;
  const slice = exactBatch(n);
  for (let start = 0; start < nq; start += slice) {
    const end = Math.min(nq, start + slice);
    const matches = exactSearch(dataset, queries.subarray(start * dimensions, end * dimensions), dimensions, wanted, 0);
    copyRows(matches, end - start, wanted, result, start, k, false);
  }
  return result;
}

/**
 * usearch's exact search. Its native binding reads each typed array from the start of the
 * underlying ArrayBuffer, ignoring `byteOffset` (usearch 2.25: `ArrayBuffer().Data()`), so a
 * `subarray` view silently searches the wrong rows: views are copied into arrays of their own.
 */
function exactSearch(dataset: Float32Array, queries: Float32Array, dimensions: number, wanted: number, threads: number): Matches {
  const own = (a: Float32Array) => (a.byteOffset === 0 ? a : a.slice());
  return usearch.exactSearch(own(dataset), own(queries), dimensions, wanted, usearch.MetricKind.Cos, threads) as unknown as Matches;
}

function resolveOptions(options: VectorIndexOptions): ResolvedOptions {
  return {
    connectivity: options.connectivity ?? DEFAULT_CONNECTIVITY,
    expansionAdd: options.expansionAdd ?? DEFAULT_EXPANSION_ADD,
    expansionSearch: options.expansionSearch ?? DEFAULT_EXPANSION_SEARCH,
    quantization: options.quantization ?? 'f16',
    threads: options.threads ?? 0,
  };
}

function chooseMode(n: number, options: VectorIndexOptions): VectorIndexMode {
  const mode = options.mode ?? 'auto';
  if (mode !== 'auto') return mode;
  return n <= (options.exactMaxSize ?? DEFAULT_EXACT_MAX_SIZE) ? 'exact' : 'hnsw';
}

const SCALAR_KINDS = {
  f32: usearch.ScalarKind.F32,
  f16: usearch.ScalarKind.F16,
  bf16: usearch.ScalarKind.BF16,
} as const;

function newHnsw(dimensions: number, o: ResolvedOptions) {
  return new usearch.Index({
    dimensions,
    metric: usearch.MetricKind.Cos,
    quantization: SCALAR_KINDS[o.quantization === 'unknown' ? 'f32' : o.quantization],
    connectivity: o.connectivity,
    expansion_add: o.expansionAdd,
    expansion_search: o.expansionSearch,
    multi: false,
  });
}

/** Queries per exact-search call: usearch materialises the whole n×batch distance matrix (twice). */
function exactBatch(n: number): number {
  return Math.max(1, Math.min(4096, Math.floor(EXACT_SCRATCH_BYTES / (16 * Math.max(1, n)))));
}

function emptyNeighbors(n: number, k: number): Neighbors {
  return {
    n,
    k,
    neighbors: new Uint32Array(n * k).fill(NO_NEIGHBOR),
    similarities: new Float32Array(n * k).fill(Number.NEGATIVE_INFINITY),
  };
}

/** Recomputes rows start.. of `out` as exact float32 cosines against `vectors` and re-sorts each row. */
function rescoreRows(out: Neighbors, start: number, queries: Float32Array, vectors: Float32Array, d: number): void {
  const { k, neighbors, similarities } = out;
  const rows = queries.length / d;
  for (let r = 0; r < rows; r++) {
    const base = (start + r) * k;
    const q = r * d;
    for (let j = 0; j < k; j++) {
      const id = neighbors[base + j]!;
      if (id === NO_NEIGHBOR) break;
      const v = id * d;
      let dot = 0;
      for (let x = 0; x < d; x++) dot += queries[q + x]! * vectors[v + x]!;
      similarities[base + j] = dot >= IDENTICAL ? 1 : dot < -1 ? -1 : dot;
    }
    // Insertion sort: rows are short and nearly sorted already.
    for (let j = 1; j < k && neighbors[base + j] !== NO_NEIGHBOR; j++) {
      const sim = similarities[base + j]!;
      const id = neighbors[base + j]!;
      let i = j - 1;
      while (i >= 0 && similarities[base + i]! < sim) {
        similarities[base + i + 1] = similarities[base + i]!;
        neighbors[base + i + 1] = neighbors[base + i]!;
        i--;
      }
      similarities[base + i + 1] = sim;
      neighbors[base + i + 1] = id;
    }
  }
}

/**
 * Copies a batch of usearch results (rows of `wanted`) into rows start.. of `out` (rows of out.k),
 * dropping the query itself when `dropSelf` (by key, not position: ties with duplicates put self
 * anywhere among the zero distances; when self is absent the row's last match is dropped instead).
 */
function copyRows(
  matches: Matches,
  rows: number,
  wanted: number,
  out: Neighbors,
  start: number,
  k: number,
  dropSelf: boolean,
  /** Row of `out` for query row 0 (default `start`: the whole graph). */
  outStart: number = start,
): void {
  const { keys, distances, counts } = matches;
  for (let r = 0; r < rows; r++) {
    const self = start + r;
    // Batches report per-row counts; a single query's Matches is already cut to what was found.
    const found = counts ? Math.min(wanted, Number(counts[r])) : Math.min(wanted, keys.length / rows);
    const base = r * wanted;
    let selfAt = -1;
    if (dropSelf) {
      for (let j = 0; j < found; j++) {
        if (Number(keys[base + j]) === self) {
          selfAt = j;
          break;
        }
      }
      if (selfAt < 0 && found > k) selfAt = found - 1; // self crowded out by duplicates: keep the best k
    }
    let o = (outStart + r) * k;
    const rowEnd = o + k;
    for (let j = 0; j < found && o < rowEnd; j++) {
      if (j === selfAt) continue;
      out.neighbors[o] = Number(keys[base + j]);
      const sim = 1 - distances[base + j]!;
      out.similarities[o] = sim >= IDENTICAL ? 1 : sim < -1 ? -1 : sim;
      o++;
    }
  }
}
