/**
 * OpenAI CLIP's text tokenizer (`clip/simple_tokenizer.py`): byte-level BPE with a `</w>` end-of-word
 * marker, as CLIP's text encoders were trained on. Pure TypeScript, no dependency.
 *
 * encode(text):
 * 1. clean: ftfy's fixes that apply to valid Unicode (NFC, curly quotes straightened, Latin ligatures
 *    and full-width forms replaced), HTML entities unescaped twice (as `html.unescape` is applied twice;
 *    the common named and all numeric entities), whitespace runs collapsed to one space, trimmed,
 *    lowercased. ftfy's mojibake repair (text decoded with the wrong charset) is not reproduced.
 * 2. split with CLIP's pattern: the two special tokens, the contractions `'s 't 're 've 'm 'll 'd`,
 *    runs of letters, single digits, runs of anything else but whitespace;
 * 3. each piece's UTF-8 bytes mapped to printable characters (GPT-2's `bytes_to_unicode`), `</w>`
 *    appended to its last character, then pairs merged lowest rank first until no ranked pair is left;
 * 4. `[<|startoftext|>, ...tokens, <|endoftext|>]`, cut to the context length (the last position is
 *    always the end token, as `clip.tokenize(truncate=True)` does) and padded with 0.
 *
 * A symbol that is not in the vocabulary (a small vocabulary without every byte) falls back to its
 * single byte characters, and a byte that is not there either to the unknown token, `<|endoftext|>`,
 * as Hugging Face's CLIPTokenizer does. With CLIP's own vocabulary every byte is a token, so neither
 * happens.
 *
 * Files read by {@link loadClipTokenizer}: a Hugging Face `tokenizer.json` (model.vocab and
 * model.merges), a folder (or the pair) `vocab.json` + `merges.txt`, or OpenAI's
 * `bpe_simple_vocab_16e6.txt.gz` (merges only; the vocabulary is built as simple_tokenizer builds it).
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { gunzipSync } from 'node:zlib';

export const CLIP_CONTEXT_LENGTH = 77;
export const START_OF_TEXT = '<|startoftext|>';
export const END_OF_TEXT = '<|endoftext|>';
const END_OF_WORD = '</w>';
/** OpenAI's merges file holds more lines than CLIP uses: simple_tokenizer keeps lines 1 … 49152-256-2. */
const OPENAI_MERGE_COUNT = 49152 - 256 - 2;
const PAD_ID = 0;

const PATTERN = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+/gu;
const CACHE_LIMIT = 10_000;

/** A tokenizer file is missing, unreadable or not one of the supported formats. */
export class ClipTokenizerError extends Error {
  override readonly name = 'ClipTokenizerError';

