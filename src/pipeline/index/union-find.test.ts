import { describe, expect, it } from 'vitest';
import { UnionFind } from './union-find.js';

describe('UnionFind', () => {
  it('starts with every item alone', () => {
    const uf = new UnionFind(4);
    expect(uf.count).toBe(4);
    for (let i = 0; i < 4; i++) {
      expect(uf.find(i)).toBe(i);
      expect(uf.size(i)).toBe(1);
    }
    expect(Array.from(uf.labels())).toEqual([0, 1, 2, 3]);
  });

  it('joins sets, counts them and reports sizes', () => {
    const uf = new UnionFind(6);
    expect(uf.union(0, 1)).toBeGreaterThanOrEqual(0);
    expect(uf.union(2, 3)).toBeGreaterThanOrEqual(0);
    expect(uf.union(1, 3)).toBeGreaterThanOrEqual(0);
    expect(uf.union(0, 2)).toBe(-1); // already one set
    expect(uf.count).toBe(3);
    expect(uf.connected(0, 3)).toBe(true);
    expect(uf.connected(0, 4)).toBe(false);
    expect(uf.size(2)).toBe(4);
    expect(uf.size(5)).toBe(1);
    expect(Array.from(uf.labels())).toEqual([0, 0, 0, 0, 1, 2]);
  });

  it('unions by size: the larger set keeps its root', () => {
    const uf = new UnionFind(5);
    uf.union(0, 1);
    uf.union(0, 2);
    const big = uf.find(0);
    uf.union(4, 3);
    expect(uf.union(3, 0)).toBe(big);
    expect(uf.find(4)).toBe(big);
  });

  it('compresses paths and stays correct on a long chain', () => {
    const n = 100_000;
    const uf = new UnionFind(n);
    for (let i = 1; i < n; i++) uf.union(i - 1, i);
    expect(uf.count).toBe(1);
    expect(uf.size(n - 1)).toBe(n);
    const root = uf.find(n - 1);
    for (let i = 0; i < n; i += 997) expect(uf.find(i)).toBe(root);
    expect(uf.labels().every((l) => l === 0)).toBe(true);
  });

  it('matches a naive partition on random unions', () => {
    const n = 300;
    const uf = new UnionFind(n);
    const naive = Array.from({ length: n }, (_, i) => i);
    let seed = 12345;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    for (let step = 0; step < 200; step++) {
      const a = rand();
      const b = rand();
      uf.union(a, b);
      const from = naive[b]!;
      const to = naive[a]!;
      for (let i = 0; i < n; i++) if (naive[i] === from) naive[i] = to;
    }
    for (let a = 0; a < n; a += 7) {
      for (let b = 0; b < n; b += 11) expect(uf.connected(a, b)).toBe(naive[a] === naive[b]);
    }
    expect(uf.count).toBe(new Set(naive).size);
  });

  it('handles an empty universe', () => {
    const uf = new UnionFind(0);
    expect(uf.count).toBe(0);
    expect(uf.labels().length).toBe(0);
  });
});
