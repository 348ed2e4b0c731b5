/**
 * Reads uploaded archives (.zip, .tar, .tar.gz) from local disk as streams, never whole.
 *
 * `scanArchive` checks the listing against the path rules and the bomb limits before anything is
 * extracted; `extractArchive` hands out the regular files one at a time and applies the same checks
 * again to the bytes actually produced, because headers can lie.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { pipeline, Readable, Transform } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { Parser, type ReadEntry } from 'tar';
import yauzl, { type Entry, type ZipFile } from 'yauzl';

export type ArchiveFormat = 'zip' | 'tar' | 'tar.gz';

export interface ArchiveLimits {
  /** Entries of any kind (files, directories); refused beyond. */
  maxEntries: number;
  /** Sum of the uncompressed file bytes; refused beyond. */
  maxTotalBytes: number;
  /** Uncompressed bytes / compressed bytes, per zip entry and for the whole archive; refused beyond. */
  maxCompressionRatio: number;
}

export const DEFAULT_ARCHIVE_LIMITS: ArchiveLimits = Object.freeze({
  maxEntries: 100_000,
  maxTotalBytes: 50 * 1024 ** 3,
  maxCompressionRatio: 200,
});

export interface ArchiveFileEntry {
  /** '/'-separated, relative, without '.' segments. */
  path: string;
  size: number;
}

export interface ArchiveScan {
  /** Regular files only, in archive order; duplicates are kept. */
  files: ArchiveFileEntry[];
}

/** The archive breaks the rules (paths, links, limits); `problems` lists what was found. */
export class UnsafeArchiveError extends Error {
  constructor(readonly problems: string[]) {
    super(`Unsafe archive: ${problems.join('; ')}`);
    this.name = 'UnsafeArchiveError';
  }
}

/** The archive cannot be read at all: truncated, not really of its format, bad compressed data. */
export class CorruptArchiveError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'CorruptArchiveError';
  }
}

/**
 * The format named by the file's extension, confirmed by its first bytes (at least 262 of them for
 * a tar); null when it is not an archive or name and content disagree.
 */
export function archiveFormatOf(fileName: string, head: Buffer): ArchiveFormat | null {
  const format = formatByName(fileName.toLowerCase());
  return format && CONTENT_MATCHES[format](head) ? format : null;
}

/** Lists and checks every entry; throws UnsafeArchiveError with all problems found, CorruptArchiveError when unreadable. */
export async function scanArchive(
  file: string,
  format: ArchiveFormat,
  limits: ArchiveLimits = DEFAULT_ARCHIVE_LIMITS,
): Promise<ArchiveScan> {
  const guard = new ArchiveGuard(limits, await archiveBytes(file));
  const files: ArchiveFileEntry[] = [];
  for await (const item of archiveItems(file, format, guard)) {
    const entry = guard.admit(item.header);
    if (entry) files.push(entry);
    if (guard.limitReached) break;
  }
  guard.throwIfRefused();
  return { files };
}

/**
 * Streams the regular files one at a time. `onEntry` must read its stream to the end (or destroy
 * it) before its promise resolves; the next entry is not read until then. Stops with
 * UnsafeArchiveError at the first broken rule, counting real bytes, or CorruptArchiveError.
 */
export async function extractArchive(
  file: string,
  format: ArchiveFormat,
  onEntry: (entry: ArchiveFileEntry, stream: Readable) => Promise<void>,
  limits: ArchiveLimits = DEFAULT_ARCHIVE_LIMITS,
): Promise<void> {
  const guard = new ArchiveGuard(limits, await archiveBytes(file));
  for await (const item of archiveItems(file, format, guard)) {
    const entry = guard.admit(item.header);
    guard.throwIfRefused();
    if (entry) await deliver(entry, item, guard, format, onEntry);
  }
  guard.throwIfRefused();
}

// ---- Checks -------------------------------------------------------------------------------------

type EntryKind = 'file' | 'directory' | 'symlink' | 'hardlink' | 'device' | 'other';

/** What an archive's header says about one entry, before any of its bytes are read. */
interface EntryHeader {
  /** The name exactly as stored (decoded), before any normalisation. */
  rawPath: string;
  kind: EntryKind;
  size: number;
  /** zip only: the size of the entry's compressed data, for its own ratio. */
  compressedSize?: number;
  /** Why the entry's bytes could not be decoded (encryption, compression method). */
  unreadable?: string;
}

