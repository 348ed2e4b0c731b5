import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** An uploaded file written to local scratch space, hashed on the way. */
export interface StagedFile {
  path: string;
  size: number;
  sha256: string;
  /** The first bytes, for content sniffing. */
  head: Buffer;
}

export class FileTooLargeError extends Error {
  constructor(readonly limitBytes: number) {
    super(`File exceeds the limit of ${limitBytes} bytes`);
  }
}

const HEAD_BYTES = 4096;

/**
 * Staged files are named `<host>-<pid>-<run>-<uuid>.upload`: the host (a hash of its name), the
 * process id and a random id of this process's run. A start-up sweep can then tell the files of a
 * killed process on this host (pid gone, or the pid is ours but the run id is not: the same pid
 * reused after a restart, as pid 1 in a container always is) from files that a live process on the
 * same data dir (the CLI beside a server, a worker) is still writing.
 */
const HOST_TAG = crypto.createHash('sha256').update(os.hostname()).digest('hex').slice(0, 8);
const RUN_TAG = crypto.randomBytes(4).toString('hex');
const STAGED_NAME = /^([0-9a-f]{8})-(\d+)-([0-9a-f]{8})-[0-9a-f-]{36}\.upload$/;

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether a staged file's name says that the process that wrote it on this host is gone. */
export function stagedByDeadProcess(name: string): boolean {
  const match = STAGED_NAME.exec(name);
  if (!match || match[1] !== HOST_TAG) return false;
  const pid = Number(match[2]);
  if (pid === process.pid) return match[3] !== RUN_TAG;
  return !processIsAlive(pid);
}

/** Streams uploads to temporary files (never whole in memory) before they are accepted into the store. */
export class UploadStaging {
  constructor(private readonly dir: string) {}

  async stage(stream: Readable, maxBytes: number): Promise<StagedFile> {
    await fsp.mkdir(this.dir, { recursive: true });
    const file = path.join(this.dir, `${HOST_TAG}-${process.pid}-${RUN_TAG}-${crypto.randomUUID()}.upload`);
    const hash = crypto.createHash('sha256');
    const headChunks: Buffer[] = [];
    let headLength = 0;
    let size = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        size += chunk.length;
        if (size > maxBytes) {
          callback(new FileTooLargeError(maxBytes));
          return;
        }
        hash.update(chunk);
        if (headLength < HEAD_BYTES) {
          headChunks.push(chunk.subarray(0, HEAD_BYTES - headLength));
          headLength += Math.min(chunk.length, HEAD_BYTES - headLength);
        }
        callback(null, chunk);
      },
    });
    const sink = fs.createWriteStream(file);
    try {
      await pipeline(stream, meter, sink);
    } catch (error) {
      // A stream that failed at once (before the sink opened its file) still creates the file when
      // the open completes: wait for the sink to close, or the file would outlive this rm.
      if (!sink.closed) await new Promise<void>((resolve) => sink.once('close', () => resolve()));
      await fsp.rm(file, { force: true });
      throw error;
    }
    return { path: file, size, sha256: hash.digest('hex'), head: Buffer.concat(headChunks) };
  }

  async discard(files: Iterable<StagedFile>): Promise<void> {
    await Promise.all([...files].map((f) => fsp.rm(f.path, { force: true })));
  }

  /**
   * Removes scratch files left by a crash; call at start-up before anything stages. Files of dead
   * processes on this host go at once; anything else (another host on a shared disk, unrecognised
   * names) only once older than `olderThanMs`.
   */
  async sweep(olderThanMs: number): Promise<void> {
    const entries = await fsp.readdir(this.dir).catch(() => [] as string[]);
    for (const name of entries) {
      if (stagedByDeadProcess(name)) await fsp.rm(path.join(this.dir, name), { force: true });
    }
    await removeFilesOlderThan(this.dir, olderThanMs);
  }
}

/** Removes what a crash left in a scratch folder; only old files, as other processes may share the folder. */
export async function removeFilesOlderThan(dir: string, olderThanMs: number): Promise<void> {
  const entries = await fsp.readdir(dir).catch(() => [] as string[]);
  const cutoff = Date.now() - olderThanMs;
  for (const name of entries) {
    const full = path.join(dir, name);
    const stat = await fsp.stat(full).catch(() => null);
    if (stat && stat.mtimeMs < cutoff) await fsp.rm(full, { force: true, recursive: true });
  }
}
