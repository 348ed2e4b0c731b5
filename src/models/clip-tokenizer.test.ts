import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_CLIP_END, TINY_CLIP_MERGES, TINY_CLIP_START, tinyClipVocabulary, writeTinyClipTokenizer, type TinyClipTokenizerFormat } from '../../test/fixtures/onnx.js';
import { ClipTokenizer, ClipTokenizerError, loadClipTokenizer } from './clip-tokenizer.js';

/**
 * Reference vectors for the tiny vocabulary of test/fixtures/onnx.ts, worked out by hand from CLIP's
 * simple_tokenizer rules. Byte tokens: the printable bytes 0x21-0x7E are ids 0-93 (id = byte - 33),
 * 0xA1-0xAC ids 94-105, 0xAE-0xFF ids 106-187, the others 188-255 in byte order; `+ 256` for the
 * `</w>` form; merges 512 + rank (512 're' … 524 'the</w>'); start 525, end 526. The same rules give
 * the real CLIP vocabulary's "a" = 320 ('a' is 0x61 - 33 = 64, + 256) and "1" = 272.
 */
const S = TINY_CLIP_START; // 525
const E = TINY_CLIP_END; // 526
const REFERENCE: [string, number[]][] = [
  // Multi-merge words, lowest rank first: r e d</w> → re d</w> → red</w>; g r e e n</w> → g re e n</w> → gre e n</w> → gre en</w> → green</w>.
  ['red', [S, 513, E]],
  ['green', [S, 516, E]],
  ['blue', [S, 519, E]],
  ['the dog', [S, 524, 521, E]],
  // Merges stop where no ranked pair is left: r e e d</w> → re e d</w> ('e' 68, 'd</w>' 323).
  ['reed', [S, 512, 68, 323, E]],
  // A word without any merge is its byte tokens: c a t</w> (66, 64, 339).
  ['cat', [S, 66, 64, 339, E]],
  // Case and whitespace: lowercased, runs of whitespace are one separator.
  ['  RED\t\n Green  ', [S, 513, 516, E]],
  // 's is its own piece (' s</w> → 's</w> 522); another apostrophe is a punctuation piece ("'</w>" 262, "x</w>" 343).
  ["dog's", [S, 521, 522, E]],
  ["dog'x", [S, 521, 262, 343, E]],
  // Digits are split one by one: '4</w>' 275, '2</w>' 273 (as the real vocabulary's "1234" → 272 273 274 275).
  ['42 red', [S, 275, 273, 513, E]],
  // A punctuation run is one piece: ! (0) ?</w> (286); ',' alone → ',</w>' 267.
  ['red!?', [S, 513, 0, 286, E]],
  ['red, blue', [S, 513, 267, 519, E]],
  // HTML entities are unescaped (twice): & → '&</w>' 261.
  ['red &amp;amp; blue', [S, 513, 261, 519, E]],
  // Unicode: UTF-8 bytes as byte tokens. é = C3 A9 → 'Ã' 127, '©</w>' 358 (the real vocabulary's "ß" starts with 127 too).
  ['é', [S, 127, 358, E]],
  // Bytes without a printable form (0x9F, 0x98, 0x80) use the U+0100… tokens: 😀 = F0 9F 98 80 → 172 253 246 478.
  ['😀', [S, 172, 253, 246, 478, E]],
  // Letters of any script are one piece: 'жd' → ж = D0 B6 ('Ð' 140, '¶' 114), 'd</w>' 323.
  ['жd', [S, 140, 114, 323, E]],
  // ftfy's fixes for valid Unicode: a curly apostrophe is straightened, full-width letters narrowed, ligatures split.
  ['dog’s', [S, 521, 522, E]],
  ['ｒｅｄ', [S, 513, E]],
  // The special tokens are recognised in the text.
  ['<|startoftext|>red<|endoftext|>', [S, S, 513, E, E]],
  ['', [S, E]],
];