const REFUSED_KINDS: Partial<Record<EntryKind, string>> = {
  symlink: 'symbolic link',
  hardlink: 'hard link',
  device: 'device or FIFO',
};

const MAX_LISTED_PROBLEMS = 20;

/**
 * Entries and archives below this many uncompressed bytes are never refused for their ratio: a
 * small, very compressible file (a blank mask, a JSON list) is common and is no bomb by itself.
 */
const RATIO_FLOOR_BYTES = 1024 ** 2;

/** The rules for one archive, applied to headers as they are listed and to bytes as they come out. */
class ArchiveGuard {
  /** A limit was crossed: reading on would only cost time. */
  limitReached = false;
  private readonly problems: string[] = [];
  private unlistedProblems = 0;
  private entries = 0;
  private declaredBytes = 0;
  private producedBytes = 0;
  private streamedBytes = 0;

  constructor(
    private readonly limits: ArchiveLimits,
    private readonly archiveBytes: number,
  ) {}

  throwIfRefused(): void {
    if (this.problems.length > 0) throw this.refusal();
  }

  /** zip: the entry count its central directory announces, known before any entry is read. */
  announceEntries(count: number): void {
    if (count > this.limits.maxEntries) this.limit(`${count} entries, more than the limit of ${this.limits.maxEntries}`);
  }

  /** Checks one header; returns the file to hand out, or null for an entry that is passed over or refused. */
  admit(header: EntryHeader): ArchiveFileEntry | null {
    this.entries += 1;
    if (this.entries > this.limits.maxEntries) {
      this.limit(`more than the limit of ${this.limits.maxEntries} entries`);
      return null;
    }
    const name = quoted(header.rawPath);
    const refusedFor = unsafePathReason(header.rawPath) ?? REFUSED_KINDS[header.kind];
    if (refusedFor) {
      this.refuse(`${name}: ${refusedFor}`);
      return null;
    }
    if (header.kind !== 'file') return null;
    const path = normalisedPath(header.rawPath);
    if (isJunk(path)) return null;
    if (path === '') {
      this.refuse(`${name}: file without a name`);
      return null;
    }
    if (header.unreadable) {
      this.refuse(`${name}: ${header.unreadable}`);
      return null;
    }
    this.declaredBytes += header.size;
    const problem =
      this.totalProblem(this.declaredBytes) ??
      this.entryRatioProblem(path, header.size, header.compressedSize) ??
      this.archiveRatioProblem(this.declaredBytes);
    if (problem) this.limit(problem);
    return { path, size: header.size };
  }

  /** A pass-through for one file's bytes that counts them against its header and the limits. */
  meter(entry: ArchiveFileEntry, compressedSize: number | undefined): Transform {
    let produced = 0;
    return new Transform({
      transform: (chunk: Buffer, _encoding, callback) => {
        produced += chunk.length;
        this.producedBytes += chunk.length;
        const problem =
          (produced > entry.size ? this.overflowProblem(entry) : undefined) ??
          this.totalProblem(this.producedBytes) ??
          this.entryRatioProblem(entry.path, produced, compressedSize) ??
          this.archiveRatioProblem(this.producedBytes);
        if (problem) callback(this.refuseNow(problem));
        else callback(null, chunk);
      },
      flush: (callback) => {
        if (produced < entry.size) {
          callback(new CorruptArchiveError(`${quoted(entry.path)} ends after ${produced} of its ${entry.size} bytes`));
        } else callback();
      },
    });
  }

  /** The entry's decoder produced more than its header declared. */
  overflow(entry: ArchiveFileEntry): UnsafeArchiveError {
    return this.refuseNow(this.overflowProblem(entry));
  }

  /** tar: every byte of the (decompressed) tar stream, headers and skipped bodies included. */
  countStreamed(bytes: number): void {
    this.streamedBytes += bytes;
    const problem = this.archiveRatioProblem(this.streamedBytes);
    if (problem) throw this.refuseNow(problem);
  }

  private overflowProblem(entry: ArchiveFileEntry): string {
    return `${quoted(entry.path)}: more bytes than the ${entry.size} its header declares`;
  }

  private totalProblem(bytes: number): string | undefined {
    if (bytes <= this.limits.maxTotalBytes) return undefined;
    return `files add up to more than the limit of ${this.limits.maxTotalBytes} bytes`;
  }

