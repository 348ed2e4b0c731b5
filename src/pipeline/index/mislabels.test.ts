import { describe, expect, it } from 'vitest';
import { findMislabels, type MislabelInput } from './mislabels.js';
import { NO_NEIGHBOR } from './vector-index.js';

/**
 * A k-NN graph from hand-written rows: rows[i] = [[neighbour, calibrated similarity], …], best
 * first; shorter rows are padded with NO_NEIGHBOR / -Infinity as the vector index pads them.
 */
function graph(k: number, rows: Array<Array<[number, number]>>, labels: (string | null)[]): MislabelInput {
  const n = rows.length;
  const neighbors = new Uint32Array(n * k).fill(NO_NEIGHBOR);
  const similarities = new Float32Array(n * k).fill(Number.NEGATIVE_INFINITY);
  rows.forEach((row, i) => {
    row.forEach(([j, s], c) => {
      neighbors[i * k + c] = j;
      similarities[i * k + c] = s;
    });
  });
  return { n, k, neighbors, similarities, labels };
}

/** Every item linked to every other at `similarity` (a tight group), k = n - 1. */
function clique(labels: (string | null)[], similarity = 0.85): MislabelInput {
  const n = labels.length;
  const rows = labels.map((_, i) =>
    labels.flatMap((__, j) => (j === i ? [] : [[j, similarity] as [number, number]])),
  );
  return graph(n - 1, rows, labels);
}

