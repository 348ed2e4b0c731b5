/**
 * VQL, the Visual Layer query language of explore's `vql` parameter: a JSON array of one-key
 * objects, ANDed. Pure: text in, typed filters out, or a {@link VqlError} that says what is wrong.
 *
 *   [{"text":{"op":"fts","value":"cat"}},
 *    {"text":{"op":"semantic","value":"a red car","threshold":0.7}},
 *    {"labels":{"op":"one_of","value":["cat","dog"]}},
 *    {"tags":{"op":"is","value":["reviewed"]}},
 *    {"issues":{"op":"issue","value":"blur","mode":"in"}},
 *    {"duplicates":{"op":"duplicates","value":0.95}},
 *    {"uniqueness":{"op":"uniqueness","value":0.8}}]
 */

export const VQL_ISSUE_TYPES = ['duplicates', 'outliers', 'blur', 'dark', 'bright', 'mislabels'] as const;
export type VqlIssueType = (typeof VQL_ISSUE_TYPES)[number];

export type VqlFilter =
  | { kind: 'fts'; value: string }
  | { kind: 'semantic'; value: string; threshold: number | null }
  | { kind: 'labels'; values: string[] }
  | { kind: 'tags'; values: string[] }
  | { kind: 'issue'; issue: VqlIssueType; mode: 'in' | 'out'; minConfidence: number | null }
  | { kind: 'duplicates'; threshold: number }
  | { kind: 'uniqueness'; min: number };

/** A malformed query; `path` locates the offending part (`[index, key, field]`). */
export class VqlError extends Error {
  constructor(
    message: string,
    readonly path: (string | number)[] = [],
  ) {
    super(message);
    this.name = 'VqlError';
  }
}

/** Longest searched text accepted, in UTF-16 code units. */
const MAX_TEXT_LENGTH = 1000;

const KEYS = ['text', 'labels', 'tags', 'issues', 'duplicates', 'uniqueness'] as const;
type Key = (typeof KEYS)[number];

/** Parses a VQL document; an empty or blank string is no filter. */
export function parseVql(source: string | undefined | null): VqlFilter[] {
  if (source === undefined || source === null || source.trim() === '') return [];
  let document: unknown;
  try {
    document = JSON.parse(source);
  } catch (error) {
    throw new VqlError(`VQL is not valid JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (isObject(document)) document = [document];
  if (!Array.isArray(document)) throw new VqlError('VQL must be a JSON array of filter objects, e.g. [{"issues":{"op":"issue","value":"blur"}}]');
  return document.map((item, index) => parseItem(item, index));
}

function parseItem(item: unknown, index: number): VqlFilter {
  if (!isObject(item)) throw new VqlError(`VQL item ${index} must be an object with one key (one of ${KEYS.join(', ')})`, [index]);
  const keys = Object.keys(item);
  if (keys.length !== 1) throw new VqlError(`VQL item ${index} must have exactly one key (one of ${KEYS.join(', ')}), got ${keys.length}`, [index]);
  const key = keys[0]!;
  if (!(KEYS as readonly string[]).includes(key)) throw new VqlError(`VQL item ${index}: unknown filter "${key}" (expected one of ${KEYS.join(', ')})`, [index, key]);
  const body = item[key];
  if (!isObject(body)) throw new VqlError(`VQL item ${index}: "${key}" must be an object with "op" and "value"`, [index, key]);
  const ctx = new Context(index, key as Key, body);
  switch (key as Key) {
    case 'text': {
      const op = ctx.op(['fts', 'semantic']);
      const value = ctx.nonEmptyString('value');
      if (op === 'fts') {
        ctx.only(['op', 'value']);
        return { kind: 'fts', value };
      }
      ctx.only(['op', 'value', 'threshold']);
      return { kind: 'semantic', value, threshold: ctx.optionalUnit('threshold') };
    }
    case 'labels':
    case 'tags': {
      ctx.op(['one_of', 'is', 'in']);
      ctx.only(['op', 'value']);
      return { kind: key as 'labels' | 'tags', values: ctx.stringList('value') };
    }
    case 'issues': {
      ctx.op(['issue', 'is']);
      ctx.only(['op', 'value', 'mode', 'confidence', 'threshold']);
      const issue = ctx.oneOf('value', VQL_ISSUE_TYPES);
      const mode = body.mode === undefined ? 'in' : ctx.oneOf('mode', ['in', 'out'] as const);
      const minConfidence = ctx.optionalUnit('confidence') ?? ctx.optionalUnit('threshold');
      return { kind: 'issue', issue, mode, minConfidence };
    }
    case 'duplicates':
      ctx.op(['duplicates']);
      ctx.only(['op', 'value']);
      return { kind: 'duplicates', threshold: ctx.unit('value') };
    case 'uniqueness':
      ctx.op(['uniqueness']);
      ctx.only(['op', 'value']);
      return { kind: 'uniqueness', min: ctx.unit('value') };
  }
}

class Context {
  constructor(
    private readonly index: number,
    private readonly key: Key,
    private readonly body: Record<string, unknown>,
  ) {}

  private fail(field: string, message: string): never {
    throw new VqlError(`VQL item ${this.index} ("${this.key}"): ${message}`, [this.index, this.key, field]);
  }

  op<T extends string>(allowed: T[]): T {
    const op = this.body.op;
    if (op === undefined) this.fail('op', `missing "op" (expected ${allowed.map((a) => `"${a}"`).join(' or ')})`);
    if (typeof op !== 'string' || !(allowed as string[]).includes(op)) this.fail('op', `unsupported op ${JSON.stringify(op)} (expected ${allowed.map((a) => `"${a}"`).join(' or ')})`);
    return op as T;
  }

  only(fields: string[]): void {
    for (const field of Object.keys(this.body)) if (!fields.includes(field)) this.fail(field, `unexpected field "${field}" (allowed: ${fields.join(', ')})`);
  }

  nonEmptyString(field: string): string {
    const value = this.body[field];
    if (typeof value !== 'string' || value.trim() === '') this.fail(field, `"${field}" must be a non-empty string`);
    // Searched text becomes a LIKE pattern; SQLite refuses patterns over 50,000 bytes (a 500).
    if (value.length > MAX_TEXT_LENGTH) this.fail(field, `"${field}" must be at most ${MAX_TEXT_LENGTH} characters; got ${value.length}`);
    return value;
  }

  stringList(field: string): string[] {
    const value = this.body[field];
    if (typeof value === 'string' && value !== '') return [value];
    if (!Array.isArray(value) || value.length === 0 || !value.every((v) => typeof v === 'string')) this.fail(field, `"${field}" must be a non-empty array of strings`);
    return value as string[];
  }

  oneOf<T extends string>(field: string, allowed: readonly T[]): T {
    const value = this.body[field];
    if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
      this.fail(field, `"${field}" must be one of ${allowed.join(', ')}; got ${JSON.stringify(value)}`);
    }
    return value as T;
  }

  unit(field: string): number {
    const value = this.body[field];
    if (value === undefined) this.fail(field, `missing "${field}" (a number between 0 and 1)`);
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1) this.fail(field, `"${field}" must be a number between 0 and 1; got ${JSON.stringify(value)}`);
    return value;
  }

  optionalUnit(field: string): number | null {
    return this.body[field] === undefined ? null : this.unit(field);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