  private entryRatioProblem(path: string, bytes: number, compressedSize: number | undefined): string | undefined {
    if (compressedSize === undefined || !this.exceedsRatio(bytes, compressedSize)) return undefined;
    return `${quoted(path)}: compressed more than ${this.limits.maxCompressionRatio}:1`;
  }

  private archiveRatioProblem(bytes: number): string | undefined {
    if (!this.exceedsRatio(bytes, this.archiveBytes)) return undefined;
    return `expands to more than ${this.limits.maxCompressionRatio} times the archive's ${this.archiveBytes} bytes`;
  }

  private exceedsRatio(bytes: number, compressedBytes: number): boolean {
    return bytes > RATIO_FLOOR_BYTES && bytes > compressedBytes * this.limits.maxCompressionRatio;
  }

  private refuse(problem: string): void {
    if (this.problems.length < MAX_LISTED_PROBLEMS) this.problems.push(problem);
    else this.unlistedProblems += 1;
  }

  private limit(problem: string): void {
    this.refuse(problem);
    this.limitReached = true;
  }

  private refuseNow(problem: string): UnsafeArchiveError {
    this.limit(problem);
    return this.refusal();
  }

  private refusal(): UnsafeArchiveError {
    const more = this.unlistedProblems > 0 ? [`and ${this.unlistedProblems} more`] : [];
    return new UnsafeArchiveError([...this.problems, ...more]);
  }
}

function unsafePathReason(rawPath: string): string | undefined {
  if (rawPath.includes('\0')) return 'NUL byte in name';
  const path = rawPath.replaceAll('\\', '/');
  // '/x', '//server/share' (from '\\server\share'), 'C:\x' and 'C:x'
  if (path.startsWith('/') || /^[a-z]:/i.test(path)) return 'absolute path';
  if (path.split('/').includes('..')) return "'..' in path";
  return undefined;
}

function normalisedPath(rawPath: string): string {
  return rawPath
    .replaceAll('\\', '/')
    .split('/')
    .filter((segment) => segment !== '' && segment !== '.')
    .join('/');
}

/** Files that operating systems leave behind: never media, never worth a problem. */
function isJunk(path: string): boolean {
  const segments = path.split('/');
  const base = segments.at(-1) ?? '';
  return segments.includes('__MACOSX') || base.startsWith('._') || base === '.DS_Store' || base.toLowerCase() === 'thumbs.db';
}

function quoted(path: string): string {
  return JSON.stringify(path.length > 200 ? `${path.slice(0, 200)}…` : path);
}

// ---- Format detection and errors ----------------------------------------------------------------

const ZIP_LOCAL_HEADER = Buffer.from('PK\x03\x04', 'latin1');
const ZIP_EMPTY_ARCHIVE = Buffer.from('PK\x05\x06', 'latin1');

const CONTENT_MATCHES: Record<ArchiveFormat, (head: Buffer) => boolean> = {
  zip: (head) => head.subarray(0, 4).equals(ZIP_LOCAL_HEADER) || head.subarray(0, 4).equals(ZIP_EMPTY_ARCHIVE),
  'tar.gz': (head) => isGzip(head),
  tar: (head) => head.toString('latin1', 257, 262) === 'ustar',
};

function formatByName(lowerCaseName: string): ArchiveFormat | null {
  if (lowerCaseName.endsWith('.zip')) return 'zip';
  if (lowerCaseName.endsWith('.tar.gz') || lowerCaseName.endsWith('.tgz')) return 'tar.gz';
  if (lowerCaseName.endsWith('.tar')) return 'tar';
  return null;
}

function isGzip(head: Buffer): boolean {
  return head[0] === 0x1f && head[1] === 0x8b;
}

async function archiveBytes(file: string): Promise<number> {
  return Math.max(1, (await stat(file)).size);
}

/** Errors of the archive libraries become CorruptArchiveError; our own and file-system errors pass. */
function asArchiveError(error: unknown, format: ArchiveFormat): Error {
  if (error instanceof UnsafeArchiveError || error instanceof CorruptArchiveError) return error;
  if (error instanceof Error && 'syscall' in error) return error;
  const reason = error instanceof Error ? error.message : String(error);
  return new CorruptArchiveError(`not a readable ${format} archive: ${reason}`);
}