describe('findMislabels', () => {
  it('finds a flipped label and suggests the label its neighbours agree on', () => {
    const labels = ['cat', 'cat', 'cat', 'dog', 'cat', 'cat'];
    const found = findMislabels(clique(labels));
    expect(found).toHaveLength(1);
    expect(found[0]!.item).toBe(3);
    expect(found[0]!.suggestedLabel).toBe('cat');
    // Five voters at 0.85, all for "cat": 4.25 / (4.25 + 1).
    expect(found[0]!.confidence).toBeCloseTo(4.25 / 5.25, 5);
  });

  it('flags nothing in a neighbourhood that agrees', () => {
    expect(findMislabels(clique(['cat', 'cat', 'cat', 'cat', 'cat']))).toEqual([]);
    // Two consistent classes side by side: each item's neighbours share its label.
    const labels = ['a', 'a', 'a', 'a', 'b', 'b', 'b', 'b'];
    const rows = labels.map((label, i) =>
      labels.flatMap((other, j) => (j === i ? [] : [[j, other === label ? 0.9 : 0.55] as [number, number]])),
    );
    expect(findMislabels(graph(7, rows, labels))).toEqual([]);
  });

  it('needs enough voters', () => {
    const labels = ['cat', 'cat', 'dog'];
    expect(findMislabels(clique(labels))).toEqual([]);
    const found = findMislabels(clique(labels), { minVoters: 2 });
    expect(found.map((m) => [m.item, m.suggestedLabel])).toEqual([[2, 'cat']]);
  });

  it('ignores neighbours below the similarity floor', () => {
    const labels = ['cat', 'cat', 'cat', 'cat', 'dog'];
    expect(findMislabels(clique(labels, 0.4))).toEqual([]);
    expect(findMislabels(clique(labels, 0.4), { minSimilarity: 0.3 }).map((m) => m.item)).toEqual([4]);
  });

  it('neither judges nor counts unlabelled items', () => {
    // Item 0 is "dog" among three "cat"s and three unlabelled items: only the cats vote.
    const labels = ['dog', 'cat', 'cat', 'cat', null, null, null];
    const found = findMislabels(clique(labels));
    expect(found.map((m) => m.item)).toEqual([0]);
    expect(found[0]!.confidence).toBeCloseTo((3 * 0.85) / (3 * 0.85 + 1), 5);
    // With only two labelled neighbours left, there are too few voters.
    expect(findMislabels(clique(['dog', 'cat', 'cat', null, null, null]))).toEqual([]);
    // Unlabelled items are never reported, however their neighbours are labelled.
    expect(findMislabels(clique([null, 'cat', 'cat', 'cat', 'cat']))).toEqual([]);
  });

  it('does not flag ties', () => {
    // Item 0 ("a") has two neighbours for "b" and two for "c", equally similar: no winner.
    const labels = ['a', 'b', 'b', 'c', 'c'];
    const rows: Array<Array<[number, number]>> = [
      [[1, 0.8], [2, 0.8], [3, 0.8], [4, 0.8]],
      [[2, 0.9]],
      [[1, 0.9]],
      [[4, 0.9]],
      [[3, 0.9]],
    ];
    expect(findMislabels(graph(4, rows, labels))).toEqual([]);
    // Own label tied with another: not flagged either.
    const own: Array<Array<[number, number]>> = [
      [[1, 0.8], [2, 0.8], [3, 0.8], [4, 0.8]],
      [[2, 0.9]],
      [[1, 0.9]],
      [[4, 0.9]],
      [[3, 0.9]],
    ];
    expect(findMislabels(graph(4, own, ['a', 'a', 'a', 'b', 'b']))).toEqual([]);
  });

  it('weights the vote by similarity', () => {
    // Two close "b" neighbours outweigh three far "a" ones, so item 0 ("c") is suggested "b"…
    const rows: Array<Array<[number, number]>> = [[[1, 0.95], [2, 0.95], [3, 0.55], [4, 0.55], [5, 0.55]], [], [], [], [], []];
    const found = findMislabels(graph(5, rows, ['c', 'b', 'b', 'a', 'a', 'a']), { minShare: 0 });
    expect(found.map((m) => m.suggestedLabel)).toEqual(['b']);
    // …and an item labelled "b" there is not flagged although most of its neighbours say "a".
    expect(findMislabels(graph(5, rows, ['b', 'b', 'b', 'a', 'a', 'a']), { minShare: 0 })).toEqual([]);
  });

  it('requires the winning label to hold minShare of the vote', () => {
    // "b" wins with 2 of 5 equal votes (0.4) against 1 each for a, c, d.
    const labels = ['a', 'b', 'b', 'c', 'd', 'e'];
    const rows: Array<Array<[number, number]>> = [[[1, 0.8], [2, 0.8], [3, 0.8], [4, 0.8], [5, 0.8]], [], [], [], [], []];
    expect(findMislabels(graph(5, rows, labels))).toEqual([]);
    expect(findMislabels(graph(5, rows, labels), { minShare: 0.4 }).map((m) => m.suggestedLabel)).toEqual(['b']);
  });

  it('flags exact duplicates that carry different labels', () => {
    // Items 0 and 1 are the same picture (similarity 1) labelled differently; nothing else is near.
    const rows: Array<Array<[number, number]>> = [[[1, 1]], [[0, 1]], [[3, 0.9]], [[2, 0.9]]];
    const found = findMislabels(graph(3, rows, ['cat', 'dog', 'bird', 'bird']));
    expect(found.map((m) => [m.item, m.suggestedLabel, m.confidence])).toEqual([
      [0, 'dog', 0.5],
      [1, 'cat', 0.5],
    ]);
    // Three copies, two say "cat": only the odd one out is flagged, with more confidence.
    const three = clique(['cat', 'cat', 'dog'], 1);
    const flagged = findMislabels(three);
    expect(flagged.map((m) => [m.item, m.suggestedLabel])).toEqual([[2, 'cat']]);
    expect(flagged[0]!.confidence).toBeCloseTo(2 / 3, 5);
  });

  it('skips missing neighbours (NO_NEIGHBOR) and self-loops', () => {
    const k = 6;
    const n = 5;
    const neighbors = new Uint32Array(n * k).fill(NO_NEIGHBOR);
    const similarities = new Float32Array(n * k).fill(Number.NEGATIVE_INFINITY);
    // Item 4 ("dog"): itself, three "cat"s, then two padded slots.
    neighbors.set([4, 0, 1, 2], 4 * k);
    similarities.set([1, 0.8, 0.8, 0.8], 4 * k);
    // Item 0 ("cat"): padded slots in between with a stray similarity, which must not vote.
    neighbors.set([1, NO_NEIGHBOR, 2], 0);
    similarities.set([0.8, 0.99, 0.8], 0);
    const found = findMislabels({ n, k, neighbors, similarities, labels: ['cat', 'cat', 'cat', 'cat', 'dog'] });
    expect(found.map((m) => [m.item, m.suggestedLabel])).toEqual([[4, 'cat']]);
    expect(found[0]!.confidence).toBeCloseTo(2.4 / 3.4, 5);
    // An empty graph and a dataset of one item.
    expect(findMislabels({ n: 0, k: 4, neighbors: new Uint32Array(0), similarities: new Float32Array(0), labels: [] })).toEqual([]);
    expect(
      findMislabels({ n: 1, k: 2, neighbors: new Uint32Array(2).fill(NO_NEIGHBOR), similarities: new Float32Array(2).fill(-Infinity), labels: ['x'] }),
    ).toEqual([]);
  });

  it('orders results most confident first and keeps confidence in [0, 1]', () => {
    // Two flips: item 0 among five close "a"s, item 6 among three farther "b"s.
    const rows: Array<Array<[number, number]>> = [
      [[1, 0.95], [2, 0.95], [3, 0.95], [4, 0.95], [5, 0.95]],
      [], [], [], [], [],
      [[7, 0.6], [8, 0.6], [9, 0.6], [NO_NEIGHBOR, -Infinity], [NO_NEIGHBOR, -Infinity]],
      [], [], [],
    ];
    const labels = ['z', 'a', 'a', 'a', 'a', 'a', 'z', 'b', 'b', 'b'];
    const found = findMislabels(graph(5, rows, labels));
    expect(found.map((m) => m.item)).toEqual([0, 6]);
    for (const m of found) {
      expect(m.confidence).toBeGreaterThan(0);
      expect(m.confidence).toBeLessThanOrEqual(1);
    }
    expect(findMislabels(graph(5, rows, labels), { minConfidence: 0.7 }).map((m) => m.item)).toEqual([0]);
  });

  it('rejects arrays of the wrong size', () => {
    expect(() => findMislabels({ n: 2, k: 2, neighbors: new Uint32Array(3), similarities: new Float32Array(4), labels: ['a', 'b'] })).toThrow(/n\*k/);
    expect(() => findMislabels({ n: 2, k: 1, neighbors: new Uint32Array(2), similarities: new Float32Array(2), labels: ['a'] })).toThrow(/labels/);
  });
});
