import { describe, expect, it } from 'vitest';
import { parseVql, VqlError } from './vql.js';

const parse = (value: unknown) => parseVql(JSON.stringify(value));
const failure = (source: string): VqlError => {
  try {
    parseVql(source);
  } catch (error) {
    if (error instanceof VqlError) return error;
    throw error;
  }
  throw new Error(`expected ${source} to be rejected`);
};

describe('parseVql', () => {
  it('treats a missing or blank query as no filter', () => {
    expect(parseVql(undefined)).toEqual([]);
    expect(parseVql('  ')).toEqual([]);
    expect(parseVql('[]')).toEqual([]);
  });

  it('parses every operator of the spec, ANDed in order', () => {
    expect(
      parse([
        { text: { op: 'fts', value: 'cat' } },
        { text: { op: 'semantic', value: 'a red car', threshold: 0.7 } },
        { labels: { op: 'one_of', value: ['cat', 'dog'] } },
        { tags: { op: 'is', value: ['reviewed'] } },
        { issues: { op: 'issue', value: 'blur', mode: 'in' } },
        { issues: { op: 'issue', value: 'duplicates', mode: 'out' } },
        { duplicates: { op: 'duplicates', value: 0.95 } },
        { uniqueness: { op: 'uniqueness', value: 0.8 } },
      ]),
    ).toEqual([
      { kind: 'fts', value: 'cat' },
      { kind: 'semantic', value: 'a red car', threshold: 0.7 },
      { kind: 'labels', values: ['cat', 'dog'] },
      { kind: 'tags', values: ['reviewed'] },
      { kind: 'issue', issue: 'blur', mode: 'in', minConfidence: null },
      { kind: 'issue', issue: 'duplicates', mode: 'out', minConfidence: null },
      { kind: 'duplicates', threshold: 0.95 },
      { kind: 'uniqueness', min: 0.8 },
    ]);
  });

  it('defaults an issue filter to mode "in", and accepts a lone object', () => {
    expect(parse({ issues: { op: 'issue', value: 'dark' } })).toEqual([{ kind: 'issue', issue: 'dark', mode: 'in', minConfidence: null }]);
  });

  it.each([
    ['not json', 'not valid JSON'],
    ['"blur"', 'must be a JSON array'],
    ['[1]', 'item 0 must be an object'],
    ['[{}]', 'exactly one key'],
    ['[{"text":{"op":"fts","value":"a"},"tags":{"op":"is","value":["x"]}}]', 'exactly one key'],
    ['[{"colour":{"op":"is","value":"red"}}]', 'unknown filter "colour"'],
    ['[{"text":"cat"}]', 'must be an object with "op" and "value"'],
    ['[{"text":{"value":"cat"}}]', 'missing "op"'],
    ['[{"text":{"op":"regex","value":"cat"}}]', 'unsupported op "regex"'],
    ['[{"text":{"op":"fts","value":""}}]', 'non-empty string'],
    ['[{"issues":{"op":"issue","value":"sharp"}}]', '"value" must be one of'],
    ['[{"issues":{"op":"issue","value":"blur","mode":"maybe"}}]', '"mode" must be one of in, out'],
    ['[{"duplicates":{"op":"duplicates","value":1.5}}]', 'between 0 and 1'],
    ['[{"duplicates":{"op":"duplicates"}}]', 'missing "value"'],
    ['[{"uniqueness":{"op":"uniqueness","value":"high"}}]', 'between 0 and 1'],
    ['[{"labels":{"op":"one_of","value":[]}}]', 'non-empty array of strings'],
    ['[{"tags":{"op":"is","value":["a"],"extra":1}}]', 'unexpected field "extra"'],
  ])('rejects %s naming the problem', (source, message) => {
    expect(failure(source).message).toContain(message);
  });

  it('locates the offending part', () => {
    expect(failure('[{"text":{"op":"fts","value":"a"}},{"uniqueness":{"op":"uniqueness","value":2}}]').path).toEqual([1, 'uniqueness', 'value']);
  });
});