// ---- Reading entries ----------------------------------------------------------------------------

/** One entry as the format readers hand it out, in archive order. */
interface ArchiveItem {
  header: EntryHeader;
  /** The entry's decoded bytes; called at most once, before the next item is asked for. */
  open(): Promise<Readable>;
}

function archiveItems(file: string, format: ArchiveFormat, guard: ArchiveGuard): AsyncGenerator<ArchiveItem> {
  return format === 'zip' ? zipItems(file, guard) : tarItems(file, format, guard);
}

/** Gives `onEntry` the file's bytes through the guard's meter and waits until it is done with them. */
async function deliver(
  entry: ArchiveFileEntry,
  item: ArchiveItem,
  guard: ArchiveGuard,
  format: ArchiveFormat,
  onEntry: (entry: ArchiveFileEntry, stream: Readable) => Promise<void>,
): Promise<void> {
  const source = await item.open().catch((error: unknown) => {
    throw asArchiveError(error, format);
  });
  const body = guard.meter(entry, item.header.compressedSize);
  let failure: Error | undefined;
  body.on('error', (error) => {
    if (error instanceof UnsafeArchiveError || error instanceof CorruptArchiveError) failure ??= error;
  });
  source.on('error', (error) => body.destroy(isYauzlOverflow(error) ? guard.overflow(entry) : asArchiveError(error, format)));
  body.on('close', () => {
    if (!source.readableEnded) source.destroy();
  });
  source.pipe(body);

  let rejected = false;
  let callerError: unknown;
  try {
    await onEntry(entry, body);
  } catch (error) {
    rejected = true;
    callerError = error;
  }
  const abandoned = !body.readableEnded && !body.destroyed;
  if (!body.readableEnded) body.destroy();
  // yauzl crashes (a null fd in its fd-slicer) when a stream is destroyed while its read waits
  // behind the next entry's; so the next entry is read only once this one's stream has closed.
  if (!source.closed) await new Promise((resolve) => source.once('close', resolve));
  if (failure) throw failure;
  if (rejected) throw callerError;
  if (abandoned) throw new Error(`onEntry for ${quoted(entry.path)} resolved before reading or destroying its stream`);
}

// zip -------------------------------------------------------------------------------------------

const ZIP_OPTIONS = {
  lazyEntries: true,
  autoClose: true,
  // Names are decoded below exactly as yauzl would (UTF-8 flag, Info-ZIP unicode path, else CP437)
  // but without its name validation, which kills the whole listing at the first bad name.
  decodeStrings: false,
  validateEntrySizes: true,
  strictFileNames: false,
};

async function* zipItems(file: string, guard: ArchiveGuard): AsyncGenerator<ArchiveItem> {
  let zip: ZipFile;
  try {
    zip = await yauzl.openPromise(file, ZIP_OPTIONS);
  } catch (error) {
    throw asArchiveError(error, 'zip');
  }
  // Once the listing is done nobody listens, but closing the file can still emit an error.
  zip.on('error', () => {});
  try {
    guard.announceEntries(zip.entryCount);
    if (guard.limitReached) return;
    const entries = zip.eachEntry();
    for (;;) {
      const next = await entries.next().catch((error: unknown) => {
        throw asArchiveError(error, 'zip');
      });
      if (next.done) return;
      yield zipItem(zip, next.value);
    }
  } finally {
    zip.close();
  }
}

function zipItem(zip: ZipFile, entry: Entry): ArchiveItem {
  const rawPath = yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, entry.fileNameRaw, entry.extraFields, false);
  return {
    header: {
      rawPath,
      kind: zipEntryKind(entry, rawPath),
      size: entry.uncompressedSize,
      compressedSize: entry.compressedSize,
      unreadable: entry.isEncrypted()
        ? 'encrypted'
        : entry.canDecodeFileData()
          ? undefined
          : `compression method ${entry.compressionMethod} is not supported`,
    },
    open: () => zip.openReadStreamPromise(entry),
  };
}

/** "Version made by" hosts whose external attributes carry a unix mode in their high 16 bits: Unix, OS X. */
const UNIX_HOSTS = new Set([3, 19]);
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