  constructor(readonly tokenizerPath: string, message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

export interface ClipTokenizerOptions {
  /** Tokens per sequence, start and end tokens included. Default 77. */
  contextLength?: number;
}

export class ClipTokenizer {
  readonly startId: number;
  readonly endId: number;
  readonly contextLength: number;
  private readonly ranks = new Map<string, number>();
  private readonly cache = new Map<string, number[]>();

  /**
   * @param vocab token → id
   * @param merges merge rules, highest priority first (rank = index)
   */
  constructor(
    private readonly vocab: ReadonlyMap<string, number>,
    merges: readonly (readonly [string, string])[],
    options: ClipTokenizerOptions = {},
  ) {
    const contextLength = options.contextLength ?? CLIP_CONTEXT_LENGTH;
    if (!Number.isInteger(contextLength) || contextLength < 2) throw new RangeError(`contextLength must be an integer ≥ 2, got ${contextLength}`);
    this.contextLength = contextLength;
    const start = vocab.get(START_OF_TEXT);
    const end = vocab.get(END_OF_TEXT);
    if (start === undefined || end === undefined) throw new RangeError(`the vocabulary has no ${START_OF_TEXT} or no ${END_OF_TEXT} token`);
    this.startId = start;
    this.endId = end;
    merges.forEach(([first, second], rank) => {
      const key = pairKey(first, second);
      if (!this.ranks.has(key)) this.ranks.set(key, rank);
    });
  }

  /** The token ids of a text: start token, BPE tokens, end token; neither cut nor padded. */
  tokenize(text: string): number[] {
    const ids = [this.startId];
    for (const match of clean(text).matchAll(PATTERN)) {
      const piece = match[0];
      if (piece === START_OF_TEXT) ids.push(this.startId);
      else if (piece === END_OF_TEXT) ids.push(this.endId);
      else ids.push(...this.bpe(byteEncode(piece)));
    }
    ids.push(this.endId);
    return ids;
  }

  /** `contextLength` ids: cut (the last one stays the end token) or padded with 0. */
  encode(text: string, contextLength = this.contextLength): number[] {
    const ids = this.tokenize(text);
    if (ids.length > contextLength) {
      ids.length = contextLength;
      ids[contextLength - 1] = this.endId;
    }
    while (ids.length < contextLength) ids.push(PAD_ID);
    return ids;
  }

  private bpe(token: string): number[] {
    const cached = this.cache.get(token);
    if (cached) return cached;
    let word = [...token];
    word[word.length - 1] += END_OF_WORD;
    while (word.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < word.length - 1; i++) {
        const rank = this.ranks.get(pairKey(word[i]!, word[i + 1]!));
        if (rank !== undefined && rank < bestRank) [best, bestRank] = [i, rank];
      }
      if (best < 0) break;
      // Merge every occurrence of the pair, left to right, as simple_tokenizer does.
      const [first, second] = [word[best]!, word[best + 1]!];
      const merged: string[] = [];
      for (let i = 0; i < word.length; ) {
        if (word[i] === first && word[i + 1] === second && i < word.length - 1) {
          merged.push(first + second);
          i += 2;
        } else {
          merged.push(word[i]!);
          i += 1;
        }
      }
      word = merged;
    }
    const ids = word.flatMap((symbol) => this.idsOf(symbol));
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(token, ids);
    return ids;
  }

  /** A symbol's id, else its byte characters' ids (the last one keeps `</w>`), else the unknown token. */
  private idsOf(symbol: string): number[] {
    const id = this.vocab.get(symbol);
    if (id !== undefined) return [id];
    const endsWord = symbol.endsWith(END_OF_WORD);
    const chars = [...(endsWord ? symbol.slice(0, -END_OF_WORD.length) : symbol)];
    if (chars.length <= 1 && !endsWord) return [this.endId];
    return chars.map((char, index) => {
      const withSuffix = endsWord && index === chars.length - 1 ? char + END_OF_WORD : char;
      return this.vocab.get(withSuffix) ?? this.vocab.get(char) ?? this.endId;
    });
  }
}

/** Builds a tokenizer from OpenAI's merges file (`bpe_simple_vocab_16e6.txt`, already gunzipped). */
export function clipTokenizerFromOpenAiMerges(text: string, options?: ClipTokenizerOptions): ClipTokenizer {
  const lines = text.split('\n');
  const merges = lines.slice(1, OPENAI_MERGE_COUNT + 1).filter((line) => line !== '').map((line) => splitMerge(line, 'merges'));
  const symbols = [...BYTE_ENCODER];
  const vocab = [...symbols, ...symbols.map((symbol) => symbol + END_OF_WORD), ...merges.map(([a, b]) => a + b), START_OF_TEXT, END_OF_TEXT];
  return new ClipTokenizer(new Map(vocab.map((token, id) => [token, id])), merges, options);
}

/** Builds a tokenizer from a Hugging Face `tokenizer.json` (a BPE model, as CLIPTokenizerFast saves it). */
export function clipTokenizerFromHuggingFace(json: unknown, options?: ClipTokenizerOptions): ClipTokenizer {
  const model = (json as { model?: { type?: string; vocab?: unknown; merges?: unknown } } | null)?.model;
  if (!model || typeof model.vocab !== 'object' || model.vocab === null || !Array.isArray(model.merges)) {
    throw new TypeError('not a tokenizer.json with a BPE model (model.vocab and model.merges)');
  }
  if (model.type !== undefined && model.type !== 'BPE') throw new TypeError(`tokenizer.json holds a ${model.type} model, not BPE`);
  const vocab = vocabMap(model.vocab);
  // Added tokens (the specials) may be listed only there.
  const added = (json as { added_tokens?: unknown }).added_tokens;
  if (Array.isArray(added)) {
    for (const token of added as { id?: unknown; content?: unknown }[]) {
      if (typeof token.content === 'string' && typeof token.id === 'number' && !vocab.has(token.content)) vocab.set(token.content, token.id);
    }
  }
  const merges = (model.merges as unknown[]).map((merge) => {
    if (typeof merge === 'string') return splitMerge(merge, 'tokenizer.json');
    if (Array.isArray(merge) && merge.length === 2 && merge.every((part) => typeof part === 'string')) return [merge[0], merge[1]] as [string, string];
    throw new TypeError(`tokenizer.json has a merge that is neither "a b" nor ["a", "b"]: ${JSON.stringify(merge)}`);
  });
  return new ClipTokenizer(vocab, merges, options);
}

/** Builds a tokenizer from `vocab.json` (token → id) and `merges.txt` (`#version` line, then `a b` per line). */
export function clipTokenizerFromVocabAndMerges(vocabJson: unknown, mergesText: string, options?: ClipTokenizerOptions): ClipTokenizer {
  const merges = mergesText
    .split('\n')
    .map((line) => line.replace(/\r$/, ''))
    .filter((line) => line !== '' && !line.startsWith('#version'))
    .map((line) => splitMerge(line, 'merges.txt'));
  return new ClipTokenizer(vocabMap(vocabJson), merges, options);
}

/**
 * Loads a tokenizer from a path: a `tokenizer.json`, OpenAI's `*.txt.gz` (or gunzipped `*.txt`) merges
 * file, `vocab.json` or `merges.txt` (the other one beside it), or a folder holding any of those
 * (tokenizer.json preferred).
 */
export async function loadClipTokenizer(path: string, options?: ClipTokenizerOptions): Promise<ClipTokenizer> {
  const fail = (message: string, cause?: unknown): never => {
    throw new ClipTokenizerError(path, message, cause === undefined ? undefined : { cause });
  };
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(path)).isDirectory();
  } catch (error) {
    const code = error instanceof Error && 'code' in error ? String(error.code) : '';
    return fail(code === 'ENOENT' ? `tokenizer not found: ${path}` : `tokenizer not readable: ${path} (${errorMessage(error)})`, error);
  }
  let files: { tokenizerJson?: string; vocab?: string; merges?: string; openAi?: string };
  if (isDirectory) {
    const names = new Set(await readdir(path));
    const openAi = [...names].find((name) => /^bpe_simple_vocab.*\.txt(\.gz)?$/.test(name));
    files = {
      ...(names.has('tokenizer.json') ? { tokenizerJson: join(path, 'tokenizer.json') } : {}),
      ...(names.has('vocab.json') && names.has('merges.txt') ? { vocab: join(path, 'vocab.json'), merges: join(path, 'merges.txt') } : {}),
      ...(openAi ? { openAi: join(path, openAi) } : {}),
    };
  } else {
    const name = basename(path);
    const sibling = (other: string) => join(path, '..', other);
    if (name.endsWith('.txt.gz') || /^bpe_simple_vocab.*\.txt$/.test(name)) files = { openAi: path };
    else if (name === 'vocab.json') files = { vocab: path, merges: sibling('merges.txt') };
    else if (name === 'merges.txt') files = { vocab: sibling('vocab.json'), merges: path };
    else if (name.endsWith('.json')) files = { tokenizerJson: path };
    else return fail(`unsupported tokenizer file ${path}: expected tokenizer.json, vocab.json + merges.txt, or bpe_simple_vocab_16e6.txt.gz`);
  }

  const read = async (file: string): Promise<Buffer> => {
    try {
      return await readFile(file);
    } catch (error) {
      return fail(`tokenizer file not readable: ${file} (${errorMessage(error)})`, error);
    }
  };
  const parseJson = (bytes: Buffer, file: string): unknown => {
    try {
      return JSON.parse(bytes.toString('utf8'));
    } catch (error) {
      return fail(`tokenizer file is not JSON: ${file} (${errorMessage(error)})`, error);
    }
  };
  try {
    if (files.tokenizerJson) return clipTokenizerFromHuggingFace(parseJson(await read(files.tokenizerJson), files.tokenizerJson), options);
    if (files.vocab && files.merges) {
      const [vocab, merges] = await Promise.all([read(files.vocab), read(files.merges)]);
      return clipTokenizerFromVocabAndMerges(parseJson(vocab, files.vocab), merges.toString('utf8'), options);
    }
    if (files.openAi) {
      let bytes = await read(files.openAi);
      if (files.openAi.endsWith('.gz')) {
        try {
          bytes = gunzipSync(bytes);
        } catch (error) {
          return fail(`tokenizer file is not gzip: ${files.openAi} (${errorMessage(error)})`, error);
        }
      }
      return clipTokenizerFromOpenAiMerges(bytes.toString('utf8'), options);
    }
  } catch (error) {
    if (error instanceof ClipTokenizerError) throw error;
    return fail(`unusable tokenizer ${path}: ${errorMessage(error)}`, error);
  }
  return fail(`no tokenizer in folder ${path}: expected tokenizer.json, vocab.json + merges.txt, or bpe_simple_vocab_16e6.txt.gz`);
}

