/**
 * Bookkeeping for the input fuzz suite: every response goes through `sane()`, which counts the
 * input, records any 5xx and checks that a 4xx is `{"detail": string | FastAPI array}`.
 */
import { expect } from 'vitest';

interface Injected {
  statusCode: number;
  body: string;
  headers: Record<string, unknown>;
}

export class FuzzStats {
  readonly inputs = new Map<string, number>();
  readonly serverErrors: string[] = [];

  count(property: string, n = 1): void {
    this.inputs.set(property, (this.inputs.get(property) ?? 0) + n);
  }

  get total(): number {
    let sum = 0;
    for (const n of this.inputs.values()) sum += n;
    return sum;
  }

  /** Counts one input; asserts status < 500 and, on a 4xx, a spec-shaped `detail`. */
  /** Status codes seen, per property: shows what the inputs reached. */
  readonly statuses = new Map<string, Map<number, number>>();

  sane(property: string, what: string, response: Injected): void {
    this.count(property);
    const seen = this.statuses.get(property) ?? new Map<number, number>();
    seen.set(response.statusCode, (seen.get(response.statusCode) ?? 0) + 1);
    this.statuses.set(property, seen);
    if (response.statusCode >= 500) this.serverErrors.push(`${property}: ${what} -> ${response.statusCode} ${response.body.slice(0, 300)}`);
    expect(response.statusCode, `${what} -> ${response.body.slice(0, 500)}`).toBeLessThan(500);
    if (response.statusCode >= 400) expectDetail(response, what);
  }

  statusLines(): string[] {
    return [...this.statuses.entries()].map(
      ([property, seen]) => `fuzz ${property}: ${[...seen.entries()].sort(([a], [b]) => a - b).map(([status, n]) => `${status}x${n}`).join(' ')}`,
    );
  }

  summary(seed: number): string {
    const parts = [...this.inputs.entries()].map(([name, n]) => `${name}=${n}`).join(', ');
    return `fuzz: ${this.total} inputs, ${this.serverErrors.length} server errors (seed ${seed}; ${parts})`;
  }
}

export function expectDetail(response: Injected, what: string): void {
  let body: unknown;
  try {
    body = JSON.parse(response.body);
  } catch {
    throw new Error(`${what} -> ${response.statusCode} with a non-JSON body: ${response.body.slice(0, 300)}`);
  }
  expect(body, `${what} -> ${response.statusCode}`).toBeTypeOf('object');
  const detail = (body as { detail?: unknown } | null)?.detail;
  if (Array.isArray(detail)) {
    expect(detail.length, `${what}: empty detail array`).toBeGreaterThan(0);
    for (const item of detail as { loc?: unknown; msg?: unknown; type?: unknown }[]) {
      expect(Array.isArray(item.loc), `${what}: detail item without loc: ${response.body.slice(0, 300)}`).toBe(true);
      expect(typeof item.msg, `${what}: detail item without msg`).toBe('string');
      expect(typeof item.type, `${what}: detail item without type`).toBe('string');
    }
  } else {
    expect(typeof detail, `${what} -> ${response.statusCode}: detail not a string: ${response.body.slice(0, 300)}`).toBe('string');
  }
}

/** Rejects when `promise` takes longer than `ms` (a hang is a failure, not a slow pass). */
export async function withinMs<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
