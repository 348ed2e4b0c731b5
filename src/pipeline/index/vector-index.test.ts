import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalBlobStore } from '../../storage/local-blob-store.js';
import { exactNeighbors, NO_NEIGHBOR, VectorIndex } from './vector-index.js';
import { randomUnitRows } from '../../../test/fixtures/vectors.js';

function bruteForceKnn(v: Float32Array, d: number, k: number): number[][] {
  const n = v.length / d;
  const rows: number[][] = [];
  for (let i = 0; i < n; i++) {
    const sims: { j: number; s: number }[] = [];
    for (let j = 0; j < n; j++) {
      if (j === i) continue;
      let s = 0;
      for (let x = 0; x < d; x++) s += v[i * d + x]! * v[j * d + x]!;
      sims.push({ j, s });
    }
    sims.sort((a, b) => b.s - a.s);
    rows.push(sims.slice(0, k).map((e) => e.j));
  }
  return rows;
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vizdex-vector-index-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('VectorIndex', () => {
  it('exact k-NN matches brute force, excludes self, and returns cosine similarities', async () => {
    const d = 16;
    const v = randomUnitRows(200, d, 1);
    const index = await VectorIndex.build(v, d);
    expect(index.mode).toBe('exact');
    const graph = await index.knn(5);
    expect(graph.exact).toBe(true);
    expect(graph.neighbors).toBeInstanceOf(Uint32Array);
    expect(graph.similarities).toBeInstanceOf(Float32Array);
    const truth = bruteForceKnn(v, d, 5);
    for (let i = 0; i < 200; i++) {
      const row = Array.from(graph.neighbors.subarray(i * 5, i * 5 + 5));
      expect(row).not.toContain(i);
      expect(new Set(row)).toEqual(new Set(truth[i]));
      for (let j = 0; j < 5; j++) {
        const other = row[j]!;
        let dot = 0;
        for (let x = 0; x < d; x++) dot += v[i * d + x]! * v[other * d + x]!;
        expect(graph.similarities[i * 5 + j]).toBeCloseTo(dot, 5);
        if (j > 0) expect(graph.similarities[i * 5 + j]).toBeLessThanOrEqual(graph.similarities[i * 5 + j - 1]!);
      }
    }
  });

  it('HNSW k-NN has high recall against exact search', async () => {
    const d = 32;
    const n = 3000;
    const v = randomUnitRows(n, d, 2);
    const hnsw = await VectorIndex.build(v, d, { mode: 'hnsw' });
    expect(hnsw.mode).toBe('hnsw');
    const graph = await hnsw.knn(10);
    expect(graph.exact).toBe(false);
    const exact = await (await VectorIndex.build(v, d, { mode: 'exact' })).knn(10);
    let hits = 0;
    for (let i = 0; i < n; i++) {
      const truth = new Set(exact.neighbors.subarray(i * 10, i * 10 + 10));
      for (const j of graph.neighbors.subarray(i * 10, i * 10 + 10)) if (truth.has(j)) hits++;
      expect(Array.from(graph.neighbors.subarray(i * 10, i * 10 + 10))).not.toContain(i);
    }
    expect(hits / (n * 10)).toBeGreaterThan(0.95);
  });

  it('HNSW over f16 copies re-scores its neighbours in float32', async () => {
    const d = 32;
    const v = randomUnitRows(2000, d, 11);
    const index = await VectorIndex.build(v, d, { mode: 'hnsw', quantization: 'f16' });
    const graph = await index.knn(5);
    const found = index.search(v.subarray(7 * d, 8 * d), 3);
    expect(found.neighbors[0]).toBe(7);
    expect(found.similarities[0]).toBe(1);
    for (let i = 0; i < 2000; i += 97) {
      for (let j = 0; j < 5; j++) {
        const other = graph.neighbors[i * 5 + j]!;
        let dot = 0;
        for (let x = 0; x < d; x++) dot += v[i * d + x]! * v[other * d + x]!;
        expect(graph.similarities[i * 5 + j]).toBeCloseTo(dot, 6);
        if (j > 0) expect(graph.similarities[i * 5 + j]).toBeLessThanOrEqual(graph.similarities[i * 5 + j - 1]!);
      }
    }
  });

  it.each(['exact', 'hnsw'] as const)('%s: identical vectors are neighbours with similarity 1, even when more than k', async (mode) => {
    const d = 8;
    const base = randomUnitRows(50, d, 3);
    const v = new Float32Array(70 * d);
    v.set(base);
    for (let i = 50; i < 70; i++) v.set(base.subarray(0, d), i * d); // 21 copies of row 0
    const graph = await (await VectorIndex.build(v, d, { mode })).knn(4);
    const copies = new Set([0, ...Array.from({ length: 20 }, (_, i) => 50 + i)]);
    for (const i of copies) {
      for (let j = 0; j < 4; j++) {
        expect(copies.has(graph.neighbors[i * 4 + j]!)).toBe(true);
        expect(graph.neighbors[i * 4 + j]).not.toBe(i);
        expect(graph.similarities[i * 4 + j]).toBe(1);
      }
    }
  });

  it.each(['exact', 'hnsw'] as const)('%s: handles n = 0, 1 and n < k + 1', async (mode) => {
    const d = 4;
    const empty = await (await VectorIndex.build(new Float32Array(0), d, { mode })).knn(3);
    expect(empty.n).toBe(0);
    expect(empty.neighbors.length).toBe(0);

    const one = await (await VectorIndex.build(randomUnitRows(1, d, 4), d, { mode })).knn(3);
    expect(Array.from(one.neighbors)).toEqual([NO_NEIGHBOR, NO_NEIGHBOR, NO_NEIGHBOR]);
    expect(Array.from(one.similarities)).toEqual([-Infinity, -Infinity, -Infinity]);

    const v = randomUnitRows(3, d, 5);
    const three = await (await VectorIndex.build(v, d, { mode })).knn(5);
    for (let i = 0; i < 3; i++) {
      const row = Array.from(three.neighbors.subarray(i * 5, i * 5 + 5));
      expect(row.slice(0, 2).sort()).toEqual([0, 1, 2].filter((j) => j !== i));
      expect(row.slice(2)).toEqual([NO_NEIGHBOR, NO_NEIGHBOR, NO_NEIGHBOR]);
      expect(three.similarities[i * 5 + 2]).toBe(-Infinity);
    }
  });

  it.each(['exact', 'hnsw'] as const)('%s: search finds a query’s nearest vectors; save/load round-trips', async (mode) => {
    const d = 16;
    const v = randomUnitRows(500, d, 6);
    const index = await VectorIndex.build(v, d, { mode });
    const queries = v.slice(10 * d, 12 * d);
    const found = index.search(queries, 3);
    expect(found.n).toBe(2);
    expect(found.neighbors[0]).toBe(10);
    expect(found.similarities[0]).toBe(1);
    expect(found.neighbors[3]).toBe(11);

    const file = path.join(tmp, `${mode}.index`);
    await index.save(file);
    const loaded = await VectorIndex.load(file);
    expect(loaded.mode).toBe(mode);
    expect(loaded.size).toBe(500);
    expect(loaded.dimensions).toBe(d);
    const again = loaded.search(queries, 3);
    expect(Array.from(again.neighbors)).toEqual(Array.from(found.neighbors));
    if (mode === 'hnsw') {
      expect(loaded.hasVectors).toBe(false);
      await expect(loaded.knn(3)).rejects.toThrow(/attachVectors/);
      loaded.attachVectors(v);
    }
    const g1 = await index.knn(3);
    const g2 = await loaded.knn(3);
    expect(Array.from(g2.neighbors)).toEqual(Array.from(g1.neighbors));

    const viewed = mode === 'hnsw' ? await VectorIndex.load(file, { view: true }) : loaded;
    expect(viewed.search(queries, 1).neighbors[0]).toBe(10);
  });

  it.each(['exact', 'hnsw'] as const)('knnRows shards (%s) put together are the whole knn graph', async (mode) => {
    const d = 16;
    const n = 1200;
    const v = randomUnitRows(n, d, 7);
    const index = await VectorIndex.build(v, d, { mode, quantization: 'f32' });
    const whole = await index.knn(8);
    const cuts = [0, 1, 400, 401, 1199, 1200];
    for (let c = 0; c + 1 < cuts.length; c++) {
      const shard = await index.knnRows(8, cuts[c]!, cuts[c + 1]!);
      expect(shard.n).toBe(cuts[c + 1]! - cuts[c]!);
      expect(Array.from(shard.neighbors)).toEqual(Array.from(whole.neighbors.subarray(cuts[c]! * 8, cuts[c + 1]! * 8)));
      expect(Array.from(shard.similarities)).toEqual(Array.from(whole.similarities.subarray(cuts[c]! * 8, cuts[c + 1]! * 8)));
    }
    await expect(index.knnRows(8, 5, n + 1)).rejects.toThrow(/Invalid row range/);
  });

  it('saves to and loads from a blob store', async () => {
    const d = 8;
    const v = randomUnitRows(100, d, 7);
    const store = new LocalBlobStore(path.join(tmp, 'store'));
    const index = await VectorIndex.build(v, d, { mode: 'hnsw' });
    await index.saveToStore(store, 'datasets/x/index.usearch');
    expect(await store.exists('datasets/x/index.usearch')).toBe(true);
    const loaded = await VectorIndex.loadFromStore(store, 'datasets/x/index.usearch', { vectors: v });
    expect(loaded.hasVectors).toBe(true);
    expect(loaded.search(v.subarray(0, d), 1).neighbors[0]).toBe(0);
  });

  it('exactNeighbors gives ground truth for a query batch; k larger than the set is padded', () => {
    const d = 8;
    const v = randomUnitRows(5, d, 8);
    const r = exactNeighbors(v, v.subarray(0, 2 * d), d, 7);
    expect(r.n).toBe(2);
    expect(r.neighbors[0]).toBe(0);
    expect(r.neighbors[7]).toBe(1);
    expect(r.neighbors[5]).toBe(NO_NEIGHBOR);
  });

  it.each(['exact', 'hnsw'] as const)('%s: a single query asking for more than the set holds is padded', async (mode) => {
    const d = 8;
    const v = randomUnitRows(5, d, 10);
    const index = await VectorIndex.build(v, d, { mode });
    const r = index.search(v.slice(2 * d, 3 * d), 8);
    expect(r.neighbors[0]).toBe(2);
    expect(new Set(r.neighbors.subarray(0, 5))).toEqual(new Set([0, 1, 2, 3, 4]));
    expect(Array.from(r.neighbors.subarray(5))).toEqual([NO_NEIGHBOR, NO_NEIGHBOR, NO_NEIGHBOR]);
    expect(Array.from(r.similarities.subarray(5))).toEqual([-Infinity, -Infinity, -Infinity]);
  });

  it('rejects bad shapes', async () => {
    await expect(VectorIndex.build(new Float32Array(10), 3)).rejects.toThrow(/multiple/);
    const index = await VectorIndex.build(new Float32Array(12), 3);
    expect(() => index.search(new Float32Array(4), 1)).toThrow(/multiple/);
    await expect(index.knn(0)).rejects.toThrow(/positive/);
  });
});

describe('VectorIndex batching', () => {
  it('exact k-NN stays right across several native batches and on a view into a larger buffer', async () => {
    // 5000 vectors → usearch's exact search runs in more than one batch of queries.
    const d = 8;
    const big = randomUnitRows(5100, d, 9);
    const v = big.subarray(100 * d); // byteOffset ≠ 0
    const n = v.length / d;
    const graph = await (await VectorIndex.build(v, d, { mode: 'exact' })).knn(2);
    const hnswGraph = await (await VectorIndex.build(v, d, { mode: 'hnsw' })).knn(2);
    for (const i of [0, 1, 2500, 4000, n - 1]) {
      let best = -2;
      let bestJ = -1;
      for (let j = 0; j < n; j++) {
        if (j === i) continue;
        let s = 0;
        for (let x = 0; x < d; x++) s += v[i * d + x]! * v[j * d + x]!;
        if (s > best) {
          best = s;
          bestJ = j;
        }
      }
      expect(graph.neighbors[i * 2]).toBe(bestJ);
      expect(graph.similarities[i * 2]).toBeCloseTo(best, 5);
      expect(hnswGraph.neighbors[i * 2]).toBe(bestJ);
    }
    const queries = big.subarray(4000 * d, 4002 * d);
    const index = await VectorIndex.build(v, d, { mode: 'exact' });
    expect(Array.from(index.search(queries, 1).neighbors)).toEqual([3900, 3901]);
    expect(Array.from(exactNeighbors(v, queries, d, 1).neighbors)).toEqual([3900, 3901]);
  });
});