// ---------------------------------------------------------------------------------------------

const isPrintable = (byte: number) => (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);

/** GPT-2's `bytes_to_unicode`: a printable byte stands for itself, the others for U+0100, U+0101, … in byte order. */
const BYTE_TO_CHAR: readonly string[] = (() => {
  let extra = 0;
  return Array.from({ length: 256 }, (_, byte) => String.fromCharCode(isPrintable(byte) ? byte : 256 + extra++));
})();

/** The same characters in the order simple_tokenizer lists them as the vocabulary's first 256 tokens: printable bytes first. */
const BYTE_ENCODER: readonly string[] = [
  ...BYTE_TO_CHAR.filter((_, byte) => isPrintable(byte)),
  ...BYTE_TO_CHAR.filter((_, byte) => !isPrintable(byte)),
];

/** The UTF-8 bytes of a piece as `bytes_to_unicode` characters. */
function byteEncode(piece: string): string {
  let out = '';
  for (const byte of Buffer.from(piece, 'utf8')) out += BYTE_TO_CHAR[byte]!;
  return out;
}

const NAMED_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };

function unescapeHtml(text: string): string {
  return text.replace(/&(#[0-9]+|#[xX][0-9a-fA-F]+|[a-zA-Z]+);/g, (entity, body: string) => {
    if (body.startsWith('#')) {
      const code = body[1] === 'x' || body[1] === 'X' ? Number.parseInt(body.slice(2), 16) : Number.parseInt(body.slice(1), 10);
      return code > 0 && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff) ? String.fromCodePoint(code) : entity;
    }
    return NAMED_ENTITIES[body] ?? entity;
  });
}