describe('ClipTokenizer', () => {
  let dir: string;
  const loaded = new Map<TinyClipTokenizerFormat, ClipTokenizer>();
  const formats: TinyClipTokenizerFormat[] = ['tokenizer.json', 'vocab.json+merges.txt', 'bpe_simple_vocab.txt.gz'];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vizdex-tokenizer-'));
    for (const format of formats) {
      const sub = join(dir, format.replace(/[^a-z]/g, '-'));
      await mkdir(sub);
      loaded.set(format, await loadClipTokenizer(await writeTinyClipTokenizer(sub, format)));
    }
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it.each(formats)('reads %s into the same vocabulary (start and end ids from the special tokens)', (format) => {
    const tokenizer = loaded.get(format)!;
    expect(tokenizer.startId).toBe(525);
    expect(tokenizer.endId).toBe(526);
    expect(tokenizer.contextLength).toBe(77);
  });

  it.each(REFERENCE)('tokenizes %j as CLIP does', (text, expected) => {
    for (const format of formats) expect(loaded.get(format)!.tokenize(text), format).toEqual(expected);
  });

  it('pads with 0 to the context length', () => {
    const ids = loaded.get('tokenizer.json')!.encode('red');
    expect(ids).toHaveLength(77);
    expect(ids.slice(0, 4)).toEqual([S, 513, E, 0]);
    expect(ids.slice(3).every((id) => id === 0)).toBe(true);
  });

  it('cuts a long text to the context length and keeps the end token last', () => {
    const tokenizer = loaded.get('vocab.json+merges.txt')!;
    const ids = tokenizer.encode('red '.repeat(100));
    expect(ids).toHaveLength(77);
    expect(ids[0]).toBe(S);
    expect(ids.slice(1, 76)).toEqual(new Array(75).fill(513));
    expect(ids[76]).toBe(E);
    // Exactly 75 words fit untouched; a shorter context (a model with fixed L) cuts sooner.
    expect(tokenizer.encode('red '.repeat(75))).toEqual([S, ...new Array(75).fill(513), E]);
    expect(tokenizer.encode('red green blue', 4)).toEqual([S, 513, 516, E]);
    expect(tokenizer.encode('red', 6)).toEqual([S, 513, E, 0, 0, 0]);
  });

  it('falls back to byte tokens, then to the unknown (end) token, for symbols a small vocabulary lacks', () => {
    // Only the merged words and the byte 'x' (no '</w>' forms): "rex" → r e x</w> → re x</w>; 're' is missing,
    // so its bytes 'r' (missing → end) and 'e' (missing → end); 'x</w>' missing → 'x'.
    const vocab = new Map([
      ['x', 0],
      ['red</w>', 1],
      ['<|startoftext|>', 2],
      ['<|endoftext|>', 3],
    ]);
    const tokenizer = new ClipTokenizer(vocab, TINY_CLIP_MERGES);
    expect(tokenizer.tokenize('red')).toEqual([2, 1, 3]);
    expect(tokenizer.tokenize('rex')).toEqual([2, 3, 3, 0, 3]);
  });

  it('builds the vocabulary of a merges file as simple_tokenizer does', () => {
    const vocab = tinyClipVocabulary();
    expect(vocab.get('!')).toBe(0);
    expect(vocab.get('a</w>')).toBe(320);
    expect(vocab.get('Ā')).toBe(188); // byte 0x00
    expect(vocab.get('red</w>')).toBe(513);
  });

  it('says what is wrong with a missing or malformed tokenizer', async () => {
    await expect(loadClipTokenizer(join(dir, 'nope.json'))).rejects.toThrow(/tokenizer not found: .*nope\.json/);
    await writeFile(join(dir, 'broken.json'), '{"model":');
    await expect(loadClipTokenizer(join(dir, 'broken.json'))).rejects.toThrow(/not JSON/);
    await writeFile(join(dir, 'word.json'), JSON.stringify({ model: { type: 'WordPiece', vocab: {}, merges: [] } }));
    await expect(loadClipTokenizer(join(dir, 'word.json'))).rejects.toThrow(/WordPiece model, not BPE/);
    await writeFile(join(dir, 'nospecial.json'), JSON.stringify({ model: { type: 'BPE', vocab: { a: 0 }, merges: [] } }));
    await expect(loadClipTokenizer(join(dir, 'nospecial.json'))).rejects.toThrow(ClipTokenizerError);
    await expect(loadClipTokenizer(join(dir, 'nospecial.json'))).rejects.toThrow(/no <\|startoftext\|>/);
    await writeFile(join(dir, 'model.bin'), 'x');
    await expect(loadClipTokenizer(join(dir, 'model.bin'))).rejects.toThrow(/expected tokenizer.json, vocab.json \+ merges.txt, or bpe_simple_vocab_16e6.txt.gz/);
    await mkdir(join(dir, 'empty'));
    await expect(loadClipTokenizer(join(dir, 'empty'))).rejects.toThrow(/no tokenizer in folder/);
  });
});