function zipEntryKind(entry: Entry, name: string): EntryKind {
  const fileType = UNIX_HOSTS.has(entry.versionMadeBy >>> 8) ? (entry.externalFileAttributes >>> 16) & S_IFMT : 0;
  if (fileType === S_IFLNK) return 'symlink';
  if (fileType === S_IFDIR || name.endsWith('/')) return 'directory';
  if (fileType === 0 || fileType === S_IFREG) return 'file';
  return 'device'; // character and block devices, FIFOs, sockets
}

/** yauzl's validateEntrySizes check: a deflated entry inflates to more than its header declares. */
function isYauzlOverflow(error: Error): boolean {
  return error.message.startsWith('too many bytes in the stream');
}

// tar -------------------------------------------------------------------------------------------

const TAR_KINDS: Partial<Record<string, EntryKind>> = {
  File: 'file',
  OldFile: 'file',
  ContiguousFile: 'file',
  Directory: 'directory',
  GNUDumpDir: 'directory',
  SymbolicLink: 'symlink',
  Link: 'hardlink',
  CharacterDevice: 'device',
  BlockDevice: 'device',
  FIFO: 'device',
};

/**
 * node-tar's parser over the file. gzip is undone here, by a streaming zlib with backpressure, so
 * every decompressed byte can be counted; the parser only sees plain tar and emits the next entry
 * once the current one has been read or drained. An entry's path is as stored: the parser, unlike
 * node-tar's extract, strips neither '/' nor '..'.
 */
async function* tarItems(file: string, format: 'tar' | 'tar.gz', guard: ArchiveGuard): AsyncGenerator<ArchiveItem> {
  const input = createReadStream(file);
  const parser = new Parser({ strict: true, brotli: false, zstd: false });
  const arrived: ReadEntry[] = [];
  let body: Readable | undefined;
  let failure: Error | undefined;
  let ended = false;
  let closed = false;
  let wake = (): void => {};

  const stop = (error: unknown): void => {
    if (failure || closed) return;
    failure = asArchiveError(error, format);
    input.destroy();
    body?.destroy(failure);
    wake();
  };
  const arrive = (entry: ReadEntry): void => {
    arrived.push(entry);
    wake();
  };
  parser.on('entry', arrive);
  parser.on('ignoredEntry', arrive); // unknown entry types: counted, then passed over
  parser.on('end', () => {
    ended = true;
    wake();
  });
  parser.on('error', stop);

  const meter = tarStreamMeter(guard);
  const stages = format === 'tar.gz' ? [input, createGunzip(), meter] : [input, meter];
  pipeline(stages, (error) => {
    if (error) stop(error);
  });
  meter.pipe(parser);

  try {
    for (;;) {
      if (failure) throw failure;
      const entry = arrived.shift();
      if (entry) {
        yield {
          header: { rawPath: entry.path, kind: TAR_KINDS[entry.type] ?? 'other', size: entry.size },
          open: async () => (body = readableOf(entry)),
        };
        body = undefined;
        entry.resume(); // drains whatever was not read, so the parser moves on
        continue;
      }
      if (ended) return;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    closed = true;
    input.destroy();
  }
}

/**
 * Counts the tar stream's bytes for the whole-archive ratio, and refuses compressed data inside it:
 * node-tar would otherwise gunzip that itself, synchronously and unmetered.
 */
function tarStreamMeter(guard: ArchiveGuard): Transform {
  let head: Buffer | undefined = Buffer.alloc(0);
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      try {
        guard.countStreamed(chunk.length);
      } catch (error) {
        return callback(error as Error);
      }
      if (head) {
        head = Buffer.concat([head, chunk]);
        if (head.length < 2) return callback();
        if (isGzip(head)) return callback(new CorruptArchiveError('compressed data where tar headers were expected'));
        chunk = head;
        head = undefined;
      }
      callback(null, chunk);
    },
    flush(callback) {
      callback(null, head);
    },
  });
}

/** A Node stream of one tar entry's bytes; destroying it drains the rest so the parser can move on. */
function readableOf(entry: ReadEntry): Readable {
  const onData = (chunk: Buffer): void => {
    if (!body.push(chunk)) entry.pause();
  };
  const onEnd = (): void => {
    body.push(null);
  };
  const body = new Readable({
    read: () => {
      entry.resume();
    },
    destroy: (error, callback) => {
      entry.off('data', onData);
      entry.off('end', onEnd);
      entry.resume();
      callback(error);
    },
  });
  entry.on('data', onData);
  entry.on('end', onEnd);
  return body;
}