/** What ftfy's fix_latin_ligatures replaces. */
const LIGATURES: Record<string, string> = {
  'Ĳ': 'IJ', 'ĳ': 'ij', 'ŉ': 'ʼn', 'Ǆ': 'DŽ', 'ǅ': 'Dž', 'ǆ': 'dž', 'Ǉ': 'LJ', 'ǈ': 'Lj', 'ǉ': 'lj', 'Ǌ': 'NJ', 'ǋ': 'Nj', 'ǌ': 'nj',
  'ﬀ': 'ff', 'ﬁ': 'fi', 'ﬂ': 'fl', 'ﬃ': 'ffi', 'ﬄ': 'ffl', 'ﬅ': 'ſt', 'ﬆ': 'st',
};

/**
 * simple_tokenizer's `whitespace_clean(basic_clean(text)).lower()`. Of ftfy's `fix_text` it applies what
 * changes valid Unicode (NFC, curly quotes → straight, Latin ligatures, full-width → normal width), not
 * the repair of mojibake (text decoded with the wrong charset).
 */
function clean(text: string): string {
  const fixed = text
    .normalize('NFC')
    .replace(/[\u02bc\u2018-\u201b]/g, "'")
    .replace(/[\u201c-\u201f]/g, '"')
    .replace(/[\u0132\u0133\u0149\u01c4-\u01cc\ufb00-\ufb06]/g, (char) => LIGATURES[char] ?? char)
    .replace(/[\u3000\uff01-\uffef]/g, (char) => (char === '\u3000' ? ' ' : char.normalize('NFKC')));
  return unescapeHtml(unescapeHtml(fixed)).replace(/\s+/gu, ' ').trim().toLowerCase();
}

function pairKey(first: string, second: string): string {
  // A space never occurs inside a symbol (bytes_to_unicode maps it to 'Ġ'), so it separates the pair.
  return `${first} ${second}`;
}

function splitMerge(line: string, source: string): [string, string] {
  const parts = line.split(' ');
  if (parts.length !== 2 || parts[0] === '' || parts[1] === '') throw new TypeError(`${source} has a line that is not "a b": ${JSON.stringify(line)}`);
  return [parts[0]!, parts[1]!];
}

function vocabMap(value: unknown): Map<string, number> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new TypeError('the vocabulary is not a {"token": id} object');
  const vocab = new Map<string, number>();
  for (const [token, id] of Object.entries(value)) {
    if (!Number.isInteger(id) || (id as number) < 0) throw new TypeError(`the vocabulary gives ${JSON.stringify(token)} the id ${JSON.stringify(id)}`);
    vocab.set(token, id as number);
  }
  return vocab;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
