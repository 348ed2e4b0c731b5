/**
 * Disjoint sets over the items 0..n-1 on typed arrays (8 bytes per item): union by size, full path
 * compression on `find`. Amortised near-constant time per operation, no allocation after construction.
 */
export class UnionFind {
  private readonly parent: Uint32Array;
  private readonly sizes: Uint32Array;
  private sets: number;

  constructor(readonly n: number) {
    this.parent = new Uint32Array(n);
    this.sizes = new Uint32Array(n).fill(1);
    for (let i = 0; i < n; i++) this.parent[i] = i;
    this.sets = n;
  }

  /** The representative of `x`'s set; points every item on the way straight at it (full path compression). */
  find(x: number): number {
    const parent = this.parent;
    let root = x;
    while (parent[root] !== root) root = parent[root]!;
    while (x !== root) {
      const next = parent[x]!;
      parent[x] = root;
      x = next;
    }
    return root;
  }

  /** Joins the sets of `a` and `b`; returns the new root, or -1 when they were already one set. */
  union(a: number, b: number): number {
    let ra = this.find(a);
    let rb = this.find(b);
    if (ra === rb) return -1;
    const sizes = this.sizes;
    if (sizes[ra]! < sizes[rb]!) {
      const t = ra;
      ra = rb;
      rb = t;
    }
    this.parent[rb] = ra;
    sizes[ra] = sizes[ra]! + sizes[rb]!;
    this.sets--;
    return ra;
  }

  connected(a: number, b: number): boolean {
    return this.find(a) === this.find(b);
  }

  /** The size of `x`'s set. */
  size(x: number): number {
    return this.sizes[this.find(x)]!;
  }

  /** How many disjoint sets there are. */
  get count(): number {
    return this.sets;
  }

  /**
   * Dense labels: `labels[i]` = the number of `i`'s set, 0..count-1, numbered by first member in
   * item order (stable for a given partition).
   */
  labels(): Uint32Array {
    const n = this.n;
    const labels = new Uint32Array(n);
    const ofRoot = new Int32Array(n).fill(-1);
    let next = 0;
    for (let i = 0; i < n; i++) {
      const r = this.find(i);
      let label = ofRoot[r]!;
      if (label < 0) {
        label = next++;
        ofRoot[r] = label;
      }
      labels[i] = label;
    }
    return labels;
  }
}
